"""The cpu backend's phase reconstruction: fast Griffin-Lim's steps, Phase Gradient Heap
Integration (whole spectrograms and one frame at a time) and the magnitude projection.

Griffin-Lim is frame-major throughout: spectra are (frames, bins) so every FFT runs along the
contiguous last axis and no transposed copy is ever made. The signal lives in the "padded"
domain of a centered STFT; re-padding the ISTFT's output with zeros, as stft(istft(.)) does,
is the same as zeroing its first and last n_fft // 2 samples, which the normalisation weights
(:func:`window_sum_weights`) do for free. The loop over the steps is ``nstaudio.spectral``'s.
"""

import numba
import numpy as np
import scipy.fft

from . import threading_layer
from .overlap import window_sum
from .thread_share import fft_workers
from .threading_layer import parallel_kernel, sum_in_order

threading_layer.configure()


@parallel_kernel()
def overlap_add_normalized(frames, window, hop, weights, out):
    """``out[i] = weights[i] * sum_t window[i - t*hop] * frames[t, i - t*hop]``.

    Parallel over hop-sized blocks of the output, each written by one thread (no
    races); within a block every covering frame adds one contiguous run into a local
    accumulator, through slices: the same sums indexed as ``out[i]`` and ``frames[t, i - t*hop]``
    ran twice as slowly (docs/decisions.md, "Griffin-Lim's overlap-add").

    Parameters
    ----------
    frames : (T, n_fft) float32
    window : (n_fft,) float32
        Synthesis window.
    hop : int
    weights : (n_fft + hop * (T - 1),) float32
        Inverse window-sum (0 where no frame covers a sample or the sample is cut).
    out : same shape as ``weights``
    """
    T, n_fft = frames.shape
    length = out.shape[0]
    n_blocks = (length + hop - 1) // hop
    for b in numba.prange(n_blocks):
        lo = b * hop
        hi = min(lo + hop, length)
        acc = np.zeros(hi - lo, dtype=out.dtype)
        t_first = max(0, (lo - n_fft) // hop + 1)
        for t in range(t_first, min(T - 1, b) + 1):
            start = max(lo, t * hop)
            stop = min(hi, t * hop + n_fft)
            offset = start - t * hop
            frame = frames[t, offset:offset + stop - start]
            taper = window[offset:offset + stop - start]
            run = acc[start - lo:stop - lo]
            for i in range(stop - start):
                run[i] += taper[i] * frame[i]
        for i in range(hi - lo):
            out[lo + i] = acc[i] * weights[lo + i]


@parallel_kernel()
def frame_windowed(y, window, hop, out):
    """``out[t, j] = window[j] * y[t*hop + j]``: (T, n_fft) frames of a padded signal."""
    T, n_fft = out.shape
    for t in numba.prange(T):
        start = t * hop
        for j in range(n_fft):
            out[t, j] = window[j] * y[start + j]


@parallel_kernel()
def phase_update(S, rebuilt, previous, coef, use_previous, spec_out):
    """One fast Griffin-Lim phase step, fused with the spectral-convergence sum.

    ``a = rebuilt - coef * previous``; ``spec_out = S * a / (|a| + 1e-16)``. Written
    on real and imaginary parts: complex ``abs`` and division would go through
    overflow-safe hypot and cost several times more.

    Returns
    -------
    float
        ``sum((S - |rebuilt|)**2)`` in float64.
    """
    T, F = S.shape
    rows = np.empty(T, dtype=np.float64)
    for t in numba.prange(T):
        row = 0.0
        for f in range(F):
            re = rebuilt[t, f].real
            im = rebuilt[t, f].imag
            d = np.float64(S[t, f] - np.sqrt(re * re + im * im))
            row += d * d
            if use_previous:
                re -= coef * previous[t, f].real
                im -= coef * previous[t, f].imag
            scale = S[t, f] / (np.sqrt(re * re + im * im) + np.float32(1e-16))
            spec_out[t, f] = complex(re * scale, im * scale)
        rows[t] = row
    return sum_in_order(rows)


def window_sum_weights(window, hop, n_frames, trim):
    """Inverse of the summed squared window, zeroed where it vanishes and in the ``trim`` edges.

    Returns
    -------
    np.ndarray, shape (n_fft + hop * (n_frames - 1),), float32
    """
    wss = window_sum(window, hop, n_frames)
    length = wss.shape[0]
    weights = np.zeros(length, dtype=np.float32)
    nonzero = wss > np.finfo(np.float32).tiny
    weights[nonzero] = 1.0 / wss[nonzero]
    if trim:
        weights[:trim] = 0
        weights[length - trim:] = 0
    return weights


class GriffinLimState:
    """One spectrogram's fast Griffin-Lim on the cpu backend (:func:`griffin_lim_start` makes it).

    Attributes
    ----------
    S : np.ndarray, shape (frames, bins), float32
        The target magnitude, frame-major.
    spec : np.ndarray, shape (frames, bins), complex64
        ``S`` with the current phase: the estimate the next projection inverts.
    window : np.ndarray, shape (n_fft,), float32
    hop_length : int
    cut : np.ndarray, shape (n_fft + hop_length * (frames - 1),), float32
        Inverse window-sum, zero in a centered STFT's padding (the projection's).
    y : np.ndarray, shape of ``cut``, float32
        The padded-domain signal, rewritten by every projection.
    frames : np.ndarray, shape (frames, n_fft), float32
        Its windowed frames.
    no_previous : np.ndarray, shape of ``spec``
        Zeros standing in for the previous projection at the first step.
    norm : float
        ``||S||`` in float64: the spectral convergence's denominator.
    """

    def __init__(self, S, angles, window, hop_length, center):
        n_fft = window.shape[0]
        self.S = np.ascontiguousarray(S.T, dtype=np.float32)
        self.spec = np.ascontiguousarray((S * angles).T, dtype=np.complex64)
        self.window, self.hop_length = window, hop_length
        self.cut = window_sum_weights(window, hop_length, S.shape[1], n_fft // 2 if center else 0)
        self.y = np.empty(self.cut.shape[0], dtype=np.float32)
        self.frames = np.empty((S.shape[1], n_fft), dtype=np.float32)
        self.no_previous = np.zeros_like(self.spec)
        self.norm = float(np.sqrt(np.sum(self.S.astype(np.float64) ** 2)))


def griffin_lim_start(S, angles, *, window, hop_length, center):
    """Fast Griffin-Lim's state for one spectrogram.

    Parameters
    ----------
    S : np.ndarray, shape (bins, frames), float32
        Target magnitude.
    angles : np.ndarray, shape (bins, frames), complex64
        Initial phase, unit modulus.
    window : np.ndarray, shape (n_fft,), float32
    hop_length : int
    center : bool
        The STFT was centered: its padding is cut from the signal between steps.

    Returns
    -------
    GriffinLimState
    """
    return GriffinLimState(S, angles, window, hop_length, center)


def griffin_lim_project(state):
    """The STFT of the ISTFT of ``state.spec``: the nearest consistent spectrogram.

    Returns
    -------
    np.ndarray, shape (frames, bins), complex64
    """
    n_fft = state.window.shape[0]
    inverse = scipy.fft.irfft(state.spec, n=n_fft, axis=-1, workers=fft_workers(), overwrite_x=False)
    overlap_add_normalized(inverse, state.window, state.hop_length, state.cut, state.y)
    frame_windowed(state.y, state.window, state.hop_length, state.frames)
    return scipy.fft.rfft(state.frames, axis=-1, workers=fft_workers())


def griffin_lim_phase_step(state, rebuilt, previous, coef):
    """Fast Griffin-Lim's phase step: ``state.spec = S a / |a|``, ``a = rebuilt - coef previous``.

    Parameters
    ----------
    state : GriffinLimState
    rebuilt : np.ndarray, shape (frames, bins), complex64
        This step's projection.
    previous : np.ndarray or None
        The step before's projection; None at the first step (no momentum).
    coef : float
        ``momentum / (1 + momentum)``.

    Returns
    -------
    np.float64
        ``||S - |rebuilt|||``, summed in float64.
    """
    use_previous = previous is not None
    return np.sqrt(phase_update(state.S, rebuilt, previous if use_previous else state.no_previous, np.float32(coef),
                                use_previous, state.spec))


def griffin_lim_inverse(state):
    """The ISTFT of ``state.spec`` in the padded domain, padding kept (spectral's to trim).

    Returns
    -------
    np.ndarray, shape (n_fft + hop_length * (frames - 1),), float32
    """
    n_fft = state.window.shape[0]
    inverse = scipy.fft.irfft(state.spec, n=n_fft, axis=-1, workers=fft_workers())
    full = window_sum_weights(state.window, state.hop_length, state.S.shape[0], 0)
    overlap_add_normalized(inverse, state.window, state.hop_length, full, state.y)
    return state.y


@numba.njit(cache=True)
def _heap_better(magnitude, a, b):
    """Coefficient ``a`` leaves the heap before ``b``: larger magnitude, then lower flat index."""
    return magnitude[a] > magnitude[b] or (magnitude[a] == magnitude[b] and a < b)


@numba.njit(cache=True)
def _heap_push(heap, size, magnitude, index):
    position = size
    heap[position] = index
    while position > 0:
        parent = (position - 1) // 2
        if not _heap_better(magnitude, heap[position], heap[parent]):
            break
        heap[position], heap[parent] = heap[parent], heap[position]
        position = parent
    return size + 1


@numba.njit(cache=True)
def _heap_pop(heap, size, magnitude):
    top = heap[0]
    size -= 1
    heap[0] = heap[size]
    position = 0
    while True:
        child = 2 * position + 1
        if child >= size:
            break
        if child + 1 < size and _heap_better(magnitude, heap[child + 1], heap[child]):
            child += 1
        if not _heap_better(magnitude, heap[child], heap[position]):
            break
        heap[position], heap[child] = heap[child], heap[position]
        position = child
    return top, size


@numba.njit(cache=True)
def heap_integrate(magnitude, time_step, freq_step, threshold, phase):
    """Phase Gradient Heap Integration with an array-backed binary heap; parameters and
    visiting order as ``numpy_backend.heap_integrate`` (sequential by nature: each phase
    comes from a neighbour's)."""
    bins, frames = magnitude.shape
    flat = magnitude.ravel()
    done = flat <= threshold
    heap = np.empty(flat.shape[0], dtype=np.int64)
    order = np.argsort(-flat, kind="mergesort")
    neighbours = ((0, 1), (0, -1), (1, 0), (-1, 0))
    for start in order:
        if done[start]:
            continue
        done[start] = True
        phase[start // frames, start % frames] = 0.0
        size = _heap_push(heap, 0, flat, start)
        while size > 0:
            index, size = _heap_pop(heap, size, flat)
            k, t = index // frames, index % frames
            here = phase[k, t]
            for dk, dt in neighbours:
                kk, tt = k + dk, t + dt
                if kk < 0 or kk >= bins or tt < 0 or tt >= frames or done[kk * frames + tt]:
                    continue
                if dt != 0:
                    step = 0.5 * (time_step[k, t] + time_step[kk, tt])
                else:
                    step = 0.5 * (freq_step[k, t] + freq_step[kk, tt]) + np.pi
                phase[kk, tt] = here + step if (dt > 0 or dk > 0) else here - step
                done[kk * frames + tt] = True
                size = _heap_push(heap, size, flat, kk * frames + tt)
    return phase


@numba.njit(cache=True)
def _keyed_push(keys, indices, size, key, index):
    """Push ``index`` with ``key`` on a max-heap kept as two arrays (no lookups through the magnitudes)."""
    position = size
    while position > 0:
        parent = (position - 1) >> 1
        if keys[parent] > key or (keys[parent] == key and indices[parent] < index):
            break
        keys[position], indices[position] = keys[parent], indices[parent]
        position = parent
    keys[position], indices[position] = key, index
    return size + 1


@numba.njit(cache=True)
def _keyed_pop(keys, indices, size):
    """Pop the largest key's index (ties: the lower index) from :func:`_keyed_push`'s heap."""
    top = indices[0]
    size -= 1
    key, index = keys[size], indices[size]
    position = 0
    while True:
        child = 2 * position + 1
        if child >= size:
            break
        if child + 1 < size and (keys[child + 1] > keys[child] or
                                 (keys[child + 1] == keys[child] and indices[child + 1] < indices[child])):
            child += 1
        if not (keys[child] > key or (keys[child] == key and indices[child] < index)):
            break
        keys[position], indices[position] = keys[child], indices[child]
        position = child
    keys[position], indices[position] = key, index
    return top, size


@numba.njit(cache=True)
def heap_integrate_frame(magnitude, time_step, freq_step, threshold, phase):
    """Real-time PGHI of one frame (Prusa & Holighaus 2017): the new frame's phase from the one before.

    Parameters and visiting order as ``numpy_backend.heap_integrate_frame`` (a heap entry is
    ``bin * 2 + column``). It runs once per frame and channel of a live stream, so only the new
    frame's coefficients go on the heap (its keys beside the indices): the previous frame's,
    which never join it later, are sorted once and merged with it in the same order, and the
    islands' order is sorted only if one is needed.
    """
    bins = magnitude.shape[0]
    done = np.empty(bins, dtype=np.bool_)  # the new frame's coefficients that have their phase
    keys = np.empty(bins, dtype=np.float64)
    indices = np.empty(bins, dtype=np.int64)
    size = remaining = 0
    for k in range(bins):
        done[k] = magnitude[k, 1] <= threshold
        remaining += not done[k]
    # the previous frame's coefficients above the threshold, largest first (ties: the lower bin)
    previous = np.argsort(-magnitude[:, 0], kind="mergesort")
    n_previous = 0
    while n_previous < bins and magnitude[previous[n_previous], 0] > threshold:
        n_previous += 1
    next_previous = 0
    order = np.empty(0, dtype=np.int64)
    next_seed = 0
    while remaining > 0:
        if size == 0 and next_previous == n_previous:  # an island the previous frame does not reach: phase 0
            if order.shape[0] == 0:
                order = np.argsort(-magnitude[:, 1], kind="mergesort")
            while done[order[next_seed]]:
                next_seed += 1
            k = order[next_seed]
            done[k] = True
            remaining -= 1
            phase[k, 1] = 0.0
            size = _keyed_push(keys, indices, size, magnitude[k, 1], 2 * k + 1)
        # the larger of the previous frame's next and the heap's top (ties: the lower entry index)
        from_previous = next_previous < n_previous
        if from_previous and size > 0:
            k = previous[next_previous]
            key = magnitude[k, 0]
            from_previous = key > keys[0] or (key == keys[0] and 2 * k < indices[0])
        if from_previous:
            k = previous[next_previous]
            next_previous += 1
            if not done[k]:
                phase[k, 1] = phase[k, 0] + 0.5 * (time_step[k, 0] + time_step[k, 1])
                done[k] = True
                remaining -= 1
                size = _keyed_push(keys, indices, size, magnitude[k, 1], 2 * k + 1)
            continue
        index, size = _keyed_pop(keys, indices, size)
        k = index >> 1
        for dk in (1, -1):
            kk = k + dk
            if kk < 0 or kk >= bins or done[kk]:
                continue
            step = 0.5 * (freq_step[k] + freq_step[kk]) + np.pi
            phase[kk, 1] = phase[k, 1] + step if dk > 0 else phase[k, 1] - step
            done[kk] = True
            remaining -= 1
            size = _keyed_push(keys, indices, size, magnitude[kk, 1], 2 * kk + 1)
    return phase


@numba.njit(cache=True)
def keep_magnitude(target, magnitude, estimate):
    """The magnitude projection of iterative phase retrieval, in place in ``target``; parameters and result
    as ``numpy_backend.keep_magnitude`` (one pass, no temporaries: it runs for every frame of a stream)."""
    change = np.empty_like(target)
    flat_target, flat_estimate, flat_change = target.reshape(-1), estimate.reshape(-1), change.reshape(-1)
    flat_magnitude = magnitude.reshape(-1)
    for i in range(flat_target.shape[0]):
        re, im = flat_estimate[i].real, flat_estimate[i].imag
        power = re * re + im * im
        if power > 0:
            scale = flat_magnitude[i] / np.sqrt(power)
            new = complex(re * scale, im * scale)
            flat_change[i] = new - flat_target[i]
            flat_target[i] = new
        else:
            flat_change[i] = 0.0
    return change
