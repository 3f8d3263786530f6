"""The cpu backend's mel inversion: FISTA for the non-negative least squares ``min ||F P - M||^2, P >= 0``,
with the filterbank in CSR form, as numba loops (a stream inverts a frame or two at a time).
"""

import numba
import numpy as np


@numba.njit(cache=True)
def _csr_times(indptr, indices, data, x, out):
    """``out = A @ x`` for A in CSR form and x (n, T), row by row in the order of A's entries (as scipy)."""
    for i in range(out.shape[0]):
        for t in range(out.shape[1]):
            out[i, t] = 0.0
        for jj in range(indptr[i], indptr[i + 1]):
            j, a = indices[jj], data[jj]
            for t in range(out.shape[1]):
                out[i, t] += a * x[j, t]


@numba.njit(cache=True)
def mel_fista_start(Ft_indptr, Ft_indices, Ft_data, M, coverage, bins):
    """FISTA's starting point ``F^T M / coverage``; parameters and result as ``numpy_backend.mel_fista_start``."""
    P = np.empty((bins, M.shape[1]), dtype=np.float32)
    _csr_times(Ft_indptr, Ft_indices, Ft_data, M, P)
    for i in range(bins):
        for t in range(M.shape[1]):
            P[i, t] = P[i, t] / coverage[i]
    return P


@numba.njit(cache=True)
def mel_fista_steps(F_indptr, F_indices, F_data, Ft_indptr, Ft_indices, Ft_data, M, step, momenta, P, Y):
    """FISTA steps for ``min ||F P - M||^2, P >= 0`` from the state (P, Y), two arrays, in place; parameters
    as ``numpy_backend.mel_fista_steps`` (without a Python step per iteration: a stream inverts a frame or
    two at a time)."""
    step = np.float32(step)
    n_mels, T = M.shape
    bins = P.shape[0]
    residual = np.empty((n_mels, T), dtype=np.float32)
    gradient = np.empty((bins, T), dtype=np.float32)
    for momentum in momenta:
        _csr_times(F_indptr, F_indices, F_data, Y, residual)
        for i in range(n_mels):
            for t in range(T):
                residual[i, t] = residual[i, t] - M[i, t]
        _csr_times(Ft_indptr, Ft_indices, Ft_data, residual, gradient)
        for i in range(bins):
            for t in range(T):
                value = Y[i, t] - step * gradient[i, t]
                P_next = value if value > 0 else np.float32(0.0)
                Y[i, t] = P_next + momentum * (P_next - P[i, t])
                P[i, t] = P_next
    return P
