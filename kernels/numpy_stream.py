"""The reference backend's kernels for a live stream's frames: normalised frames and overlap-add
of a signal, a causal polyphase resampler's outputs and one frame of a layer for a few channels.
"""

import numpy as np


def normalized_frames(signal, weight, window, offset, hop, count, tiny):
    """Windowed frames of an overlap-added signal divided by its summed squared windows.

    Parameters
    ----------
    signal : np.ndarray, shape (batch, n), float64
    weight : np.ndarray, shape (n,), float64
        The summed squared windows under each sample; where it is at most ``tiny`` the sample
        is taken as it is.
    window : np.ndarray, shape (n_fft,), float64
    offset, hop, count : int
        Frame ``i`` starts at sample ``offset + i hop``.
    tiny : float

    Returns
    -------
    np.ndarray, shape (batch, count, n_fft), float64
    """
    n_fft = window.shape[0]
    span = slice(offset, offset + (count - 1) * hop + n_fft)
    w = weight[span]
    normalized = np.where(w > tiny, signal[:, span] / np.where(w > tiny, w, 1.0), signal[:, span])
    starts = np.arange(count) * hop
    return normalized[:, starts[:, None] + np.arange(n_fft)] * window


def overlap_add_frames(signal, frames, window, offset, hop):
    """Add windowed frames into a signal, in place: ``signal[:, offset + i hop + t] += frames[:, i, t] window[t]``.

    Parameters
    ----------
    signal : np.ndarray, shape (batch, n), float64
    frames : np.ndarray, shape (batch, count, n_fft), float64
    window : np.ndarray, shape (n_fft,), float64
    offset, hop : int
    """
    n_fft = window.shape[0]
    for i in range(frames.shape[1]):
        start = offset + i * hop
        signal[:, start:start + n_fft] += frames[:, i] * window
    return signal


def polyphase_outputs(history, phases, first, count, up, down, offset, history_start):
    """Outputs ``first .. first + count - 1`` of a causal polyphase resampler.

    Output ``n`` is ``sum_t phases[p, t] history[:, q - taps + 1 + t]`` with ``n down + offset =
    q up + p`` (``q`` counted from the first input; ``history[:, i]`` is input ``history_start + i``),
    summed in float64.

    Parameters
    ----------
    history : np.ndarray, shape (channels, n), float32
    phases : np.ndarray, shape (up, taps), float32
    first, count, up, down, offset, history_start : int

    Returns
    -------
    np.ndarray, shape (channels, count), float32
    """
    position = np.arange(first, first + count) * down + offset
    newest = position // up - history_start
    taps = phases.shape[1]
    picked = history[:, newest[:, None] - taps + 1 + np.arange(taps)].astype(np.float64)  # (channels, count, taps)
    return np.einsum("cnt,nt->cn", picked, phases[position % up].astype(np.float64)).astype(np.float32)


def frame_product(weights, columns, out):
    """``out = weights @ columns``: one frame of a layer for a few channels side by side.

    Parameters
    ----------
    weights : np.ndarray, shape (C_out, n), float32
    columns : np.ndarray, shape (n, batch), float32
    out : np.ndarray, shape (C_out, batch), float32
        Written in place and returned.
    """
    return np.matmul(weights, columns, out=out)
