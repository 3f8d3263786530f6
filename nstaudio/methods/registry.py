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
from ..settings import SHARED_NAMES, Setting

INPUTS = ("log_spectrogram", "magnitude", "waveform")
OUTPUTS = ("log_spectrogram", "magnitude", "waveform")
NEEDS = ("style", "model")


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
    input : {"log_spectrogram", "magnitude", "waveform"}
        What ``run`` gets of the content and styles, at the working rate: log1p-magnitude
        spectrograms (B, C, T) and (C, Ts), STFT magnitudes of the same shapes, or waveforms
        (B, n) and (n,).
    output : {"log_spectrogram", "magnitude", "waveform"}
        What ``run`` returns: a log spectrogram or magnitudes go through Griffin-Lim, a waveform
        is the audio.
    run : callable
        ``run(content, styles, options, model, callback) -> (result, info)``: ``styles`` is what
        ``prepare`` made of the style inputs (the list of them where it is None); ``options`` holds
        the resolved settings (:func:`nstaudio.settings.resolve`: the shared ones, ``style_weights``
        and this method's own ``settings``); ``info`` the keys of :class:`nstaudio.api.StylizeInfo`
        it knows. ``callback(step, value)`` reports the method's progress (value: its loss), and
        ``callback(step, value, stage=name)`` that of a stage before its main one (``optimize``'s
        ``"warm start"``).
    settings : tuple of Setting
        The settings of its own, with its defaults (:mod:`nstaudio.settings`); the shared ones
        (rate, STFT, phase, seed, device, loudness) it does not declare.
    hop_divisor : int
        The hop is ``n_fft // hop_divisor`` unless given.
    phase_iters : int or None
        Its default Griffin-Lim iterations (a method that returns a spectrogram); None for one
        that returns a waveform.
    phase_init : str or None
        Its default start of Griffin-Lim, likewise.
    steps : callable
        ``steps(options, length) -> int``: the steps its progress callback counts to for a content
        ``length`` long along its last axis as ``run`` gets it (the iterations of every segment).
    prepare : callable or None
        ``prepare(styles, options) -> prepared``: the part of the work that depends on the
        styles and settings alone (the random filters and Gram targets of ``optimize``), done
        once by :func:`nstaudio.analyse_style` for many contents. Its result is only read, so
        one may serve several runs at once.
    style_settings : tuple of str
        The settings, besides ``sr_work``, ``n_fft``, ``hop_length`` and ``style_weights``, that
        ``prepare``'s result depends on: an analysis serves only runs with the same values.
    validate : callable or None
        ``validate(options)``: raise ParameterError for combinations of settings it cannot take
        (each setting's own range is checked by the schema).
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
    run: Callable
    settings: tuple = ()
    hop_divisor: int = 4
    phase_iters: Optional[int] = None
    phase_init: Optional[str] = None
    steps: Callable = field(default=lambda options, length: 0)
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
        object.__setattr__(self, "settings", tuple(self.settings))
        for setting in self.settings:
            if not isinstance(setting, Setting):
                raise ValueError(f"method {self.name!r}: settings must be nstaudio.settings.Setting, got "
                                 f"{type(setting).__name__}")
            if setting.name in SHARED_NAMES:
                raise ValueError(f"method {self.name!r}: {setting.name!r} is a shared setting, not one of its own")
        names = [setting.name for setting in self.settings]
        if len(set(names)) != len(names):
            raise ValueError(f"method {self.name!r} declares a setting twice")
        has_phase = self.output != "waveform"
        if has_phase != (self.phase_iters is not None and self.phase_init is not None):
            raise ValueError(f"method {self.name!r}: a method that returns a spectrogram gives defaults for "
                             f"phase_iters and phase_init, one that returns a waveform gives none")
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

    def methods(self):
        """The registered :class:`Method` objects, in order."""
        return tuple(self._methods.values())
