"""The public entry point: arrays in, stylized array out.

Data flows one way (DESIGN.md): audio at any rate and channel count -> working
rate -> log1p-magnitude STFT -> a method -> phase reconstruction -> the content's
rate, length, channels and loudness.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from . import audio, limits, settings as schema, spectral
from .errors import AudioError, NumericalError, ParameterError
from .kernels.blas_threads import holds_one_blas_thread
from .methods import REGISTRY
from .objective import normalised_weights
from .validation import as_audio, check_sample_rate


def methods():
    """The names of the registered methods (``nstaudio.methods.REGISTRY``), the default first."""
    return REGISTRY.names()


@dataclass
class StylizeInfo:
    """What a :func:`stylize` run did.

    Attributes
    ----------
    method : str
    loss : float
        Final objective value (summed over channels); NaN for ``feedforward``, which optimizes nothing.
    initial_loss : float
        Objective at the starting point.
    style_loss, initial_style_loss, content_loss : float
        The parts of the objective at the end / start.
    iterations, evaluations : int
        Optimizer iterations and objective evaluations.
    converged : bool
        The run stopped early by the tolerance rule.
    phase_convergence_db : float
        Spectral convergence of the phase reconstruction, mean over channels (NaN if it ran 0 iterations).
    seconds : float
        Wall time.
    backend, gram_form : str
    history : np.ndarray
        Loss after each iteration.
    """

    method: str
    loss: float
    initial_loss: float
    style_loss: float
    initial_style_loss: float
    content_loss: float
    iterations: int
    evaluations: int
    converged: bool
    phase_convergence_db: float
    seconds: float
    backend: str
    gram_form: str
    history: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class StyleAnalysis:
    """Style recordings analysed once, for many :func:`stylize` calls (:func:`analyse_style`).

    Read, never written, by the runs it serves: one instance may serve several threads or
    Dask tasks at once.

    Attributes
    ----------
    method : str
        The method it was made for.
    settings : dict
        The settings it depends on (``sr_work``, ``n_fft``, ``hop_length``, ``style_weights``
        and the method's ``style_settings``); :func:`stylize` refuses it for other values.
    prepared : object
        What the method's ``prepare`` made of the styles (for ``optimize``: the seed's random
        filters and the Gram targets), or the styles' analysed inputs.
    frames : int
        Frames of all styles at the working rate (for the memory bound).
    styles : int
        How many style recordings.
    """

    method: str
    settings: dict = field(repr=False)
    prepared: object = field(repr=False)
    frames: int = 0
    styles: int = 0


@holds_one_blas_thread
def stylize(content, style=None, sr=None, *, model=None, method=None, style_sr=None, style_weights=None,
            sr_work=None, n_fft=None, hop_length=None, phase_iters=None, phase_init=None, seed=0, device="auto",
            match_loudness="lufs", callback=None, return_info=False, **settings):
    """Give ``content`` the timbre of ``style`` (or of a trained style ``model``).

    Parameters
    ----------
    content : np.ndarray, shape (samples,) or (channels, samples)
        Every channel is stylized (in one batch, with the same network).
    style : np.ndarray, list of np.ndarray (each shape (samples,) or (channels, samples)), or StyleAnalysis
        One or several style recordings; multichannel styles are mixed to mono. Or what
        :func:`analyse_style` made of them for this method and these settings (then
        ``style_sr`` is left out and ``style_weights`` is the analysis's). None with ``model``.
    sr : int
        Sample rate of ``content``.
    model : Network or None
        A trained model (:func:`nstaudio.train_style`, :func:`nstaudio.train_gan`,
        :func:`nstaudio.load_model`): stylize in one pass with the method of its kind
        (``"feedforward"`` for a style model, ``"gan"`` for a gan model).
    method : str or None
        One of :func:`methods` (``nstaudio.methods.REGISTRY``: ``"optimize"``, ``"feedforward"``,
        ``"timedomain"``, ``"gan"`` and any registered since). Default: the method that runs
        ``model``'s kind when it is given, else the first that needs style (``"optimize"``).
        ``"timedomain"`` optimizes the waveform itself (Mital 2017): frames of ``n_fft``
        samples every ``hop_length``, no phase reconstruction.
    style_sr : int, list of int, or None
        Sample rate(s) of the style(s); default ``sr``.
    style_weights : sequence of float or None
        Relative weights of several styles; default equal.
    sr_work : int or None
        Working sample rate for the spectrograms: 22050 Hz (the papers), or the model's.
    n_fft : int or None
        FFT size (>= 16), default 2048 or the model's; 1 + n_fft // 2 frequency bins are the
        conv's input channels.
    hop_length : int or None
        Default ``n_fft // 4`` (``n_fft // 8`` for ``timedomain``, ``n_fft // 6`` for ``gan``), or the model's.
    phase_iters : int or None
        Fast Griffin-Lim iterations; default 16 for ``optimize`` (from PGHI's phase), 32 for
        ``feedforward`` and ``gan`` (a method that returns a waveform reconstructs no phase).
    phase_init : {"content", "random", "pghi"} or None
        Start Griffin-Lim from the content's phase, from random phase (the papers), or from
        the phase Phase Gradient Heap Integration finds for the output's magnitude
        (:func:`nstaudio.pghi`; with ``phase_iters=0`` that phase alone). Default: ``"pghi"`` for
        ``optimize``, ``"content"`` for the model methods.
    seed : int
        Seeds every random draw (filters, starting noise, random phase).
    device : {"auto", "numpy", "cpu", "cuda"}
        Backend of the optimizer and of Griffin-Lim (a feedforward network runs on numpy/BLAS).
    match_loudness : {"lufs", "rms", "off"} or bool
        Bring the output to the content's loudness: ``"lufs"`` (True), integrated loudness as
        ITU-R BS.1770 / EBU R128 measure it, under a -1 dBTP true peak; ``"rms"``, the RMS under a
        0.99 sample peak; ``"off"`` (False) leaves the level as the method made it.
    callback : callable or None
        ``callback(stage, step, total, value)`` with stage ``"optimize"`` (value: loss),
        ``"warm start"`` before it with ``init="expected"`` (the expected network's loss), or
        ``"phase"`` (value: spectral convergence in dB; steps count over all channels).
    return_info : bool
        Also return a :class:`StylizeInfo`.
    **settings
        The method's own settings (:mod:`nstaudio.settings`; ``Method.settings``), each
        defaulting to the method's value; a setting the method does not take is refused.
        Those of the registered methods:

{method_settings}

    Returns
    -------
    y : np.ndarray, float32, the shape of ``content``
    info : StylizeInfo, only if ``return_info``

    Raises
    ------
    AudioError
        Empty, silent or non-finite audio, or audio too short for one conv window.
    ParameterError
        A parameter out of range.
    BackendError
        ``device`` cannot run here.
    """
    started = time.perf_counter()
    method = REGISTRY.resolve(method, model)
    options = _resolve_options(method, dict(
        settings, sr_work=sr_work, n_fft=n_fft, hop_length=hop_length, phase_iters=phase_iters,
        phase_init=phase_init, seed=seed, device=device, match_loudness=match_loudness), model, style_weights)
    if sr is None:
        raise ParameterError("sr: the content's sample rate is needed")
    sr = check_sample_rate(sr)
    sr_work, n_fft, hop_length = options["sr_work"], options["n_fft"], options["hop_length"]

    was_1d = np.ndim(content) == 1
    content = as_audio(content, "content")
    analysis = style if isinstance(style, StyleAnalysis) else None
    if analysis is not None:
        if style_sr is not None:
            raise ParameterError("style_sr: a style analysis was made at its styles' rates; leave it out")
        _check_analysis(analysis, method, options)
        options["style_weights"] = analysis.settings["style_weights"]
    else:
        styles_in, style_frames = _style_inputs(method, options, style, style_sr, sr)

    content_work = audio.resample(content, orig_sr=sr, target_sr=sr_work)
    gain = 1.0 if method.input_gain is None else method.input_gain(content_work)
    content_in, content_spec = _analyse(content_work * np.float32(gain), "content", method, options)
    if method.memory is not None:
        frames = spectral.n_frames(content_work.shape[-1], n_fft=n_fft, hop_length=hop_length)
        _check_memory(method.memory(options, content.shape[0], frames,
                                    style_frames if analysis is None else analysis.frames))
    if analysis is None:
        analysis = _prepare_styles(method, options, styles_in, style_frames)

    steps = method.steps(options, content_in.shape[-1])
    report = None if callback is None else (
        lambda i, loss, stage="optimize": callback(stage, i, steps, loss))
    result, run_info = method.run(content_in, analysis.prepared, options, model, report)

    y_work, convergence = _to_waveform(method, result, options, content_work.shape[-1], content_spec, callback)
    y = audio.resample(y_work / np.float32(gain), orig_sr=sr_work, target_sr=sr, length=content.shape[-1])
    if not np.all(np.isfinite(y)):
        raise NumericalError("the stylized audio is not finite (the optimizer diverged); lower learning_rate or "
                             "alpha")
    if options["match_loudness"] != "off":
        y = audio.match_loudness(y, content, sr, mode=options["match_loudness"])
    y = np.ascontiguousarray(y[0] if was_1d else y)  # a new C array of its own, whatever the path
    if not return_info:
        return y
    return y, _info(method, run_info, convergence, time.perf_counter() - started)


def _to_waveform(method, result, options, length, content_spec, callback):
    """``method.run``'s result as the working-rate waveform (channels, length): a log spectrogram or
    magnitudes through Griffin-Lim (with its convergence, (channels, iterations) in dB), a waveform as it
    is (None)."""
    if method.output == "waveform":
        return result, None
    if method.output == "magnitude":
        magnitude = result
    else:  # a log1p magnitude below 0 stands for silence (the optimizer's variable is unbounded)
        with np.errstate(over="ignore"):
            magnitude = spectral.from_log_magnitude(np.maximum(result, 0))
    if not np.all(np.isfinite(magnitude)):
        raise NumericalError("the optimized spectrogram grew too large to turn into audio (the optimizer "
                             "diverged); lower learning_rate or alpha")
    phase_total = options["phase_iters"] * magnitude.shape[0]
    return spectral.griffin_lim(
        magnitude, n_iter=options["phase_iters"], length=length, init=options["phase_init"],
        content=content_spec, seed=options["seed"], return_convergence=True, device=options["device"],
        callback=None if callback is None else (lambda i, db: callback("phase", i, phase_total, db)),
        n_fft=options["n_fft"], hop_length=options["hop_length"],
    )


def _info(method, run_info, convergence, seconds):
    """The :class:`StylizeInfo` of a run: ``method.run``'s info and the phase reconstruction's convergence."""
    phase_db = float(np.mean(convergence[:, -1])) if convergence is not None and convergence.shape[-1] else float("nan")
    return StylizeInfo(
        method=method.name, loss=run_info["loss"], initial_loss=run_info["initial_loss"],
        style_loss=run_info["style_loss"], initial_style_loss=run_info["initial_style_loss"],
        content_loss=run_info["content_loss"], iterations=run_info["iterations"],
        evaluations=run_info["evaluations"], converged=run_info["converged"], phase_convergence_db=phase_db,
        seconds=seconds, backend=run_info["backend"], gram_form=run_info["gram_form"], history=run_info["history"],
    )


stylize.__doc__ = stylize.__doc__.replace("{method_settings}", schema.docstring_entries(REGISTRY.methods()))

# stylize's parameters that are data or plumbing, not settings.
_NOT_SETTINGS = ("content", "style", "sr", "style_sr", "model", "callback", "return_info")


def setting_names():
    """Every setting :func:`stylize` takes now: ``method``, ``style_weights``, the shared ones and those of
    every registered method (:mod:`nstaudio.settings`)."""
    return ("method", "style_weights", *schema.every_setting(REGISTRY.methods()))


def manifest_columns():
    """A batch manifest's setting columns for the methods registered now: column -> Setting."""
    return schema.manifest_columns(REGISTRY.methods())


def with_defaults(settings):
    """``settings`` (:func:`stylize`'s keyword arguments) with the shared settings' defaults for those not
    given (None for those the method decides); data and plumbing (content, callback, ...) left out."""
    given = dict(method=None, style_weights=None)
    given.update((setting.name, setting.default) for setting in schema.SHARED)
    given.update((name, value) for name, value in settings.items() if name not in _NOT_SETTINGS)
    return given


def resolve_settings(settings, *, styles=0, model=None):
    """:func:`stylize`'s settings as a run would use them: checked, with the method's defaults filled in.

    What ``nstaudio batch`` checks once for many items before any work, and what their
    results file's settings hash is taken of.

    Parameters
    ----------
    settings : dict
        :func:`stylize`'s keyword arguments (``method``, ``alpha``, ``style_weights``, ...).
    styles : int
        How many style recordings the run will have (for ``style_weights``).
    model : Network or None

    Returns
    -------
    dict
        Every setting the method takes by name, with ``method`` and ``style_weights``,
        JSON-ready, ``device`` as given (``"auto"`` is not looked up).

    Raises
    ------
    ParameterError
        An unknown setting, a value out of range, a method that does not take a setting, a
        model method without a model (or the reverse), weights that do not fit the styles.
    """
    unknown = sorted(set(settings) - set(setting_names()))
    if unknown:
        raise ParameterError(f"unknown settings: {', '.join(unknown)}")
    given = with_defaults(settings)
    method = REGISTRY.resolve(given.pop("method"), model)
    if method.needs == "model" and model is None:
        raise ParameterError(f"the {method.name} method needs a model")
    if method.needs == "style" and model is not None:
        raise ParameterError(f"the {method.name} method takes style recordings, not a model")
    options = _resolve_options(method, given, model, given.pop("style_weights"))
    if styles:
        normalised_weights(options["style_weights"], styles)
    return dict(options, method=method.name)


@holds_one_blas_thread
def analyse_style(style, sr=None, **settings):
    """Analyse style recordings once for many :func:`stylize` calls with the same settings.

    ``stylize(content, analyse_style(style, sr, **settings), content_sr, **settings)`` gives
    exactly what ``stylize(content, style, content_sr, style_sr=sr, **settings)`` gives, but
    the work that depends on the styles alone (resampling, spectrograms, and for
    ``optimize`` the random filters and the Gram targets) is done here, once.

    Parameters
    ----------
    style : np.ndarray or list of np.ndarray, each shape (samples,) or (channels, samples)
    sr : int or list of int
        Sample rate(s) of the style(s).
    **settings
        :func:`stylize`'s keyword arguments (``method``, ``style_weights``, ``n_fft``, ``seed``,
        ...); those the analysis depends on must be given the same to ``stylize``.

    Returns
    -------
    StyleAnalysis

    Raises
    ------
    AudioError, ParameterError
        As :func:`stylize` would for these styles and settings.
    """
    unknown = sorted(set(settings) - {*setting_names(), "model"})
    if unknown:
        raise ParameterError(f"analyse_style takes stylize's settings; not {', '.join(unknown)}")
    if settings.get("model") is not None:
        raise ParameterError("a style model carries its style: there is nothing to analyse")
    options = resolve_settings({name: value for name, value in settings.items() if name != "model"})
    method = REGISTRY.get(options["method"])
    styles_in, frames = _style_inputs(method, options, style, sr, None)
    if method.memory is not None:
        _check_memory(method.memory(options, 0, 0, frames))
    return _prepare_styles(method, options, styles_in, frames)


def _style_inputs(method, options, style, style_sr, sr):
    """``style`` (recordings at ``style_sr``, default ``sr``) as ``method.input`` at the working rate,
    and their frames in all."""
    styles = [] if style is None else style if isinstance(style, (list, tuple)) else [style]
    if method.needs == "style" and not styles:
        raise ParameterError("style: at least one style recording is needed")
    if method.needs == "model" and styles:
        raise ParameterError("a style model carries its style: give style recordings or a model, not both")
    style_srs = style_sr if isinstance(style_sr, (list, tuple)) else [style_sr] * len(styles)
    if len(style_srs) != len(styles):
        raise ParameterError(f"style_sr has {len(style_srs)} rates for {len(styles)} styles")
    if any(s_sr is None for s_sr in style_srs) and sr is None:
        raise ParameterError("style_sr: the style's sample rate is needed")
    style_srs = [sr if s_sr is None else check_sample_rate(s_sr, name="style_sr") for s_sr in style_srs]
    if styles:
        normalised_weights(options["style_weights"], len(styles))
    styles_in, frames = [], 0
    for i, (s, s_sr) in enumerate(zip(styles, style_srs)):
        name = "style" if len(styles) == 1 else f"style {i + 1}"
        s_work = audio.resample(audio.to_mono(as_audio(s, name)), orig_sr=s_sr, target_sr=options["sr_work"])
        styles_in.append(_analyse(s_work, name, method, options)[0][0])
        frames += spectral.n_frames(s_work.shape[-1], n_fft=options["n_fft"], hop_length=options["hop_length"])
    return styles_in, frames


def _prepare_styles(method, options, styles_in, frames):
    """The :class:`StyleAnalysis` of the analysed styles ``styles_in``: ``method.prepare``'s work, once."""
    prepared = method.prepare(styles_in, options) if method.prepare is not None and styles_in else styles_in
    _read_only(prepared)  # shared by runs in several threads: a write would be a bug, and now an error
    return StyleAnalysis(method=method.name, settings=_analysis_settings(method, options), prepared=prepared,
                         frames=frames, styles=len(styles_in))


def _read_only(value):
    """Mark every numpy array in ``value`` (nested tuples, lists and dataclasses) read-only."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, (list, tuple)):
        for item in value:
            _read_only(item)
    elif hasattr(value, "__dataclass_fields__"):
        for name in value.__dataclass_fields__:
            _read_only(getattr(value, name))


def analysis_setting_names(method):
    """The settings an analysis for ``method`` depends on: the working rate, the STFT, the style
    weights and the method's own ``style_settings``."""
    return ("sr_work", "n_fft", "hop_length", "style_weights", *method.style_settings)


def _analysis_settings(method, options):
    """The settings an analysis for ``method`` depends on, from the resolved ``options``."""
    settings = {name: options[name] for name in analysis_setting_names(method)}
    if settings["style_weights"] is not None:
        settings["style_weights"] = [float(w) for w in settings["style_weights"]]
    return settings


def _check_analysis(analysis, method, options):
    """ParameterError unless ``analysis`` was made for ``method`` with these settings; ``style_weights``
    may be left out (the analysis carries them) or given in any scale."""
    if analysis.method != method.name:
        raise ParameterError(f"the style analysis was made for the {analysis.method} method, not {method.name}")
    wanted = _analysis_settings(method, options)
    differ = [f"{name}={wanted[name]!r} (analysed with {analysis.settings[name]!r})"
              for name in wanted if name != "style_weights" and wanted[name] != analysis.settings[name]]
    weights = options["style_weights"]
    if weights is not None and (len(weights) != analysis.styles or not np.allclose(
            normalised_weights(weights, len(weights)), normalised_weights(analysis.settings["style_weights"],
                                                                          analysis.styles), rtol=1e-12, atol=0)):
        differ.append(f"style_weights={weights!r} (analysed with {analysis.settings['style_weights']!r})")
    if differ:
        raise ParameterError(f"the style analysis does not fit these settings: {', '.join(differ)}")


def _analyse(y, name, method, options):
    """The working-rate signal ``y`` (channels, n) as ``method.input`` (after checking it is long enough),
    and its STFT (None for waveform methods)."""
    n_fft, hop_length, sr_work = options["n_fft"], options["hop_length"], options["sr_work"]
    min_frames = method.min_frames(options)
    frames = spectral.n_frames(y.shape[-1], n_fft=n_fft, hop_length=hop_length)
    if y.shape[-1] < n_fft or frames < min_frames:
        need = max(n_fft, (min_frames - 1) * hop_length) / sr_work
        raise AudioError(f"{name} is too short: {y.shape[-1] / sr_work:.3f} s, needs at least {need:.3f} s "
                         f"(one {n_fft}-sample frame and {min_frames} frames for the filter width)")
    if method.input == "waveform":
        return y, None
    spec = spectral.stft(y, n_fft=n_fft, hop_length=hop_length)
    return (np.abs(spec) if method.input == "magnitude" else spectral.log_magnitude(spec)), spec


def _resolve_options(method, given, model, style_weights):
    """The settings ``method.run`` gets: ``given`` (setting name -> value, None where not given) with the
    method's defaults (:func:`nstaudio.settings.resolve`), and ``style_weights``.

    Everything here is checked before any audio is touched.
    """
    unknown = sorted(set(given) - set(setting_names()))
    if unknown:
        raise TypeError(f"stylize() got unexpected keyword arguments: {', '.join(unknown)}")
    schema.check_applies(method, given, REGISTRY.methods())  # before the model is looked at: the setting is the first mistake
    if method.model_settings is not None:
        model_settings = method.model_settings(model)
    elif model is not None:
        raise ParameterError(f"model is used by the {REGISTRY.resolve(None, model).name} method, "
                             f"not by {method.name!r}")
    else:
        model_settings = None
    options = schema.resolve(method, given, model_settings=model_settings, methods=REGISTRY.methods())
    options["style_weights"] = style_weights
    if method.validate is not None:
        method.validate(options)
    return options


def _check_memory(needed):
    """Refuse a run whose arrays could not fit in this machine's memory, before any work.

    ``needed`` is the method's lower bound of what it holds at once (filters, features,
    optimizer vectors): a run this refuses would end in MemoryError or the kernel's
    out-of-memory killer; one it passes may still need several times this much (README:
    what a run costs).
    """
    available = limits.machine_memory()
    if needed > available:
        raise ParameterError(f"these settings need at least {limits.gigabytes(needed)} of memory, this machine has "
                             f"{limits.gigabytes(available)}: use fewer filters, a smaller n_fft or width, or a "
                             f"shorter clip")
