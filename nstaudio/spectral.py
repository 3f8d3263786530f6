"""Short-time Fourier transforms and phase reconstruction, with librosa's conventions.

``stft`` frames a (zero-padded, when ``center``) signal with a periodic window and
takes ``scipy.fft.rfft`` of every frame; ``istft`` is its least-squares inverse
(overlap-add divided by the summed squared window). ``griffin_lim`` is the fast
Griffin-Lim algorithm of Perraudin, Balazs and Sondergaard (2013): Griffin-Lim with
a momentum term, as in ``librosa.griffinlim``. ``pghi`` is Phase Gradient Heap Integration
(Prusa, Balazs and Sondergaard 2017): a phase from the magnitude alone, without iterating,
as a start for Griffin-Lim or on its own. ``log_magnitude`` / ``from_log_magnitude`` are the
representation the methods optimize: ``log1p |STFT|`` and back.

Griffin-Lim's loop is written once (:func:`fast_griffin_lim`), over the step kernels every
backend provides (``griffin_lim_start``, ``_project``, ``_phase_step``, ``_inverse``:
:class:`nstaudio.kernels.interface.Backend`).
"""

import numpy as np
import scipy.fft
import scipy.signal

from .audio import fix_length
from .errors import ParameterError
from .kernels import get_backend
from .kernels.blas_threads import holds_one_blas_thread
from .kernels.overlap import overlap_add, window_sum
from .kernels.thread_share import fft_workers
from .validation import check_choice, check_float, check_floating, check_int

# A window-sum below this is treated as zero (no frame covers the sample).
_TINY = np.finfo(np.float32).tiny
# The Gaussian exp(-pi t^2 / gamma) closest to a Hann window of L samples has
# gamma = 0.25645 L^2 (Prusa, Balazs & Sondergaard 2017, table 1).
HANN_GAMMA = 0.25645
# PGHI leaves coefficients below this fraction of the largest to random phase (the paper's 1e-6).
PGHI_TOLERANCE = 1e-6
PHASE_INITS = ("random", "content", "pghi")


def _resolve(n_fft, hop_length, win_length):
    """Apply librosa's cascading defaults and check the three lengths."""
    n_fft = check_int("n_fft", n_fft, minimum=16, maximum=2**16)
    win_length = n_fft if win_length is None else check_int("win_length", win_length, minimum=1, maximum=n_fft)
    hop_length = win_length // 4 if hop_length is None else hop_length
    hop_length = check_int("hop_length", hop_length, minimum=1, maximum=n_fft)
    return n_fft, hop_length, win_length


def get_window(window, win_length, n_fft):
    """A periodic window of ``win_length`` samples, zero-padded to ``n_fft`` (centered).

    Returns
    -------
    np.ndarray, shape (n_fft,), float32
    """
    try:
        w = scipy.signal.get_window(window, win_length, fftbins=True)
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"window {window!r} is not a window scipy knows ({exc})") from None
    lpad = (n_fft - win_length) // 2
    return np.pad(w, (lpad, n_fft - win_length - lpad)).astype(np.float32)


def n_frames(n_samples, *, n_fft=2048, hop_length=None, center=True):
    """How many frames :func:`stft` gives for ``n_samples`` samples (0 if too short)."""
    hop_length = n_fft // 4 if hop_length is None else hop_length
    if center:
        return 1 + n_samples // hop_length
    return 0 if n_samples < n_fft else 1 + (n_samples - n_fft) // hop_length


