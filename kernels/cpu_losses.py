"""The cpu backend's objective kernels: ReLU fused with the content residual, the Gram style
losses in both forms, float64 sums of squares and the arc-cosine kernel.

The ReLU mask, the content residual and the loss reductions are fused numba loops that read
each (N, T') array once and accumulate in float64; the Gram products are BLAS's (:mod:`.products`).
"""

import numba
import numpy as np

from . import threading_layer
from .products import gram, matmul
from .scratch import checked_output, thread_scratch
from .threading_layer import parallel_kernel, sum_in_order

threading_layer.configure()


@parallel_kernel()
def _relu_inplace(F):
    for n in numba.prange(F.shape[0]):
        for t in range(F.shape[1]):
            if F[n, t] < 0:
                F[n, t] = 0


@parallel_kernel()
def _relu_content_inplace(F, Fc):
    rows = np.empty(F.shape[0], dtype=np.float64)
    for n in numba.prange(F.shape[0]):
        row = 0.0
        for t in range(F.shape[1]):
            v = F[n, t]
            if v < 0:
                v = 0
                F[n, t] = 0
            r = np.float64(v) - np.float64(Fc[n, t])
            row += r * r
        rows[n] = row
    return sum_in_order(rows)


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


@parallel_kernel()
def _mask_content_grad(F, Fc, dF, two_alpha):
    for n in numba.prange(F.shape[0]):
        for t in range(F.shape[1]):
            if F[n, t] > 0:
                dF[n, t] += two_alpha * (F[n, t] - Fc[n, t])
            else:
                dF[n, t] = 0


@parallel_kernel()
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



@parallel_kernel()
def sum_squares(A):
    """``sum(A**2)`` accumulated in float64, for a 2-D array."""
    rows = np.empty(A.shape[0], dtype=np.float64)
    for i in numba.prange(A.shape[0]):
        row = 0.0
        for j in range(A.shape[1]):
            v = np.float64(A[i, j])
            row += v * v
        rows[i] = row
    return sum_in_order(rows)


def style_loss_nxn(F, G_s, out=None):
    """Gram style loss in the N x N form; see ``numpy_backend.style_loss_nxn``.

    ``F F^T`` is a symmetric product: :func:`gram` multiplies half of it.
    """
    N, T_out = F.shape
    D = gram(F, out=thread_scratch().get("gram", (N, N), F.dtype))
    D *= F.dtype.type(1.0 / T_out)
    D -= G_s
    value = sum_squares(D)
    D *= F.dtype.type(4.0 / T_out)
    return float(value), matmul(D, F, out=checked_output(out, F.shape, F.dtype))


def style_loss_kernel(F, S_hat, target_sq, out=None):
    """Gram style loss in the kernel form; see ``numpy_backend.style_loss_kernel``.

    ``F^T F`` is a symmetric product (:func:`gram`: half of it multiplied); the gradient's two
    products share one output.
    """
    T_out = F.shape[1]
    A = gram(F.T, out=thread_scratch().get("kernel", (T_out, T_out), F.dtype))
    B = matmul(F.T, S_hat, out=thread_scratch().get("cross", (T_out, S_hat.shape[1]), F.dtype))
    value = sum_squares(A) / T_out**2 - 2.0 * sum_squares(B) / T_out + target_sq
    A *= F.dtype.type(4.0 / T_out**2)
    B *= F.dtype.type(-4.0 / T_out)
    dF = matmul(F, A, out=checked_output(out, F.shape, F.dtype))
    dF += matmul(S_hat, B.T, out=thread_scratch().get("cross_grad", F.shape, F.dtype))
    return float(value), dF


@parallel_kernel()
def _arccos_kernel(U, a2, b2, kappa, d_u, d_a2):
    two_pi = 2.0 * np.pi
    for i in numba.prange(U.shape[0]):
        a = np.float64(a2[i])
        for j in range(U.shape[1]):
            u = np.float64(U[i, j])
            ab2 = a * np.float64(b2[j])
            s = np.sqrt(max(ab2 - u * u, 0.0))
            ab = np.sqrt(ab2)
            cos = u / ab if ab > 0 else 0.0
            cos = min(max(cos, -1.0), 1.0)
            rest = np.pi - np.arccos(cos)
            kappa[i, j] = (s + rest * u) / two_pi
            d_u[i, j] = rest / two_pi
            d_a2[i, j] = s / (2.0 * two_pi * a) if a > 0 else 0.0


def arccos_kernel(U, a2, b2):
    """The arc-cosine kernel and its derivatives in one pass, float64 inside; see
    ``numpy_backend.arccos_kernel``."""
    kappa, d_u, d_a2 = (np.empty_like(U) for _ in range(3))
    _arccos_kernel(U, a2, b2, kappa, d_u, d_a2)
    return kappa, d_u, d_a2
