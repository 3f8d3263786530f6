"""The settings schema: every setting a run takes, declared once and read by everything that lists them.

The pipeline's own settings (working rate, STFT, phase reconstruction, seed, device, loudness)
are :data:`SHARED`, here. Each method declares the settings of its own beside its code
(``Method.settings``, :mod:`nstaudio.methods.registry`). :func:`nstaudio.stylize` and
:func:`nstaudio.api.resolve_settings` check them with :func:`resolve`; the CLI's options and
``--help`` (:func:`cli_settings`), a batch manifest's columns (:func:`manifest_columns`), the
settings hash and docs/cli.md's option table (:func:`markdown_table`) are built from them. A
method registered at run time brings its settings with it: nothing else names them.
"""

import textwrap
from dataclasses import dataclass, replace
from typing import Callable, Optional

import numpy as np

from . import limits
from .audio import LOUDNESS_MODES
from .errors import ParameterError
from .kernels import DEVICES
from .spectral import PHASE_INITS
from .validation import MAX_SEED, check_choice, check_float, check_int

DEFAULT_WORK_RATE = 22050
DEFAULT_N_FFT = 2048


@dataclass(frozen=True)
class Setting:
    """One setting: its name, type, range, default, command-line flag, help and manifest columns.

    Attributes
    ----------
    name : str
        :func:`nstaudio.stylize`'s keyword and the key ``Method.run`` reads it by.
    kind : {int, float, str, bool}
    help : str
        One sentence for ``--help`` and the docs; the default is added to it.
    default : object
        The value when it is not given (a method's own, for a method's setting); None where the
        method or the model decides (``default_text`` says how).
    flag : str or None
        The command-line flag; default ``--`` and the name with dashes.
    aliases : tuple of str
        More manifest column names (the name and the flag's are always taken).
    choices : tuple or None
        The values it may take.
    minimum, maximum : number or None
        Its range (``strict_minimum``: the minimum itself is refused).
    default_text : str or None
        How the default reads where it is not one value ("22050, or the model's").
    method_default : callable or None
        For a shared setting whose default each method sets: ``method_default(method) -> value``
        (None where it does not apply to the method).
    on_cli : bool
        A command-line option and a manifest column (False: the Python API's only).
    ignored_elsewhere : bool
        A method that does not take it ignores it instead of refusing it (the optimizers'
        common settings, which one batch of several methods gives every item).
    """

    name: str
    kind: type
    help: str
    default: object = None
    flag: Optional[str] = None
    aliases: tuple = ()
    choices: Optional[tuple] = None
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    strict_minimum: bool = False
    default_text: Optional[str] = None
    method_default: Optional[Callable] = None
    on_cli: bool = True
    ignored_elsewhere: bool = False

    def __post_init__(self):
        if self.kind not in (int, float, str, bool):
            raise ValueError(f"setting {self.name!r}: kind must be int, float, str or bool")
        if self.flag is None:
            object.__setattr__(self, "flag", "--" + self.name.replace("_", "-"))

    @property
    def columns(self):
        """The manifest column names that set it: its name, its flag's and its aliases."""
        return tuple(dict.fromkeys((self.name, self.flag[2:].replace("-", "_"), *self.aliases)))

    def check(self, value):
        """``value`` checked against the kind, range and choices; ints come back as int.

        Raises
        ------
        ParameterError
            Naming the setting and the value.
        """
        if self.kind is bool:
            return bool(value)
        if self.choices is not None:
            return check_choice(self.name, value, self.choices)
        if self.kind is int:
            return check_int(self.name, value, minimum=self.minimum, maximum=self.maximum)
        if self.kind is float:
            check_float(self.name, value, minimum=self.minimum, maximum=self.maximum,
                        strict_minimum=self.strict_minimum)
        return value


SHARED = (
    Setting("sr_work", int, "Working sample rate; the output keeps the content's rate.", flag="--sr",
            minimum=limits.MIN_WORK_RATE, maximum=limits.MAX_WORK_RATE,
            default_text=f"{DEFAULT_WORK_RATE}, or the model's"),
    Setting("n_fft", int, "FFT size (timedomain: frame size).", minimum=16, maximum=2**16,
            default_text=f"{DEFAULT_N_FFT}, or the model's"),
    Setting("hop_length", int, "Hop length (with --model, the model's).", flag="--hop", minimum=1,
            method_default=lambda method: f"n_fft/{method.hop_divisor}"),
    Setting("phase_iters", int, "Fast Griffin-Lim iterations.", minimum=0, maximum=100_000,
            method_default=lambda method: method.phase_iters),
    Setting("phase_init", str, "Griffin-Lim starts from the content's phase, random phase (the papers), or the "
            "phase PGHI (phase gradient heap integration) finds for the output's magnitude; pghi with "
            "--phase-iters 0 is PGHI alone.", choices=PHASE_INITS, method_default=lambda method: method.phase_init),
    Setting("seed", int, "Seed of every random draw: the same seed gives the same output.", default=0,
            minimum=0, maximum=MAX_SEED),
    Setting("device", str, "Backend of the optimizer and of Griffin-Lim.", default="auto", choices=DEVICES),
    Setting("match_loudness", str, "Bring the output to the content's loudness: lufs, integrated loudness "
            "(ITU-R BS.1770 / EBU R128) under a -1 dBTP true peak; rms, the RMS under a 0.99 sample peak; off "
            "(True is lufs, False off).", default="lufs", flag="--loudness", choices=LOUDNESS_MODES),
)
SHARED_NAMES = tuple(setting.name for setting in SHARED)
# Shared settings of a phase reconstruction, which a method that returns a waveform does not have.
PHASE_SETTINGS = ("phase_iters", "phase_init")