def stft(y, *, n_fft=2048, hop_length=None, win_length=None, window="hann", center=True):
    """Short-time Fourier transform.

    Parameters
    ----------
    y : np.ndarray, shape (..., samples)
        Floating point, any memory order or strides (computed in float32).
    n_fft : int
        FFT size; the output has ``1 + n_fft // 2`` frequency bins.
    hop_length : int or None
        Samples between frames; default ``win_length // 4``.
    win_length : int or None
        Window length; default ``n_fft``.
    window : str or tuple
        Any window ``scipy.signal.get_window`` accepts.
    center : bool
        Zero-pad ``n_fft // 2`` samples on both sides so frame ``t`` is centered at ``t * hop_length``.

    Returns
    -------
    np.ndarray, shape (..., 1 + n_fft // 2, frames), complex64
    """
    n_fft, hop_length, win_length = _resolve(n_fft, hop_length, win_length)
    y = check_floating(np.asarray(y), "stft").astype(np.float32, copy=False)
    if center:
        pad = [(0, 0)] * (y.ndim - 1) + [(n_fft // 2, n_fft // 2)]
        y = np.pad(y, pad)
    if y.shape[-1] < n_fft:
        raise ParameterError(f"signal of {y.shape[-1]} samples is shorter than n_fft={n_fft}")
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft, axis=-1)[..., ::hop_length, :]
    w = get_window(window, win_length, n_fft)
    spec = scipy.fft.rfft(frames * w, axis=-1, workers=fft_workers())
    return np.swapaxes(spec, -1, -2).astype(np.complex64, copy=False)


def log_magnitude(S):
    """The log1p magnitude the methods work on: ``log1p(|S|)``.

    Parameters
    ----------
    S : np.ndarray, shape (..., bins, frames), complex or real
        An STFT (:func:`stft`) or a magnitude.

    Returns
    -------
    np.ndarray, shape of ``S``, real (float32 for a complex64 STFT), non-negative
    """
    return np.log1p(np.abs(S))


def from_log_magnitude(X):
    """The magnitude of a log1p magnitude: ``expm1(X)``, the inverse of :func:`log_magnitude`.

    Parameters
    ----------
    X : np.ndarray, shape (..., bins, frames), real
        Clamp it at 0 first where it may be negative (a method's output): ``expm1`` of a
        negative value is a negative "magnitude".

    Returns
    -------
    np.ndarray, shape and dtype of ``X``
    """
    return np.expm1(X)


def istft(stft_matrix, *, hop_length=None, win_length=None, n_fft=None, window="hann", center=True, length=None):
    """Inverse short-time Fourier transform (least-squares overlap-add).

    Parameters
    ----------
    stft_matrix : np.ndarray, shape (..., 1 + n_fft // 2, frames), complex
    n_fft : int or None
        Default ``2 * (bins - 1)``.
    hop_length, win_length, window, center
        As given to :func:`stft`.
    length : int or None
        Trim or zero-pad the output to exactly this many samples.

    Returns
    -------
    np.ndarray, shape (..., samples), float32
    """
    stft_matrix = np.asarray(stft_matrix)
    n_fft = 2 * (stft_matrix.shape[-2] - 1) if n_fft is None else n_fft
    n_fft, hop_length, win_length = _resolve(n_fft, hop_length, win_length)
    if stft_matrix.shape[-2] != 1 + n_fft // 2:
        raise ParameterError(f"stft_matrix has {stft_matrix.shape[-2]} bins, n_fft={n_fft} needs {1 + n_fft // 2}")
    w = get_window(window, win_length, n_fft)
    frames = scipy.fft.irfft(np.swapaxes(stft_matrix, -1, -2), n=n_fft, axis=-1, workers=fft_workers())
    frames = frames.astype(np.float32, copy=False) * w
    y = overlap_add(frames, hop_length)
    wss = window_sum(w, hop_length, stft_matrix.shape[-1])
    nonzero = wss > _TINY
    y[..., nonzero] /= wss[nonzero]
    return _trim_padding(y, n_fft // 2 if center else 0, length)


def _trim_padding(y, trim, length):
    """Drop a centered STFT's ``trim`` padding samples from the start, then fix the length.

    Parameters
    ----------
    y : np.ndarray, shape (..., padded_samples)
        Overlap-added signal.
    trim : int
        ``n_fft // 2`` for a centered STFT, else 0.
    length : int or None
        Exact output length; None drops ``trim`` samples from the end as well.

    Returns
    -------
    np.ndarray, shape (..., samples), float32, contiguous
    """
    y = y[..., trim:]
    if length is None:
        y = y[..., : y.shape[-1] - trim]
    else:
        y = fix_length(y, check_int("length", length, minimum=0))
    return np.ascontiguousarray(y, dtype=np.float32)


def spectral_convergence(S, rebuilt):
    """Spectral convergence in dB: ``20 log10(||S - |rebuilt||| / ||S||)``.

    Parameters
    ----------
    S : np.ndarray, shape (..., bins, frames), real, non-negative
        Target magnitude.
    rebuilt : np.ndarray, same shape, complex
        STFT of the reconstructed signal.
    """
    num = np.linalg.norm((S - np.abs(rebuilt)).ravel())
    den = np.linalg.norm(np.asarray(S).ravel())
    return float(20.0 * np.log10(max(num, 1e-30) / max(den, 1e-30)))


@holds_one_blas_thread
def griffin_lim(S, *, n_iter=100, hop_length=None, win_length=None, n_fft=None, window="hann", center=True,
                length=None, momentum=0.99, init="random", content=None, seed=None, return_convergence=False,
                callback=None, device="auto"):
    """Fast Griffin-Lim: a waveform whose STFT magnitude approximates ``S``.

    Parameters
    ----------
    S : np.ndarray, shape (..., 1 + n_fft // 2, frames), non-negative
        Target magnitude spectrogram; leading axes are channels, each reconstructed on its own.
    n_iter : int
        Iterations (each one ISTFT and one STFT).
    hop_length, win_length, n_fft, window, center
        As in :func:`stft`.
    length : int or None
        Exact output length in samples.
    momentum : float
        Fast Griffin-Lim momentum; 0 gives plain Griffin-Lim. librosa's default 0.99.
    init : {"random", "content", "pghi"} or np.ndarray
        Initial phase: uniform random (seeded by ``seed``), the phase of ``content``,
        :func:`pghi`'s phase of ``S`` (Hann windows only), or an array whose angle is used
        (complex STFT or real phase in radians).
    content : np.ndarray or None, complex, same shape as ``S``
        STFT whose phase starts the iteration when ``init="content"``.
    seed : int or None
        Seed for ``numpy.random.default_rng`` (random init).
    return_convergence : bool
        Also return the spectral convergence (dB) after every iteration.
    callback : callable or None
        Called as ``callback(step, convergence_db)`` after every iteration; ``step`` counts
        on across channels, up to ``channels * n_iter``.
    device : {"auto", "numpy", "cpu", "cuda"}
        Backend (see :func:`nstaudio.get_backend`).

    Returns
    -------
    y : np.ndarray, shape (..., samples), float32
    convergence : np.ndarray, shape (..., n_iter), only if ``return_convergence``
    """
    S, n_fft, hop_length, win_length = _check_magnitude(S, np.float32, n_fft, hop_length, win_length)
    n_iter = check_int("n_iter", n_iter, minimum=0)
    momentum = check_float("momentum", momentum, minimum=0.0, maximum=1.0)
    backend = get_backend(device)
    if isinstance(init, str) and init == "pghi":
        if window != "hann":
            raise ParameterError(f"init='pghi' is made for the 'hann' window, got {window!r}")
        init = pghi(S, n_fft=n_fft, hop_length=hop_length, win_length=win_length, seed=seed, device=device)
    angles = _initial_phase(S, init, content, seed)
    w = get_window(window, win_length, n_fft)
    batch = S.shape[:-2]
    S_flat = S.reshape(-1, *S.shape[-2:])
    angles_flat = angles.reshape(S_flat.shape)
    outputs, histories = [], []
    for c in range(S_flat.shape[0]):
        report = None
        if callback is not None:
            report = (lambda i, db, offset=c * n_iter: callback(offset + i, db))
        y_pad, history = fast_griffin_lim(backend, S_flat[c], angles_flat[c], window=w, hop_length=hop_length,
                                          center=center, momentum=momentum, n_iter=n_iter, callback=report)
        outputs.append(backend.to_numpy(y_pad))
        histories.append(np.asarray(history))
    y = _trim_padding(np.stack(outputs).reshape(*batch, -1), n_fft // 2 if center else 0, length)
    if return_convergence:
        return y, np.stack(histories).reshape(*batch, n_iter)
    return y


def fast_griffin_lim(backend, S, angles, *, window, hop_length, center, momentum, n_iter, callback=None):
    """Fast Griffin-Lim on one magnitude spectrogram, over ``backend``'s step kernels.

    Each iteration projects the estimate onto the consistent spectrograms (an ISTFT, then an
    STFT) and takes the phase of the projection, extrapolated by the momentum, under ``S``.

    Parameters
    ----------
    backend : nstaudio.kernels.interface.Backend
    S : np.ndarray, shape (bins, frames), float32
    angles : np.ndarray, shape (bins, frames), complex64, unit modulus
        The initial phase.
    window : np.ndarray, shape (n_fft,), float32
    hop_length : int
    center : bool
    momentum : float
    n_iter : int
    callback : callable or None
        ``callback(iteration, convergence_db)`` after each iteration.

    Returns
    -------
    y_padded : array of ``backend``, shape (n_fft + hop_length * (frames - 1),), float32
        ISTFT of the final estimate before the ``center`` trim.
    history : np.ndarray, shape (n_iter,), float64
        Spectral convergence (dB) after each iteration.
    """
    state = backend.griffin_lim_start(S, angles, window=window, hop_length=hop_length, center=center)
    coef = momentum / (1.0 + momentum)
    residuals, previous = [], None
    for i in range(n_iter):
        rebuilt = backend.griffin_lim_project(state)
        residuals.append(backend.griffin_lim_phase_step(state, rebuilt, previous, coef))
        previous = rebuilt
        if callback is not None:
            callback(i + 1, np.float64(_convergence_db(backend.to_numpy(residuals[-1])[()], state.norm)))
    # The residuals stay in the backend's memory until here: a GPU would sync to hand each one back.
    residuals = backend.to_numpy(backend.xp.stack(residuals)) if residuals else ()
    return backend.griffin_lim_inverse(state), np.array([_convergence_db(r, state.norm) for r in residuals],
                                                        dtype=np.float64)


def _convergence_db(residual, norm):
    """:func:`spectral_convergence` from ``||S - |rebuilt|||`` and ``||S||``, in their precision."""
    return 20.0 * np.log10(max(residual, 1e-30) / max(norm, 1e-30))


def _check_magnitude(S, dtype, n_fft, hop_length, win_length):
    """``S`` as ``dtype`` after checking it is a finite non-negative (..., bins, frames) magnitude,
    and the three lengths with librosa's defaults (``n_fft`` from the bins)."""
    S = np.asarray(S, dtype=dtype)
    if S.ndim < 2:
        raise ParameterError(f"S must have shape (..., bins, frames), got {S.shape}")
    n_fft = 2 * (S.shape[-2] - 1) if n_fft is None else n_fft
    n_fft, hop_length, win_length = _resolve(n_fft, hop_length, win_length)
    if S.shape[-2] != 1 + n_fft // 2:
        raise ParameterError(f"S has {S.shape[-2]} bins, n_fft={n_fft} needs {1 + n_fft // 2}")
    if not np.all(np.isfinite(S)) or np.any(S < 0):
        raise ParameterError("S must be finite and non-negative")
    return S, n_fft, hop_length, win_length


def _initial_phase(S, init, content, seed):
    """Unit-modulus complex array of ``S``'s shape for the first iteration."""
    if isinstance(init, str):
        check_choice("init", init, PHASE_INITS)
        if init == "random":
            rng = np.random.default_rng(seed)
            return np.exp(2j * np.pi * rng.random(S.shape)).astype(np.complex64)
        if content is None:
            raise ParameterError("init='content' needs the content's STFT as content=")
        init = content
    init = np.asarray(init)
    if init.shape != S.shape:
        raise ParameterError(f"init phase has shape {init.shape}, S has {S.shape}")
    if np.iscomplexobj(init):
        mag = np.abs(init)
        return np.where(mag > 0, init / np.maximum(mag, 1e-30), 1.0).astype(np.complex64)
    return np.exp(1j * init).astype(np.complex64)


def pghi(S, *, n_fft=None, hop_length=None, win_length=None, tolerance=PGHI_TOLERANCE, seed=None, device="auto"):
    """Phase from magnitude by Phase Gradient Heap Integration (Prusa, Balazs & Sondergaard 2017).

    For a Gaussian window the STFT's log-magnitude and phase are tied like the real and
    imaginary parts of an analytic function, so the phase's gradient follows from the
    log-magnitude's: with ``s = log |X|``, ``gamma`` the Gaussian's ``exp(-pi t^2 / gamma)``
    (``0.25645 L^2`` for a Hann window of L samples), time in samples and frequency in
    cycles per sample, ``dphi/dt = 2 pi f + ds/df / gamma`` and ``dphi/df = -gamma ds/dt``,
    and each bin adds pi more (frames are transformed from their first sample, which lies
    half a window before the frame's centre). The gradient is integrated along the
    coefficients in order of decreasing magnitude (``heap_integrate`` of the backend); those
    below ``tolerance`` times the largest get random phase.

    Parameters
    ----------
    S : np.ndarray, shape (..., 1 + n_fft // 2, frames), non-negative
        Magnitude of a centered STFT with a Hann window (as :func:`stft` gives).
    n_fft, hop_length, win_length : int or None
        As in :func:`stft`.
    tolerance : float
        Relative magnitude below which the phase is left random (0 < tolerance < 1).
    seed : int or None
        Seeds the random phase of the small coefficients.
    device : {"auto", "numpy", "cpu", "cuda"}
        Backend of the heap integration (the GPU backend runs the CPU's: it is sequential).

    Returns
    -------
    np.ndarray, shape of ``S``, float64
        Phase in radians.
    """
    S, n_fft, hop_length, win_length = _check_magnitude(S, np.float64, n_fft, hop_length, win_length)
    tolerance = check_float("tolerance", tolerance, minimum=0.0, maximum=1.0, strict_minimum=True)
    backend = get_backend(device)
    gamma = HANN_GAMMA * win_length ** 2
    rng = np.random.default_rng(seed)
    S_flat = S.reshape(-1, *S.shape[-2:])
    phases = np.empty_like(S_flat)
    bins = np.arange(S.shape[-2])[:, None]
    for c, magnitude in enumerate(S_flat):
        peak = magnitude.max()
        log_magnitude = np.log(np.maximum(magnitude, np.finfo(np.float64).tiny))
        # The log of a tiny magnitude says nothing about the phase; clamp it (ltfat: 11 nepers
        # below the peak) so that its differences cannot swamp those of the coefficients around.
        log_magnitude = np.maximum(log_magnitude, np.log(max(peak, np.finfo(np.float64).tiny)) - 11.0)
        d_bin = _centered_difference(log_magnitude, axis=0)
        d_bin[0] = d_bin[-1] = 0.0  # the spectrum is symmetric about DC and Nyquist
        d_frame = _centered_difference(log_magnitude, axis=1)
        time_step = hop_length * (2 * np.pi * bins / n_fft + (n_fft / gamma) * d_bin)
        freq_step = -(gamma / (n_fft * hop_length)) * d_frame
        phase = 2 * np.pi * rng.random(magnitude.shape)
        phases[c] = backend.heap_integrate(np.ascontiguousarray(magnitude), time_step, freq_step,
                                           tolerance * peak, phase)
    return phases.reshape(S.shape)


def _centered_difference(x, axis):
    """Derivative per sample step along ``axis``: centred inside, one-sided at the two ends."""
    return np.gradient(x, axis=axis) if x.shape[axis] > 1 else np.zeros_like(x)
