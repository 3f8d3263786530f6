"""The reference backend's mel inversion: FISTA for the non-negative least squares
``min ||F P - M||^2, P >= 0`` with the filterbank in CSR form, on scipy.sparse.
"""

import numpy as np
import scipy.sparse


def mel_fista_start(Ft_indptr, Ft_indices, Ft_data, M, coverage, bins):
    """The starting point of :func:`mel_fista_steps`: ``F^T M / coverage``, (bins, T) float32.

    Parameters
    ----------
    Ft_indptr, Ft_indices, Ft_data : np.ndarray
        The filterbank's transpose F^T (bins, n_mels) in CSR form (float32 data).
    M : np.ndarray, shape (n_mels, T), float32, C-contiguous
    coverage : np.ndarray, shape (bins,), float32
        ``F^T 1`` (1 where it is 0).
    bins : int
    """
    Ft = scipy.sparse.csr_matrix((Ft_data, Ft_indices, Ft_indptr), shape=(bins, M.shape[0]))
    return ((Ft @ M) / coverage[:, None]).astype(np.float32)


def mel_fista_steps(F_indptr, F_indices, F_data, Ft_indptr, Ft_indices, Ft_data, M, step, momenta, P, Y):
    """Steps of FISTA for the non-negative least squares ``min ||F P - M||^2, P >= 0``, every column at
    once, in float32, from the state (P, Y), updated in place: the steps can be taken a few at a time.
    To start, P is :func:`mel_fista_start`'s and Y a copy of it (two arrays: the same one for both would
    be projected gradient descent without FISTA's momentum).

    Parameters
    ----------
    F_indptr, F_indices, F_data : np.ndarray
        The filterbank F (n_mels, bins) in CSR form (float32 data).
    Ft_indptr, Ft_indices, Ft_data : np.ndarray
        Its transpose in CSR form.
    M : np.ndarray, shape (n_mels, T), float32, C-contiguous
    step : np.float32
        ``1 / L``, L at least ``||F||_2^2``.
    momenta : np.ndarray, shape (steps,), float32
        ``(t_k - 1) / t_{k+1}`` per step (those of the steps taken, in order).
    P, Y : np.ndarray, shape (bins, T), float32
        The iterate and the extrapolated point, written in place.

    Returns
    -------
    P
    """
    F = scipy.sparse.csr_matrix((F_data, F_indices, F_indptr), shape=(M.shape[0], P.shape[0]))
    Ft = scipy.sparse.csr_matrix((Ft_data, Ft_indices, Ft_indptr), shape=(P.shape[0], M.shape[0]))
    step = np.float32(step)
    for momentum in momenta:
        gradient = Ft @ (F @ Y - M)
        P_next = np.maximum(Y - step * gradient, 0, dtype=np.float32)
        Y[...] = P_next + momentum * (P_next - P)
        P[...] = P_next
    return P
