"""The public entry point: arrays in, stylized array out.

Data flows one way (DESIGN.md): audio at any rate and channel count -> working
rate -> log1p-magnitude STFT -> a method -> phase reconstruction -> the content's
rate, length, channels and loudness.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from . import audio, limits, spectral
from .errors import AudioError, NumericalError, ParameterError
from .methods.feedforward import feedforward
from .methods.optimize import DEFAULT_OPTIMIZER, DEFAULT_TOLERANCE, DEFAULT_TOLERANCE_WINDOW, INITS, OPTIMIZERS, optimize
from .methods.timedomain import OPTIMIZERS as TIMEDOMAIN_OPTIMIZERS
from .methods.timedomain import timedomain
from .models import TRAINING_PEAK, Network
from .objective import normalised_weights
from .validation import MAX_SEED, as_audio, check_choice, check_float, check_int, check_sample_rate

METHODS = ("optimize", "feedforward", "timedomain")
PHASE_INITS = ("content", "random")
# Beyond 1e6 (10^8 times the default) the content term outweighs any style by so much that the
# output is the content; larger values only overflow float32 on the way there.
MAX_ALPHA = 1e6
# Adam steps in log1p-magnitude units (0..~10) or in samples (-1..1): a step above 10 is no search.
MAX_LEARNING_RATE = 10.0
# Defaults that differ by method (the parameters' None):
# - phase_iters: the optimized spectrograms need many Griffin-Lim iterations; a feedforward
#   network's output, started from the content's phase, needs few (and the method exists to be
#   fast); timedomain reconstructs no phase.
# - width: the time-domain conv reads 3 x (n_fft/2 + 1) channels at twice the frame rate, so
#   width 3 keeps an evaluation near the cost of the spectrogram method's width 11.
# - learning_rate: timedomain's Adam steps are in sample units.
# - optimizer, tolerance: the waveform is unbounded, which the projected L-BFGS is not made
#   for; SciPy's L-BFGS-B with the rule it was measured with (1e-3 over 20 iterations).
# - alpha: timedomain's content term also sees the real and imaginary parts (the phase); at
#   0.01 the output of 6 s of piano with a violin style lost the piano's onsets, at 1 they stay.
METHOD_DEFAULTS = {
    "optimize": dict(phase_iters=100, width=11, learning_rate=0.03, alpha=1e-2, hop_divisor=4,
                     optimizer=DEFAULT_OPTIMIZER, tolerance=DEFAULT_TOLERANCE, tolerance_window=DEFAULT_TOLERANCE_WINDOW),
    "feedforward": dict(phase_iters=32, width=11, learning_rate=0.03, alpha=1e-2, hop_divisor=4,
                        optimizer=DEFAULT_OPTIMIZER, tolerance=DEFAULT_TOLERANCE,
                        tolerance_window=DEFAULT_TOLERANCE_WINDOW),
    "timedomain": dict(phase_iters=0, width=3, learning_rate=1e-3, alpha=1.0, hop_divisor=8,
                       optimizer="lbfgs", tolerance=1e-3, tolerance_window=20),
}


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


def stylize(content, style=None, sr=None, *, model=None, method=None, style_sr=None, style_weights=None,
            sr_work=None, n_fft=None, hop_length=None, alpha=None, iterations=300, n_filters=4096, width=None,
            optimizer=None, init="noise", learning_rate=None, tolerance=None,
            tolerance_window=None, phase_iters=None, phase_init="content", seed=0,
            device="auto", match_loudness=True, callback=None, return_info=False):
    """Give ``content`` the timbre of ``style`` (or of a trained style ``model``).

    Parameters
    ----------
    content : np.ndarray, shape (samples,) or (channels, samples)
        Every channel is stylized (in one batch, with the same network).
    style : np.ndarray or list of np.ndarray, each shape (samples,) or (channels, samples)
        One or several style recordings; multichannel styles are mixed to mono. None with ``model``.
    sr : int
        Sample rate of ``content``.
    model : Network or None
        A style model from :func:`nstaudio.train_style` / :func:`nstaudio.load_model`: stylize
        in one pass (method ``"feedforward"``).
    method : {"optimize", "feedforward", "timedomain"} or None
        Default ``"feedforward"`` when ``model`` is given, else ``"optimize"``. ``"timedomain"``
        optimizes the waveform itself (Mital 2017): frames of ``n_fft`` samples every
        ``hop_length``, no phase reconstruction.
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
        Default ``n_fft // 4`` (``n_fft // 8`` for ``timedomain``), or the model's.
    alpha : float or None
        Content weight; 0 keeps only the style. Default 0.01 (1 for ``timedomain``).
    iterations : int
        Most optimizer iterations (>= 0).
    n_filters, width : int
        The random conv layer; ``width`` defaults to 11 frames (3 for ``timedomain``).
    optimizer : {"plbfgs", "lbfgs", "adam"} or None
        nstaudio's projected L-BFGS (default; not for ``timedomain``, whose default is
        ``"lbfgs"``), SciPy's L-BFGS-B, or Adam (see :func:`nstaudio.optimize`).
    init : {"noise", "content"}
        Starting spectrogram.
    learning_rate : float or None
        Adam's step size; default 0.03 (1e-3, in sample units, for ``timedomain``).
    tolerance : float or None
        Stop early once the loss fell by less than this fraction over the last
        ``tolerance_window`` iterations (default 2e-3 over 10; 1e-3 over 20 for
        ``timedomain``); 0 runs all ``iterations``.
    tolerance_window : int or None
    phase_iters : int or None
        Fast Griffin-Lim iterations; default 100 for ``optimize``, 32 for ``feedforward``
        (``timedomain`` reconstructs no phase).
    phase_init : {"content", "random"}
        Start Griffin-Lim from the content's phase or from random phase (the papers).
    seed : int
    device : {"auto", "numpy", "cpu", "cuda"}
        Backend of the optimizer and of Griffin-Lim (a feedforward network runs on numpy/BLAS).
    match_loudness : bool
        Scale the output to the content's RMS (lowered if it would clip).
    callback : callable or None
        ``callback(stage, step, total, value)`` with stage ``"optimize"`` (value: loss)
        or ``"phase"`` (value: spectral convergence in dB; steps count over all channels).
    return_info : bool
        Also return a :class:`StylizeInfo`.

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
    method = check_choice("method", method or ("feedforward" if model is not None else "optimize"), METHODS)
    defaults = METHOD_DEFAULTS[method]
    optimizer = defaults["optimizer"] if optimizer is None else optimizer
    tolerance = defaults["tolerance"] if tolerance is None else tolerance
    tolerance_window = defaults["tolerance_window"] if tolerance_window is None else tolerance_window
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_choice("init", init, INITS)
    check_choice("phase_init", phase_init, PHASE_INITS)
    if sr is None:
        raise ParameterError("sr: the content's sample rate is needed")
    sr = check_sample_rate(sr)
    if method == "feedforward":
        sr_work, n_fft, hop_length = _model_settings(model, style, sr_work, n_fft, hop_length)
    elif model is not None:
        raise ParameterError(f"model is used by the feedforward method, not by {method!r}")
    sr_work = check_int("sr_work", 22050 if sr_work is None else sr_work, minimum=1000, maximum=384000)
    n_fft = check_int("n_fft", 2048 if n_fft is None else n_fft, minimum=16, maximum=2**16)
    if hop_length is None:
        hop_length = n_fft // METHOD_DEFAULTS[method]["hop_divisor"]
    hop_length = check_int("hop_length", hop_length, minimum=1)
    if hop_length > n_fft:
        raise ParameterError(f"hop_length must be <= n_fft={n_fft}, got {hop_length}")
    if method == "timedomain" and hop_length > n_fft // 2:
        raise ParameterError(f"hop_length must be <= n_fft/2 = {n_fft // 2} for timedomain (beyond that the Hann "
                             f"window leaves samples no weight), got {hop_length}")
    if method == "timedomain" and phase_iters:
        raise ParameterError("phase_iters does not apply to the timedomain method: it reconstructs no phase")
    if method == "timedomain" and optimizer not in TIMEDOMAIN_OPTIMIZERS:
        raise ParameterError(f"optimizer {optimizer!r} does not apply to the timedomain method; "
                             f"choose one of {', '.join(TIMEDOMAIN_OPTIMIZERS)}")
    phase_iters = defaults["phase_iters"] if phase_iters is None else phase_iters
    width = defaults["width"] if width is None else width
    learning_rate = defaults["learning_rate"] if learning_rate is None else learning_rate
    alpha = defaults["alpha"] if alpha is None else alpha
    check_int("iterations", iterations, minimum=0, maximum=1_000_000)
    check_int("n_filters", n_filters, minimum=1, maximum=65536)
    width = check_int("width", width, minimum=1, maximum=1024)
    phase_iters = check_int("phase_iters", phase_iters, minimum=0, maximum=100_000)
    check_float("tolerance", tolerance, minimum=0.0, maximum=1.0)
    check_int("tolerance_window", tolerance_window, minimum=1, maximum=1_000_000)
    check_float("alpha", alpha, minimum=0.0, maximum=MAX_ALPHA)
    check_float("learning_rate", learning_rate, minimum=0.0, strict_minimum=True, maximum=MAX_LEARNING_RATE)
    check_int("seed", seed, minimum=0, maximum=MAX_SEED)

    was_1d = np.ndim(content) == 1
    content = as_audio(content, "content")
    styles = [] if style is None else style if isinstance(style, (list, tuple)) else [style]
    if not styles and method != "feedforward":
        raise ParameterError("style: at least one style recording is needed")
    style_srs = style_sr if isinstance(style_sr, (list, tuple)) else [style_sr] * len(styles)
    if len(style_srs) != len(styles):
        raise ParameterError(f"style_sr has {len(style_srs)} rates for {len(styles)} styles")
    style_srs = [sr if s_sr is None else check_sample_rate(s_sr, name="style_sr") for s_sr in style_srs]
    if styles:
        normalised_weights(style_weights, len(styles))
    stft_opts = dict(n_fft=n_fft, hop_length=hop_length)
    min_frames = 1 if method == "feedforward" else width

    def check_length(y, name):
        frames = spectral.n_frames(y.shape[-1], n_fft=n_fft, hop_length=hop_length)
        if y.shape[-1] < n_fft or frames < min_frames:
            need = max(n_fft, (min_frames - 1) * hop_length) / sr_work
            raise AudioError(f"{name} is too short: {y.shape[-1] / sr_work:.3f} s, needs at least {need:.3f} s "
                             f"(one {n_fft}-sample frame and {min_frames} frames for the filter width)")

    def log_spec(y, name):
        """Working-rate log1p magnitude (channels, bins, frames) and the complex STFT."""
        check_length(y, name)
        spec = spectral.stft(y, **stft_opts)
        return np.log1p(np.abs(spec)), spec

    content_work = audio.resample(content, orig_sr=sr, target_sr=sr_work)
    gain = 1.0
    if method == "feedforward":
        # log1p magnitudes depend on the level: show the network content at the level it was
        # trained on (all channels by one gain, so their balance stays), and undo it at the end.
        gain = TRAINING_PEAK / max(float(np.max(np.abs(content_work))), 1e-12)
        content_work = content_work * np.float32(gain)
    if method == "timedomain":  # works on the waveforms: no spectrograms to compute
        check_length(content_work, "content")
    else:
        X_content, content_spec = log_spec(content_work, "content")
    X_styles, styles_work = [], []
    for i, (s, s_sr) in enumerate(zip(styles, style_srs)):
        name = "style" if len(styles) == 1 else f"style {i + 1}"
        s = audio.to_mono(as_audio(s, name))
        styles_work.append(audio.resample(s, orig_sr=s_sr, target_sr=sr_work))
        if method == "timedomain":
            check_length(styles_work[-1], name)
        else:
            X_styles.append(log_spec(styles_work[-1], name)[0][0])

    _check_memory(method, channels=content.shape[0], samples=content_work.shape[-1],
                  style_samples=sum(s.shape[-1] for s in styles_work), n_fft=n_fft, hop_length=hop_length,
                  n_filters=n_filters, width=width, optimizer=optimizer)
    total = iterations
    report = None if callback is None else (lambda i, loss: callback("optimize", i, total, loss))
    if method == "timedomain":
        y_work, result = timedomain(
            content_work, [s[0] for s in styles_work], style_weights=style_weights, alpha=alpha,
            iterations=iterations, n_filters=n_filters, width=width, frame=n_fft, hop=hop_length,
            optimizer=optimizer, init=init, learning_rate=learning_rate, tolerance=tolerance,
            tolerance_window=tolerance_window, seed=seed, device=device, callback=report,
        )
        convergence = None
    elif method == "feedforward":
        X = feedforward(X_content, model.triple)
        result = _NO_OPTIMIZATION
    else:
        X, result = optimize(
            X_content, X_styles, style_weights=style_weights, alpha=alpha, iterations=iterations,
            n_filters=n_filters, width=width, optimizer=optimizer, init=init, learning_rate=learning_rate,
            tolerance=tolerance, tolerance_window=tolerance_window, seed=seed, device=device, callback=report,
        )

    if method != "timedomain":
        with np.errstate(over="ignore"):
            magnitude = np.expm1(X)
        if not np.all(np.isfinite(magnitude)):
            raise NumericalError("the optimized spectrogram grew too large to turn into audio (the optimizer "
                                 "diverged); lower learning_rate or alpha")
        phase_total = phase_iters * magnitude.shape[0]
        y_work, convergence = spectral.griffin_lim(
            magnitude, n_iter=phase_iters, length=content_work.shape[-1], init=phase_init,
            content=content_spec, seed=seed, return_convergence=True, device=device,
            callback=None if callback is None else (lambda i, db: callback("phase", i, phase_total, db)),
            **stft_opts,
        )
    y = audio.resample(y_work / np.float32(gain), orig_sr=sr_work, target_sr=sr, length=content.shape[-1])
    if not np.all(np.isfinite(y)):
        raise NumericalError("the stylized audio is not finite (the optimizer diverged); lower learning_rate or "
                             "alpha")
    if match_loudness:
        y = audio.match_loudness(y, content)
    if was_1d:
        y = y[0]
    if not return_info:
        return y
    info = StylizeInfo(
        method=method, loss=result["loss"], initial_loss=result["initial_loss"], style_loss=result["style_loss"],
        initial_style_loss=result["initial_style_loss"], content_loss=result["content_loss"],
        iterations=result["iterations"], evaluations=result["evaluations"], converged=result["converged"],
        phase_convergence_db=float(np.mean(convergence[:, -1])) if phase_iters and convergence is not None
        else float("nan"),
        seconds=time.perf_counter() - started, backend=result["backend"], gram_form=result["gram_form"],
        history=result["history"],
    )
    return y, info


