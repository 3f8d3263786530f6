"""The fast CPU backend: numba loops for the memory-bound steps, BLAS for the GEMMs.

The convolution is one GEMM per block of frames on an im2col matrix
(``cols[k*C + c, t] = X[c, t + k]``), so the (N, K*C) x (K*C, frames) product
runs at BLAS speed; blocks keep the im2col buffer bounded for long audio. The ReLU
mask, the content residual and the loss reductions are fused numba loops that
read each (N, T') array once and accumulate in float64.
"""

import numba
import numpy as np

name = "cpu"
xp = np

# Frames per im2col block: large enough for GEMM efficiency, small enough that the
# (K*C, block) buffer stays a few tens of MB for any length of audio.
_BLOCK = 1024


def asarray(x, dtype):
    """Move ``x`` to this backend as a contiguous array of ``dtype``."""
    return np.ascontiguousarray(x, dtype=dtype)


def to_numpy(x):
    """Return ``x`` as a numpy array."""
    return np.asarray(x)


class ConvWeights:
    """Filters W (N, C, K) flattened for im2col: ``mat[n, k*C + c] = W[n, c, k]``."""

    def __init__(self, W):
        self.N, self.C, self.K = W.shape
        self.mat = np.ascontiguousarray(W.transpose(0, 2, 1).reshape(self.N, self.K * self.C))


def prepare_weights(W):
    """Flatten W (N, C, K) once for the im2col GEMMs."""
    return ConvWeights(np.asarray(W))


@numba.njit(parallel=True, cache=True)
def im2col(X, K, t0, out):
    """``out[k*C + c, j] = X[c, t0 + j + k]`` for the j in ``range(out.shape[1])``."""
    C = X.shape[0]
    width = out.shape[1]
    for row in numba.prange(K * C):
        k = row // C
        c = row - k * C
        for j in range(width):
            out[row, j] = X[c, t0 + j + k]


@numba.njit(parallel=True, cache=True)
def col2im_add(cols, K, t0, out):
    """Adjoint of :func:`im2col`: ``out[c, t0 + j + k] += cols[k*C + c, j]``.

    Parallel over c: each output row is written by one thread, so there are no races.
    """
    C = out.shape[0]
    width = cols.shape[1]
    for c in numba.prange(C):
        for k in range(K):
            row = k * C + c
            for j in range(width):
                out[c, t0 + j + k] += cols[row, j]


def conv1d(X, W):
    """Valid 1-D convolution over time; see ``numpy_backend.conv1d``.

    Parameters
    ----------
    X : np.ndarray, shape (C, T)
    W : ConvWeights

    Returns
    -------
    np.ndarray, shape (N, T - K + 1)
    """
    T_out = X.shape[1] - W.K + 1
    out = np.empty((W.N, T_out), dtype=X.dtype)
    cols = np.empty((W.K * W.C, min(_BLOCK, T_out)), dtype=X.dtype)
    for t0 in range(0, T_out, _BLOCK):
        width = min(_BLOCK, T_out - t0)
        block = cols[:, :width]
        im2col(X, W.K, t0, block)
        np.matmul(W.mat.astype(X.dtype, copy=False), block, out=out[:, t0:t0 + width])
    return out


def conv1d_adjoint(dY, W, T):
    """Adjoint of :func:`conv1d` with respect to X: (N, T') -> (C, T)."""
    T_out = dY.shape[1]
    dX = np.zeros((W.C, T), dtype=dY.dtype)
    mat_t = W.mat.astype(dY.dtype, copy=False).T
    cols = np.empty((W.K * W.C, min(_BLOCK, T_out)), dtype=dY.dtype)
    for t0 in range(0, T_out, _BLOCK):
        width = min(_BLOCK, T_out - t0)
        block = cols[:, :width]
        np.matmul(mat_t, dY[:, t0:t0 + width], out=block)
        col2im_add(block, W.K, t0, dX)
    return dX


@numba.njit(parallel=True, cache=True)
def _relu_inplace(F):
    for n in numba.prange(F.shape[0]):
        for t in range(F.shape[1]):
            if F[n, t] < 0:
                F[n, t] = 0


@numba.njit(parallel=True, cache=True)
def _relu_content_inplace(F, Fc):
    total = 0.0
    for n in numba.prange(F.shape[0]):
        row = 0.0
        for t in range(F.shape[1]):
            v = F[n, t]
            if v < 0:
                v = 0
                F[n, t] = 0
            r = np.float64(v) - np.float64(Fc[n, t])
            row += r * r
        total += row
    return total


def relu_content(F_pre, Fc):
    """ReLU (in place on ``F_pre``) fused with the content residual.

    Returns
    -------
    F : np.ndarray, shape (N, T')
        ``F_pre`` itself, rectified.
    content_sq : float
        ``sum((F - Fc)**2)`` in float64; 0 when ``Fc`` is None.
    """
    if Fc is None:
        _relu_inplace(F_pre)
        return F_pre, 0.0
    return F_pre, float(_relu_content_inplace(F_pre, Fc))


@numba.njit(parallel=True, cache=True)
def _mask_content_grad(F, Fc, dF, two_alpha):
    for n in numba.prange(F.shape[0]):
        for t in range(F.shape[1]):
            if F[n, t] > 0:
                dF[n, t] += two_alpha * (F[n, t] - Fc[n, t])
            else:
                dF[n, t] = 0


@numba.njit(parallel=True, cache=True)
def _mask_grad(F, dF):
    for n in numba.prange(F.shape[0]):
        for t in range(F.shape[1]):
            if F[n, t] <= 0:
                dF[n, t] = 0


def relu_content_backward(F, Fc, dF_style, alpha):
    """``[F > 0] * (dF_style + 2 alpha (F - Fc))``, written into ``dF_style``."""
    if Fc is None:
        _mask_grad(F, dF_style)
    else:
        _mask_content_grad(F, Fc, dF_style, dF_style.dtype.type(2 * alpha))
    return dF_style


@numba.njit(parallel=True, cache=True)
def sum_squares(A):
    """``sum(A**2)`` accumulated in float64, for a 2-D array."""
    total = 0.0
    for i in numba.prange(A.shape[0]):
        row = 0.0
        for j in range(A.shape[1]):
            v = np.float64(A[i, j])
            row += v * v
        total += row
    return total


def style_loss_nxn(F, G_s):
    """Gram style loss in the N x N form; see ``numpy_backend.style_loss_nxn``."""
    T_out = F.shape[1]
    D = F @ F.T
    D *= F.dtype.type(1.0 / T_out)
    D -= G_s
    value = sum_squares(D)
    D *= F.dtype.type(4.0 / T_out)
    return float(value), D @ F


def style_loss_kernel(F, S_hat, target_sq):
    """Gram style loss in the kernel form; see ``numpy_backend.style_loss_kernel``."""
    T_out = F.shape[1]
    A = F.T @ F
    B = F.T @ S_hat
    value = sum_squares(A) / T_out**2 - 2.0 * sum_squares(B) / T_out + target_sq
    A *= F.dtype.type(4.0 / T_out**2)
    B *= F.dtype.type(-4.0 / T_out)
    dF = F @ A
    dF += S_hat @ B.T
    return float(value), dF