def shared(name):
    """The shared :class:`Setting` ``name``."""
    return next(setting for setting in SHARED if setting.name == name)


def method_default(method, name):
    """``method``'s default of the setting ``name`` (its own or a shared one); None where it has none."""
    for setting in method.settings:
        if setting.name == name:
            return setting.default
    if name in SHARED_NAMES:
        setting = shared(name)
        return setting.method_default(method) if setting.method_default is not None else setting.default
    return None


def loudness_mode(value):
    """``match_loudness`` as one of :data:`~nstaudio.audio.LOUDNESS_MODES` (True is ``"lufs"``, False ``"off"``)."""
    if value is True or value is False or isinstance(value, np.bool_):
        return "lufs" if value else "off"
    return shared("match_loudness").check(value)


def takes(method, name):
    """Whether ``method`` takes the setting ``name``."""
    if name in PHASE_SETTINGS:
        return method.output != "waveform"
    return name in SHARED_NAMES or any(setting.name == name for setting in method.settings)


def every_setting(methods):
    """Every setting of ``methods`` by name: each method's in its order, then the shared ones.

    Several methods may declare a setting of one name (``alpha``); they must agree on its kind and
    flag. The choices are all that any of them takes (each method checks its own).

    Parameters
    ----------
    methods : sequence of Method

    Returns
    -------
    dict
        name -> :class:`Setting`.
    """
    merged = {}
    for method in methods:
        for setting in method.settings:
            if setting.name in SHARED_NAMES:
                raise ValueError(f"method {method.name!r}: {setting.name!r} is a shared setting")
            first = merged.setdefault(setting.name, setting)
            if (first.kind, first.flag) != (setting.kind, setting.flag):
                raise ValueError(f"method {method.name!r} declares {setting.name!r} unlike another method does")
            if setting.choices is not None and first.choices is not None:
                union = tuple(dict.fromkeys((*first.choices, *setting.choices)))
                merged[setting.name] = replace(first, choices=union)
    merged.update((setting.name, setting) for setting in SHARED)
    return merged


def defaults_text(methods, name, fmt=None):
    """The defaults of ``name`` over ``methods``, for help texts: "0.01; 1 for timedomain".

    The most common value leads, unnamed; None where no method has one. A setting with a
    ``default_text`` reads so.
    """
    fmt = fmt or format_value
    setting = every_setting(methods)[name]
    if setting.default_text is not None:
        return setting.default_text
    values = {}
    for method in methods:
        if takes(method, name) and method_default(method, name) is not None:
            values.setdefault(fmt(method_default(method, name)), []).append(method.name)
    if not values:
        return None
    first, *others = values.items()
    return "; ".join([first[0]] + [f"{value} for {', '.join(names)}" for value, names in others])


def format_value(value):
    """A default as help texts show it: floats in ``%g``."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def only_text(methods, name):
    """Which of ``methods`` take ``name``, where not all do: "optimize, timedomain only"; else ""."""
    taking = [method.name for method in methods if takes(method, name)]
    return "" if len(taking) == len(methods) else f"{', '.join(taking)} only"


def cli_settings(methods):
    """The settings that are command-line options, with their help text completed.

    Returns
    -------
    list of (Setting, str)
        Each setting (choices merged over ``methods``) and its help with the methods that take
        it and the defaults.
    """
    described = []
    for setting in every_setting(methods).values():
        if not setting.on_cli:
            continue
        notes = [note for note in (only_text(methods, setting.name),
                                   _default_note(methods, setting.name)) if note]
        described.append((setting, setting.help + (f" [{'; '.join(notes)}]" if notes else "")))
    return described


def _default_note(methods, name):
    text = defaults_text(methods, name)
    return None if text is None else f"default: {text}"


def manifest_columns(methods):
    """A batch manifest's setting columns: column name -> :class:`Setting`."""
    return {column: setting for setting in every_setting(methods).values() if setting.on_cli
            for column in setting.columns}