# What StylizeInfo reports for the feedforward method, which runs no optimizer.
_NO_OPTIMIZATION = dict(loss=float("nan"), initial_loss=float("nan"), style_loss=float("nan"),
                        initial_style_loss=float("nan"), content_loss=float("nan"), iterations=0, evaluations=0,
                        converged=False, backend="numpy", gram_form="none", history=np.empty(0))


def _check_memory(method, *, channels, samples, style_samples, n_fft, hop_length, n_filters, width, optimizer):
    """Refuse settings whose arrays could not fit in this machine's memory, before any work.

    A lower bound of what the run holds at once: the random filters, the features of every
    channel and style, and the optimizer's copies of the variable. A run this refuses would
    end in MemoryError or the kernel's out-of-memory killer; one it passes may still need
    several times this much (README: what a run costs).
    """
    if method == "feedforward":
        return  # a fixed network over the content: memory like the audio's, which load() bounded
    bins = n_fft // 2 + 1
    frames = samples // hop_length + 1
    style_frames = style_samples // hop_length + 1
    if method == "timedomain":
        bins *= 3  # real part, imaginary part and magnitude are the conv's input channels
    copies = {"lbfgs": 2 * (2 * 10 + 5), "plbfgs": 2 * 10 + 5, "adam": 4}[optimizer]  # SciPy's are float64
    needed = 4 * (n_filters * bins * width                                # the filters
                  + 3 * n_filters * (channels * frames + style_frames)   # features, their gradient, the targets
                  + copies * channels * bins * frames)                   # the optimizer's vectors
    available = limits.machine_memory()
    if needed > available:
        raise ParameterError(f"these settings need at least {limits.gigabytes(needed)} of memory ({n_filters} filters "
                             f"x {bins} bins x width {width}, {channels} channel(s) of {frames} frames), this "
                             f"machine has {limits.gigabytes(available)}: use fewer filters, a smaller n_fft or "
                             f"width, or a shorter clip")


def _model_settings(model, style, sr_work, n_fft, hop_length):
    """The spectrogram settings of a style model; explicit ones must agree with them."""
    if model is None:
        raise ParameterError("the feedforward method needs a style model (model=, or --model)")
    if not isinstance(model, Network) or model.kind != "style":
        raise ParameterError("model must be a style model (nstaudio.train_style or nstaudio.load_model), "
                             f"got {'a loss network' if isinstance(model, Network) else type(model).__name__}")
    if style is not None:
        raise ParameterError("a style model carries its style: give style recordings or a model, not both")
    wanted = dict(zip(("sr_work", "n_fft", "hop_length"), model.spectrogram_settings))
    for name, value in (("sr_work", sr_work), ("n_fft", n_fft), ("hop_length", hop_length)):
        if value is not None and value != wanted[name]:
            raise ParameterError(f"{name}={value} differs from the model's {wanted[name]}; leave it unset")
    return wanted["sr_work"], wanted["n_fft"], wanted["hop_length"]
