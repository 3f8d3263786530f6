"""The reference backend's phase reconstruction: fast Griffin-Lim's steps, Phase Gradient Heap
Integration (whole spectrograms and one frame at a time) and the magnitude projection, in plain
numpy (the oracle of the fast backends'). The loop over Griffin-Lim's steps is ``nstaudio.spectral``'s.
"""

import heapq

import numpy as np

from .overlap import overlap_add, window_sum


class GriffinLimState:
    """One spectrogram's fast Griffin-Lim, bins first as :func:`nstaudio.stft` gives it.

    Attributes
    ----------
    S : np.ndarray, shape (bins, frames), float32
        The target magnitude.
    spec : np.ndarray, shape (bins, frames), complex
        ``S`` with the current phase: the estimate the next projection inverts.
    window : np.ndarray, shape (n_fft,), float32
    hop_length : int
    trim : int
        Samples of padding at each end of a centered STFT's signal (0 if not centered).
    wss : np.ndarray, shape (n_fft + hop_length * (frames - 1),), float64
        The summed squared window, and ``covered``, where it is not 0.
    norm : np.float32
        ``||S||``: the spectral convergence's denominator.
    """

    def __init__(self, S, angles, window, hop_length, center):
        self.S, self.spec = S, S * angles
        self.window, self.hop_length = window, hop_length
        self.trim = window.shape[0] // 2 if center else 0
        self.wss = window_sum(window, hop_length, S.shape[1])
        self.covered = self.wss > np.finfo(np.float32).tiny
        self.norm = np.linalg.norm(S.ravel())


def griffin_lim_start(S, angles, *, window, hop_length, center):
    """Fast Griffin-Lim's state for one spectrogram (:meth:`nstaudio.kernels.interface.Backend.griffin_lim_start`).

    A centered STFT's padding is zeroed in the signal between steps, as :func:`nstaudio.stft` pads.
    """
    return GriffinLimState(S, angles, window, hop_length, center)


def _inverse(state, spec):
    """Least-squares ISTFT of ``spec`` (bins, frames), in the padded domain: (n_fft + hop (frames - 1),)."""
    n_fft = state.window.shape[0]
    y = overlap_add(np.fft.irfft(spec.T, n=n_fft, axis=-1) * state.window, state.hop_length)
    y[state.covered] /= state.wss[state.covered]
    return y


def griffin_lim_project(state):
    """The STFT of the ISTFT of ``state.spec``, the signal re-padded with zeros as :func:`nstaudio.stft` pads.

    Returns
    -------
    np.ndarray, shape (bins, frames), complex128
    """
    y = _inverse(state, state.spec)
    y[:state.trim] = 0
    y[len(y) - state.trim:] = 0
    frames = np.lib.stride_tricks.sliding_window_view(y, state.window.shape[0])[::state.hop_length]
    return np.fft.rfft(frames * state.window, axis=-1).T


def griffin_lim_phase_step(state, rebuilt, previous, coef):
    """Fast Griffin-Lim's phase step: ``state.spec = S a / (|a| + 1e-16)``, ``a = rebuilt - coef previous``.

    As :meth:`nstaudio.kernels.interface.Backend.griffin_lim_phase_step`, on (bins, frames) arrays;
    the norm ``||S - |rebuilt|||`` comes back in the precision of ``rebuilt``.
    """
    residual = np.linalg.norm((state.S - np.abs(rebuilt)).ravel())
    a = rebuilt if previous is None else rebuilt - coef * previous
    state.spec = state.S * (a / (np.abs(a) + 1e-16))
    return residual


def griffin_lim_inverse(state):
    """The ISTFT of ``state.spec`` in the padded domain, padding kept (spectral's to trim).

    Returns
    -------
    np.ndarray, shape (n_fft + hop_length * (frames - 1),), float32
    """
    return _inverse(state, state.spec).astype(np.float32)