def markdown_table(methods):
    """The option table of docs/cli.md: flag, default(s), what it does, which methods take it."""
    rows = ["| option | default | what it sets |", "|---|---|---|"]
    for setting, _ in cli_settings(methods):
        default = defaults_text(methods, setting.name, fmt=lambda value: format_value(value)) or "none"
        only = only_text(methods, setting.name)
        choices = f" One of {', '.join(f'`{c}`' for c in setting.choices)}." if setting.choices else ""
        rows.append(f"| `{setting.flag}` | {default} | {setting.help}{choices}{f' ({only}.)' if only else ''} |")
    return "\n".join(rows)


def docstring_entries(methods, indent=8):
    """The methods' own settings as numpydoc parameter entries (``stylize``'s ``**settings``)."""
    pad = " " * indent
    lines = []
    shared_names = set(SHARED_NAMES)
    for setting in every_setting(methods).values():
        if setting.name in shared_names:
            continue
        kind = "{" + ", ".join(repr(c) for c in setting.choices) + "}" if setting.choices else setting.kind.__name__
        defaults = defaults_text(methods, setting.name)
        only = only_text(methods, setting.name)
        notes = "; ".join(note for note in (only, f"default {defaults}" if defaults else "") if note)
        lines.append(f"{pad}{setting.name} : {kind}")
        lines.extend(textwrap.wrap(setting.help + (f" ({notes}.)" if notes else ""), width=100,
                                   initial_indent=pad + "    ", subsequent_indent=pad + "    "))
    return "\n".join(lines)


def check_applies(method, given, methods=()):
    """ParameterError for the first setting in ``given`` (name -> value, None: not given) ``method`` does not
    take, unless every method of ``methods`` that declares it lets others ignore it."""
    declared = {}
    for other in methods:
        for setting in other.settings:
            declared.setdefault(setting.name, []).append(setting.ignored_elsewhere)
    for name, value in given.items():
        if value is None or takes(method, name) or (name in declared and all(declared[name])):
            continue
        if name == "phase_iters" and not value:
            continue  # no iterations is what a method without a phase step does anyway
        reason = ": it reconstructs no phase" if name in PHASE_SETTINGS else ""
        raise ParameterError(f"{name} does not apply to the {method.name} method{reason}")


def resolve(method, given, *, model_settings=None, methods=()):
    """The settings ``method.run`` gets: ``given`` with ``method``'s defaults, every value checked.

    Parameters
    ----------
    method : Method
    given : dict
        Setting name -> value as the caller gave it; None (or absent) is "not given".
    model_settings : tuple or None
        ``(sr_work, n_fft, hop_length)`` of the model a model method runs: given values must agree.
    methods : sequence of Method
        Every method there is: a choice of another method's is refused as not this method's.

    Returns
    -------
    dict
        Every setting ``method`` takes, by name (``phase_iters`` 0 and ``phase_init`` None for
        a method that returns a waveform).

    Raises
    ------
    ParameterError
        A setting the method does not take, or a value out of its range.
    """
    check_applies(method, given, methods)
    options = {name: given.get(name) for name in SHARED_NAMES}
    _resolve_spectrogram(method, options, model_settings)
    for name in PHASE_SETTINGS:
        if options[name] is None:
            options[name] = method_default(method, name)
    options["phase_iters"] = shared("phase_iters").check(options["phase_iters"] or 0)
    if method.output != "waveform":
        shared("phase_init").check(options["phase_init"])
    for name in ("seed", "device", "match_loudness"):
        options[name] = shared(name).default if options[name] is None else options[name]
    options["match_loudness"] = loudness_mode(options["match_loudness"])
    options["seed"] = shared("seed").check(options["seed"])  # the device is the backends' to check
    choices = every_setting(methods)
    for setting in method.settings:
        value = setting.default if given.get(setting.name) is None else given[setting.name]
        if setting.choices is not None and value not in setting.choices and value in (
                choices.get(setting.name, setting).choices or ()):
            listed = ", ".join(repr(choice) for choice in setting.choices)
            raise ParameterError(f"{setting.name} must be one of {listed}, got {value!r}: {value!r} does not apply "
                                 f"to the {method.name} method")
        options[setting.name] = setting.check(value)
    return options


def _resolve_spectrogram(method, options, model_settings):
    """The working rate, FFT size and hop in ``options``: the model's, or the given ones, or the defaults."""
    if model_settings is not None:
        for name, value in zip(("sr_work", "n_fft", "hop_length"), model_settings):
            if options[name] is not None and options[name] != value:
                raise ParameterError(f"{name}={options[name]} differs from the model's {value}; leave it unset")
            options[name] = value
    options["sr_work"] = shared("sr_work").check(DEFAULT_WORK_RATE if options["sr_work"] is None
                                                 else options["sr_work"])
    n_fft = options["n_fft"] = shared("n_fft").check(DEFAULT_N_FFT if options["n_fft"] is None
                                                     else options["n_fft"])
    hop = n_fft // method.hop_divisor if options["hop_length"] is None else options["hop_length"]
    options["hop_length"] = shared("hop_length").check(hop)
    if options["hop_length"] > n_fft:
        raise ParameterError(f"hop_length must be <= n_fft={n_fft}, got {options['hop_length']}")
