"""The cpu backend's kernels for a live stream's frames: normalised frames and overlap-add of a
signal, a causal polyphase resampler's outputs and one frame of a layer for a few channels.

Each runs for every frame or block of a stream, so each is one pass of a single-threaded
numba loop without temporaries.
"""

import numba
import numpy as np


@numba.njit(cache=True)
def normalized_frames(signal, weight, window, offset, hop, count, tiny):
    """Windowed frames of an overlap-added signal over its summed squared windows; parameters and result as
    ``numpy_backend.normalized_frames`` (one pass: it runs for every refinement of a stream's frames)."""
    batch, n_fft = signal.shape[0], window.shape[0]
    out = np.empty((batch, count, n_fft))
    for b in range(batch):
        for i in range(count):
            start = offset + i * hop
            for t in range(n_fft):
                value, w = signal[b, start + t], weight[start + t]
                if w > tiny:
                    value = value / w
                out[b, i, t] = value * window[t]
    return out


@numba.njit(cache=True)
def overlap_add_frames(signal, frames, window, offset, hop):
    """``signal[:, offset + i hop + t] += frames[:, i, t] window[t]`` in place; as ``numpy_backend.overlap_add_frames``."""
    n_fft = window.shape[0]
    for b in range(signal.shape[0]):
        for i in range(frames.shape[1]):
            start = offset + i * hop
            for t in range(n_fft):
                signal[b, start + t] += frames[b, i, t] * window[t]
    return signal


@numba.njit(cache=True)
def polyphase_outputs(history, phases, first, count, up, down, offset, history_start):
    """Outputs of a causal polyphase resampler; parameters and result as ``numpy_backend.polyphase_outputs``
    (it runs on every block of a stream)."""
    channels, taps = history.shape[0], phases.shape[1]
    out = np.empty((channels, count), dtype=np.float32)
    for j in range(count):
        position = (first + j) * down + offset
        phase = position % up
        start = position // up - history_start - taps + 1
        for c in range(channels):
            total = 0.0
            for t in range(taps):
                total += np.float64(history[c, start + t]) * np.float64(phases[phase, t])
            out[c, j] = total
    return out


@numba.njit(fastmath=True, cache=True)
def frame_product(weights, columns, out):
    """``out = weights @ columns`` for a few columns (a stream's channels); as ``numpy_backend.frame_product``.

    A live stream computes one frame of a layer at a time: BLAS would hand such a product to
    its threads (a wake-up that costs more than the product, at random) or, on one thread,
    read the weights once per column. Here each column is copied contiguous once and every
    row of weights read once for two columns at a time, in one thread. The sums are
    reassociated (``fastmath``, for SIMD) in an order fixed by the shapes alone (no peeling
    for alignment), so a frame's result does not depend on where the arrays lie.
    """
    n_out, n_in = weights.shape
    batch = columns.shape[1]
    x = np.empty((batch, n_in), dtype=np.float32)
    for k in range(n_in):
        for b in range(batch):
            x[b, k] = columns[k, b]
    for o in range(n_out):
        b = 0
        while b + 1 < batch:
            first = np.float32(0.0)
            second = np.float32(0.0)
            for k in range(n_in):
                w = weights[o, k]
                first += w * x[b, k]
                second += w * x[b + 1, k]
            out[o, b] = first
            out[o, b + 1] = second
            b += 2
        if b < batch:
            total = np.float32(0.0)
            for k in range(n_in):
                total += weights[o, k] * x[b, k]
            out[o, b] = total
    return out