def heap_integrate(magnitude, time_step, freq_step, threshold, phase):
    """Phase Gradient Heap Integration (Prusa, Balazs & Sondergaard 2017), on Python's ``heapq``.

    From the largest coefficient not yet reached, phase spreads to its four neighbours in
    order of decreasing magnitude, each step adding the mean of the two coefficients' phase
    increments (trapezoidal integration of the phase gradient); when the heap runs dry the
    next island starts at phase 0 from the largest coefficient left. Ties in magnitude go
    to the lower flat index, so every backend visits the coefficients in the same order.

    Parameters
    ----------
    magnitude : np.ndarray, shape (bins, frames)
    time_step : np.ndarray, shape (bins, frames), float64
        Phase advance per frame at each coefficient (hop x the time derivative of the phase).
    freq_step : np.ndarray, shape (bins, frames), float64
        Phase advance per bin at each coefficient, without the pi every bin adds.
    threshold : float
        Coefficients at or below it keep the phase they have in ``phase``.
    phase : np.ndarray, shape (bins, frames), float64
        In: the phase of the coefficients below ``threshold``; out: every phase (radians).

    Returns
    -------
    np.ndarray
        ``phase``.
    """
    bins, frames = magnitude.shape
    flat = magnitude.ravel()
    done = flat <= threshold
    heap = []
    for start in np.argsort(-flat, kind="stable"):
        if done[start]:
            continue
        done[start] = True
        phase.flat[start] = 0.0
        heapq.heappush(heap, (-flat[start], start))
        while heap:
            _, index = heapq.heappop(heap)
            k, t = divmod(int(index), frames)
            here = phase[k, t]
            for kk, tt in ((k, t + 1), (k, t - 1), (k + 1, t), (k - 1, t)):
                if not (0 <= kk < bins and 0 <= tt < frames) or done[kk * frames + tt]:
                    continue
                if tt != t:
                    step = 0.5 * (time_step[k, t] + time_step[kk, tt])
                else:
                    step = 0.5 * (freq_step[k, t] + freq_step[kk, tt]) + np.pi
                phase[kk, tt] = here + step if (tt > t or kk > k) else here - step
                done[kk * frames + tt] = True
                heapq.heappush(heap, (-flat[kk * frames + tt], kk * frames + tt))
    return phase


def heap_integrate_frame(magnitude, time_step, freq_step, threshold, phase):
    """Real-time Phase Gradient Heap Integration of one frame (Prusa & Holighaus 2017), on ``heapq``.

    The previous frame's coefficients above ``threshold`` seed the heap with their known
    phase; from the largest coefficient on the heap, phase spreads forward in time (a
    previous-frame coefficient to its bin in the new frame) or along the new frame's bins,
    each step adding the mean of the two coefficients' phase increments. When the heap runs
    dry the largest new-frame coefficient not yet reached starts an island at phase 0. Ties
    go to the lower flat index (``bin * 2 + column``), so every backend visits in one order.

    Parameters
    ----------
    magnitude : np.ndarray, shape (bins, 2)
        Column 0 the previous frame, column 1 the new one.
    time_step : np.ndarray, shape (bins, 2), float64
        Phase advance per frame at each coefficient.
    freq_step : np.ndarray, shape (bins,), float64
        The new frame's phase advance per bin, without the pi every bin adds.
    threshold : float
        Coefficients at or below it take no part; new-frame ones keep the phase in ``phase``.
    phase : np.ndarray, shape (bins, 2), float64
        In: column 0 the previous frame's phase, column 1 the phase for coefficients below
        ``threshold``; out: column 1 filled in.

    Returns
    -------
    np.ndarray
        ``phase``.
    """
    bins = magnitude.shape[0]
    flat = magnitude.ravel()
    done = np.ones(2 * bins, dtype=bool)
    done[1::2] = flat[1::2] <= threshold
    heap = [(-flat[2 * k], 2 * k) for k in range(bins) if flat[2 * k] > threshold]
    heapq.heapify(heap)
    seeds = iter(np.argsort(-flat[1::2], kind="stable"))
    while True:
        if not heap:
            k = next((k for k in seeds if not done[2 * k + 1]), None)
            if k is None:
                break
            done[2 * k + 1] = True
            phase[k, 1] = 0.0
            heapq.heappush(heap, (-flat[2 * k + 1], 2 * k + 1))
        _, index = heapq.heappop(heap)
        k, column = divmod(int(index), 2)
        if column == 0:
            if not done[2 * k + 1]:
                phase[k, 1] = phase[k, 0] + 0.5 * (time_step[k, 0] + time_step[k, 1])
                done[2 * k + 1] = True
                heapq.heappush(heap, (-flat[2 * k + 1], 2 * k + 1))
            continue
        for kk in (k + 1, k - 1):
            if not 0 <= kk < bins or done[2 * kk + 1]:
                continue
            step = 0.5 * (freq_step[k] + freq_step[kk]) + np.pi
            phase[kk, 1] = phase[k, 1] + step if kk > k else phase[k, 1] - step
            done[2 * kk + 1] = True
            heapq.heappush(heap, (-flat[2 * kk + 1], 2 * kk + 1))
    return phase


def keep_magnitude(target, magnitude, estimate):
    """The magnitude projection of iterative phase retrieval, in place.

    Parameters
    ----------
    target : np.ndarray, complex, C-contiguous
        In: the current spectra; out: ``magnitude`` with ``estimate``'s phases (unchanged where
        ``estimate`` is 0).
    magnitude : np.ndarray, real, shape of ``target``
        The magnitudes to keep (``|target|``).
    estimate : np.ndarray, complex, shape of ``target``
        Spectra whose phases are taken.

    Returns
    -------
    np.ndarray
        ``target``'s new value minus its old one.
    """
    size = np.abs(estimate)
    new = np.where(size > 0, magnitude * estimate / np.where(size > 0, size, 1.0), target)
    change = new - target
    target[...] = new
    return change
