"""Running a trained autoencoder (a style model's transformation network) over spectrograms of any length."""

import numpy as np

from ..kernels.cpu import thread_scratch
from .autoencoder import Autoencoder


def apply_network(arch, params, state, X, *, chunk=1024, overlap=32):
    """Run a trained network over a spectrogram of any length, in overlapping chunks.

    Parameters
    ----------
    arch : Architecture
    params, state : dict
    X : np.ndarray, shape (B, n_bins, T)
    chunk : int
        Frames per chunk (rounded up to a multiple of the stride product); memory is bounded by it.
    overlap : int
        Frames of context on each side of a chunk, discarded from its output (rounded up to
        a multiple of the stride product); chunks agree with a single pass when it covers
        the network's receptive field.

    Returns
    -------
    np.ndarray, shape (B, n_bins, T), float32
    """
    net = Autoencoder(arch)
    net.train(False)
    m = net.multiple
    # Chunks start at multiples of the stride product, so the strided network sees every
    # chunk in the same phase as the whole input would be seen.
    overlap = -(-overlap // m) * m
    chunk = -(-max(chunk, 2 * overlap + m) // m) * m
    step = chunk - 2 * overlap
    B, C, T = X.shape
    padded = np.pad(X.astype(np.float32), ((0, 0), (0, 0), (overlap, overlap + m)), mode="edge")
    out = np.empty((B, C, T), dtype=np.float32)
    for start in range(0, T, step):
        width = min(step, T - start)
        length = -(-(width + 2 * overlap) // m) * m  # the last chunk is only as long as it needs to be
        y, _, _ = net.forward(params, state, padded[:, :, start:start + length], scratch=thread_scratch("network"))
        out[:, :, start:start + width] = y[:, :, overlap:overlap + width]
    return out
