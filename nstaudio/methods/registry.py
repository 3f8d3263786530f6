"""The methods as plug-ins: what each one declares, and the registry ``stylize`` and the CLI read.

``stylize`` is the same pipeline for every method (validate, resample, analyse, ``run``,
phase reconstruction if the method returns magnitudes, resample back, loudness) and names
none of them. A method is one module in ``nstaudio/methods/`` that builds a :class:`Method`
and one line in :data:`REGISTRY` (``nstaudio/methods/__init__.py``); :func:`register` adds
one at run time (a test registers a toy method that way).
"""

from dataclasses import dataclass, field
from typing import Callable, Optional

from ..errors import ParameterError

INPUTS = ("log_spectrogram", "waveform")
OUTPUTS = ("log_spectrogram", "waveform")
NEEDS = ("style", "model")

# The shared options a method gives defaults for; stylize's parameters of these names are
# None by default and take the method's value.
DEFAULTED = ("alpha", "n_filters", "width", "learning_rate", "optimizer", "tolerance", "tolerance_window",
             "phase_iters", "phase_init", "temporal_weight", "spectral_weight", "network", "hop_divisor")
# Of those, the ones a method that has no default for them (None) refuses when given.
ONLY_WHERE_DEFAULTED = ("temporal_weight", "spectral_weight", "network", "phase_init")


@dataclass(frozen=True)
class Method:
    """One style-transfer method, as the pipeline sees it.

    Attributes
    ----------
    name : str
        What ``method=`` and ``--method`` take.
    summary : str
        One line for ``--help``.
    needs : {"style", "model"}
        Style recordings, or a trained style model (``model=``).
    input : {"log_spectrogram", "waveform"}
        What ``run`` gets of the content and styles, at the working rate: log1p-magnitude
        spectrograms (B, C, T) and (C, Ts), or waveforms (B, n) and (n,).
    output : {"log_spectrogram", "waveform"}
        What ``run`` returns: a log spectrogram goes through Griffin-Lim, a waveform is the audio.
    defaults : dict
        This method's value of each of :data:`DEFAULTED` (``hop_divisor``: the hop is
        ``n_fft // hop_divisor``); None where the option does not apply to it. Those of
        :data:`ONLY_WHERE_DEFAULTED` may be left out (then None).
    optimizers : tuple of str
        The ``optimizer`` values it takes (empty: it optimizes nothing).
    run : callable
        ``run(content, styles, options, model, callback) -> (result, info)``: ``styles`` is what
        ``prepare`` made of the style inputs (the list of them where it is None); ``options`` holds
        the resolved settings (alpha, iterations, n_filters, width, optimizer, init,
        learning_rate, tolerance, tolerance_window, seed, device, style_weights, n_fft,
        hop_length); ``info`` the keys of :class:`nstaudio.api.StylizeInfo` it knows.
        ``callback(step, value)`` reports the method's progress (value: its loss), and
        ``callback(step, value, stage=name)`` that of a stage before its main one (``optimize``'s
        ``"warm start"``).
    prepare : callable or None
        ``prepare(styles, options) -> prepared``: the part of the work that depends on the
        styles and settings alone (the random filters and Gram targets of ``optimize``), done
        once by :func:`nstaudio.analyse_style` for many contents. Its result is only read, so
        one may serve several runs at once.
    style_settings : tuple of str
        The options, besides ``sr_work``, ``n_fft``, ``hop_length`` and ``style_weights``, that
        ``prepare``'s result depends on: an analysis serves only runs with the same values.
    validate : callable or None
        ``validate(options)``: raise ParameterError for settings this method cannot take.
    min_frames : callable
        ``min_frames(options)``: frames a clip needs (the conv width for the conv methods).
    model_kind : str or None
        For model methods: the ``kind`` of the models it runs (a model file says which method is its).
    model_settings : callable or None
        For model methods: ``model_settings(model) -> (sr_work, n_fft, hop_length)``, after
        checking the model is one of theirs.
    input_gain : callable or None
        ``input_gain(content_work) -> float``: a level the content is brought to before the
        analysis and taken back from after (a network trained at one level).
    memory : callable or None
        ``memory(options, channels, frames, style_frames) -> bytes``: a lower bound of what a
        run holds, checked against the machine before any work.
    """

    name: str
    summary: str
    needs: str
    input: str
    output: str
    defaults: dict
    run: Callable
    optimizers: tuple = ()
    prepare: Optional[Callable] = None
    style_settings: tuple = ()
    validate: Optional[Callable] = None
    min_frames: Callable = field(default=lambda options: 1)
    model_kind: Optional[str] = None
    model_settings: Optional[Callable] = None
    input_gain: Optional[Callable] = None
    memory: Optional[Callable] = None

    def __post_init__(self):
        for attribute, allowed in (("needs", NEEDS), ("input", INPUTS), ("output", OUTPUTS)):
            if getattr(self, attribute) not in allowed:
                raise ValueError(f"method {self.name!r}: {attribute} must be one of {allowed}")
        # The options only some methods take may be left out: they do not apply (None).
        object.__setattr__(self, "defaults", {**dict.fromkeys(ONLY_WHERE_DEFAULTED), **self.defaults})
        missing = [key for key in DEFAULTED if key not in self.defaults]
        if missing:
            raise ValueError(f"method {self.name!r} gives no default for {', '.join(missing)}")
        if self.needs == "model" and (self.model_settings is None or self.model_kind is None):
            raise ValueError(f"method {self.name!r} needs a model but has no model_settings or model_kind")


class Registry:
    """The methods by name, in the order they were registered; the first that needs style is the default."""

    def __init__(self, methods=()):
        self._methods = {}
        for method in methods:
            self.register(method)

    def register(self, method):
        """Add ``method`` (a :class:`Method`); its name must be new."""
        if not isinstance(method, Method):
            raise TypeError(f"expected a Method, got {type(method).__name__}")
        if method.name in self._methods:
            raise ValueError(f"a method named {method.name!r} is registered already")
        self._methods[method.name] = method
        return method

    def unregister(self, name):
        """Remove the method ``name`` (for tests that register toy methods)."""
        self._methods.pop(name, None)

    def names(self):
        return tuple(self._methods)

    def get(self, name):
        """The method ``name``; ParameterError listing the registered ones otherwise."""
        if name not in self._methods:
            listed = ", ".join(repr(n) for n in self._methods)
            raise ParameterError(f"method must be one of {listed}, got {name!r}")
        return self._methods[name]

    def resolve(self, name, model):
        """The method asked for, or the default: the model's method when ``model`` is given, else the first
        that needs style recordings."""
        if name is not None:
            return self.get(name)
        if model is None:
            return next(m for m in self._methods.values() if m.needs == "style")
        kind = getattr(model, "kind", None)
        for method in self._methods.values():
            if method.needs == "model" and method.model_kind == kind:
                return method
        # no method runs it: the first model method's own check says what it takes
        return next(m for m in self._methods.values() if m.needs == "model")

    def defaults_text(self, option, fmt=str):
        """``option``'s default for each method, for help texts: "0.01; 1 for timedomain"."""
        values = {}
        for method in self._methods.values():
            if method.defaults[option] is not None:
                values.setdefault(fmt(method.defaults[option]), []).append(method.name)
        first, *others = values.items()
        return "; ".join([first[0]] + [f"{value} for {', '.join(names)}" for value, names in others])
