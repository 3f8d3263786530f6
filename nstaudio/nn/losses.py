"""Losses of the feedforward method: ``value, grad = loss(prediction, target)``, and the Gram target factor."""

import numpy as np


def mse(prediction, target):
    """Mean squared error and its gradient with respect to ``prediction`` (any shape)."""
    diff = prediction.astype(np.float64) - target
    return float((diff**2).mean()), (2.0 * diff / diff.size).astype(prediction.dtype)


def gram_factor(G):
    """A factor L with ``L L^T = G`` of a symmetric positive semi-definite matrix, and ``sum(G**2)``.

    Parameters
    ----------
    G : np.ndarray, shape (C, C)
        A style Gram matrix.

    Returns
    -------
    L : np.ndarray, shape (C, r), dtype of ``G``
        r = the numerical rank of G (at most the style's frames): the kernel-form loss costs
        ~ r rather than C per column.
    squared_norm : float
    """
    G64 = np.asarray(G, dtype=np.float64)
    w, V = np.linalg.eigh((G64 + G64.T) / 2)
    keep = w > max(1e-10 * w.max(), 0.0)  # the numerically non-zero part (none for G = 0)
    L = V[:, keep] * np.sqrt(w[keep])
    return L.astype(G.dtype), float(np.sum(G64**2))


def gram_mse(F, factor, squared_norm):
    """``mean((gram(F) - G)**2)`` over every entry of the batch and its gradient, in the kernel form.

    ``gram(F)[b] = F_b F_b^T / T`` is never formed: with ``G = L L^T``,
    ``||F F^T/T - G||^2 = ||F^T F||^2/T^2 - 2 ||F^T L||^2/T + ||G||^2``, whose terms are T x T and
    T x r. Worth it when the channels C are many and the crops T short (the spectrogram's
    1025 bins against 64 frames: C x C per batch item would be 16x the work and memory).

    Parameters
    ----------
    F : array, shape (B, C, T)
        Activations (numpy or CuPy).
    factor, squared_norm : from :func:`gram_factor` of the target G (C, C), ``factor`` moved to F's backend

    Returns
    -------
    value : float
    dF : np.ndarray, shape (B, C, T), dtype of ``F``
    """
    B, C, T = F.shape
    Ft = F.transpose(0, 2, 1)
    L = factor.astype(F.dtype, copy=False)  # an array of F's backend
    FtF = Ft @ F  # (B, T, T)
    FtL = Ft @ L  # (B, T, r)
    total = (float((FtF.astype(np.float64) ** 2).sum()) / T**2 - 2 * float((FtL.astype(np.float64) ** 2).sum()) / T
             + B * squared_norm)
    scale = 4.0 / (T * B * C * C)
    dF = (F @ FtF) / T - L @ FtL.transpose(0, 2, 1)
    return max(float(total), 0.0) / (B * C * C), (scale * dF).astype(F.dtype, copy=False)
