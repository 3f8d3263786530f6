"""Overlap-add and the summed squared window: the plain numpy pieces of an inverse STFT.

They live among the kernels so that a backend can invert a spectrogram without importing
``nstaudio.spectral``, which sits above the kernels and re-exports them.
"""

import numpy as np


def overlap_add(frames, hop_length):
    """Sum frames placed ``hop_length`` apart.

    Parameters
    ----------
    frames : np.ndarray, shape (..., frames, frame_length)
    hop_length : int

    Returns
    -------
    np.ndarray, shape (..., frame_length + hop_length * (frames - 1))
    """
    *batch, n, width = frames.shape
    length = width + hop_length * (n - 1)
    # Room for whole hop-sized segments past the end, trimmed off below.
    out = np.zeros((*batch, length + hop_length), dtype=frames.dtype)
    # Split each frame into hop-sized segments: segment j of all frames lands on one
    # contiguous run of the output, so each segment is one vectorised add.
    for start in range(0, width, hop_length):
        seg = min(hop_length, width - start)
        target = out[..., start:start + hop_length * n].reshape(*batch, n, hop_length)
        target[..., :seg] += frames[..., start:start + seg]
    return out[..., :length]


def window_sum(window, hop_length, n_frames):
    """Summed squared window of ``n_frames`` frames ``hop_length`` apart: the ISTFT's normaliser.

    Parameters
    ----------
    window : np.ndarray, shape (n_fft,)
    hop_length, n_frames : int

    Returns
    -------
    np.ndarray, shape (n_fft + hop_length * (n_frames - 1),), float64
    """
    sq = np.asarray(window, dtype=np.float64) ** 2
    return overlap_add(np.broadcast_to(sq, (n_frames, sq.shape[0])), hop_length)
