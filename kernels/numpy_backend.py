"""The reference backend: plain numpy, written to be obviously correct, not fast.

Every other backend is tested against these functions. Shapes: X is (C, T)
(frequency bins as channels), W is (N, C, K), features are (N, T') with
T' = T - K + 1. The convolution, the objective's kernels and the conv layers' windows are
here; phase reconstruction is in :mod:`.numpy_phase`, a live stream's frame kernels in
:mod:`.numpy_stream`, the mel inversion in :mod:`.numpy_mel`.
"""

import numpy as np

from .numpy_mel import mel_fista_start, mel_fista_steps
from .numpy_phase import (
    GriffinLimState,
    griffin_lim_inverse,
    griffin_lim_phase_step,
    griffin_lim_project,
    griffin_lim_start,
    heap_integrate,
    heap_integrate_frame,
    keep_magnitude,
)
from .numpy_stream import (
    frame_product,
    normalized_frames,
    overlap_add_frames,
    polyphase_outputs,
)

name = "numpy"
xp = np

__all__ = [
    "GriffinLimState", "arccos_kernel", "arccos_terms", "asarray", "channel_major_windows", "conv1d",
    "conv1d_adjoint", "frame_product", "gram", "griffin_lim_inverse", "griffin_lim_phase_step", "griffin_lim_project",
    "griffin_lim_start", "heap_integrate", "heap_integrate_frame", "keep_magnitude", "matmul", "mel_fista_start",
    "mel_fista_steps", "name", "normalized_frames", "overlap_add_frames", "overlap_windows",
    "overlap_windows_channel_major", "polyphase_outputs", "prepare_weights", "relu_content", "relu_content_backward",
    "strided_windows", "strided_windows_channel_major", "style_loss_kernel", "style_loss_nxn", "sum_squares",
    "to_numpy", "xp",
]


def asarray(x, dtype):
    """Move ``x`` to this backend as a contiguous array of ``dtype``."""
    return np.ascontiguousarray(x, dtype=dtype)


def to_numpy(x):
    """Return ``x`` as a numpy array."""
    return np.asarray(x)


def prepare_weights(W, frames=None):
    """Backend-specific layout of the filters W (N, C, K); the reference keeps them as they are.

    ``frames`` (the input length the convolution will mostly see) lets a backend pick its
    layout; the reference always runs the direct form.
    """
    return W


def _into(out, result):
    """Copy ``result`` into ``out`` when the caller gave one, as the fast backends write in place."""
    if out is None:
        return result
    out[...] = result
    return out


def matmul(a, b, out=None):
    """``a @ b`` for 2-D arrays (into ``out`` if given): numpy's BLAS call, as it is.

    Bit for bit the same on any number of threads where BLAS runs on one, as nstaudio's
    compute entries hold it (``nstaudio.kernels.blas_threads``).
    """
    return np.matmul(a, b, out=out)


def gram(a, out=None):
    """``a @ a.T`` for a 2-D array (into ``out`` if given)."""
    return np.matmul(a, a.T, out=out)


def conv1d(X, W, out=None):
    """Valid 1-D convolution (cross-correlation) over time.

    Parameters
    ----------
    X : array, shape (C, T)
    W : array, shape (N, C, K), as returned by :func:`prepare_weights`
    out : array, shape (N, T - K + 1), optional
        Where to write the result.

    Returns
    -------
    array, shape (N, T - K + 1)
    """
    K = W.shape[2]
    T_out = X.shape[1] - K + 1
    return _into(out, sum(W[:, :, k] @ X[:, k:k + T_out] for k in range(K)))


def conv1d_adjoint(dY, W, T, out=None):
    """Adjoint of :func:`conv1d` with respect to X: (N, T') -> (C, T), written into ``out`` if given."""
    K = W.shape[2]
    T_out = dY.shape[1]
    dX = np.zeros((W.shape[1], T), dtype=dY.dtype)
    for k in range(K):
        dX[:, k:k + T_out] += W[:, :, k].T @ dY
    return _into(out, dX)


def relu_content(F_pre, Fc):
    """ReLU and the content residual.

    Parameters
    ----------
    F_pre : array, shape (N, T')
        Pre-activation features (not modified by this backend).
    Fc : array, shape (N, T') or None
        Content features; None means no content term.

    Returns
    -------
    F : array, shape (N, T')
        ``max(F_pre, 0)``.
    content_sq : float
        ``sum((F - Fc)**2)`` (0 when ``Fc`` is None), accumulated in float64.
    """
    F = np.maximum(F_pre, 0)
    if Fc is None:
        return F, 0.0
    return F, float(np.sum((F.astype(np.float64) - Fc) ** 2))


def relu_content_backward(F, Fc, dF_style, alpha):
    """Gradient with respect to the pre-activations.

    ``dF_pre = [F > 0] * (dF_style + 2 alpha (F - Fc))``.

    Returns
    -------
    array, shape (N, T')
    """
    dF = dF_style if Fc is None else dF_style + 2 * alpha * (F - Fc)
    return np.where(F > 0, dF, 0).astype(F.dtype)


def style_loss_nxn(F, G_s, out=None):
    """Gram style loss in the N x N form.

    ``L = ||F F^T / T' - G_s||^2``, ``dL/dF = 4 (F F^T / T' - G_s) F / T'``.

    Parameters
    ----------
    F : array, shape (N, T')
    G_s : array, shape (N, N)
        Target Gram matrix.
    out : array, shape (N, T'), optional
        Where to write the gradient.

    Returns
    -------
    value : float
    dF : array, shape (N, T')
    """
    T_out = F.shape[1]
    D = F @ F.T / T_out - G_s
    return float(np.sum(D.astype(np.float64) ** 2)), _into(out, (4.0 / T_out) * (D @ F))


def sum_squares(A):
    """``sum(A**2)`` in float64."""
    return float(np.sum(np.asarray(A, dtype=np.float64) ** 2))


def style_loss_kernel(F, S_hat, target_sq, out=None):
    """Gram style loss in the kernel (time x time) form; equal to :func:`style_loss_nxn`.

    With ``G_s = S_hat S_hat^T``:
    ``L = ||F^T F||^2 / T'^2 - 2 ||F^T S_hat||^2 / T' + ||G_s||^2``,
    ``dL/dF = 4 F (F^T F) / T'^2 - 4 S_hat (S_hat^T F) / T'``.

    Parameters
    ----------
    F : array, shape (N, T')
    S_hat : array, shape (N, Ts)
        Style features, each style's columns scaled by ``sqrt(weight / Ts_i')``.
    target_sq : float
        ``||G_s||^2``.
    out : array, shape (N, T'), optional
        Where to write the gradient.

    Returns
    -------
    value : float
    dF : array, shape (N, T')
    """
    T_out = F.shape[1]
    A = F.T @ F
    B = F.T @ S_hat
    value = (np.sum(A.astype(np.float64) ** 2) / T_out**2
             - 2 * np.sum(B.astype(np.float64) ** 2) / T_out + target_sq)
    dF = (4.0 / T_out**2) * (F @ A) - (4.0 / T_out) * (S_hat @ B.T)
    return float(value), _into(out, dF)


def arccos_kernel(U, a2, b2):
    """The order-1 arc-cosine kernel (Cho & Saul 2009) and its partial derivatives, element-wise.

    For patches p, q with ``U = p . q``, ``a2 = |p|^2``, ``b2 = |q|^2`` and theta their angle:
    ``kappa = (|p||q| sin(theta) + (pi - theta) p.q) / (2 pi)``, which is
    ``E[relu(w.p) relu(w.q)]`` for ``w ~ N(0, I)``;
    ``d kappa / d U = (pi - theta) / (2 pi)`` and ``d kappa / d a2 = |p||q| sin(theta) / (4 pi a2)``
    (both free of the 1/sin(theta) that differentiating each part alone would give).
    A zero patch gets kappa 0, d/dU 1/4 (theta taken as pi/2) and d/d a2 0.

    Parameters
    ----------
    U : array, shape (R, S)
    a2 : array, shape (R,)
    b2 : array, shape (S,)

    Returns
    -------
    kappa, d_u, d_a2 : arrays, shape (R, S), of U's dtype
    """
    return tuple(term.astype(U.dtype) for term in arccos_terms(np, U, a2[:, None], b2[None, :]))


def arccos_terms(xp, u, a2, b2):
    """:func:`arccos_kernel`'s three terms for arrays that broadcast together, in float64, on
    numpy or CuPy (``xp``): also the form for pairs matched one to one (the content term's)."""
    u, a2, b2 = (v.astype(np.float64) for v in (u, a2, b2))
    ab2 = a2 * b2
    s = xp.sqrt(xp.maximum(ab2 - u * u, 0.0))
    ab = xp.sqrt(ab2)
    rest = np.pi - xp.arccos(xp.clip(u / xp.where(ab > 0, ab, 1.0), -1.0, 1.0))
    d_a2 = xp.where(a2 > 0, s / (4 * np.pi * xp.where(a2 > 0, a2, 1.0)), 0.0)
    return (s + rest * u) / (2 * np.pi), rest / (2 * np.pi), d_a2


def strided_windows(x, K, stride, padding, out):
    """Windows of a strided, zero-padded 1-D convolution over a batch: (B, C, T) -> ``out`` (B, C, K, T_out).

    ``out[b, c, k, t] = x[b, c, t*stride + k - padding]``, zero where that index is outside x.
    The im2col matrix of the feedforward networks' layers (flattened to (B, C*K, T_out)).
    Returns ``out``.
    """
    B, C, T = x.shape
    T_out = out.shape[3]
    x_pad = np.zeros((B, C, max(T + 2 * padding, (T_out - 1) * stride + K)), dtype=x.dtype)
    x_pad[:, :, padding:padding + T] = x
    for k in range(K):
        out[:, :, k, :] = x_pad[:, :, k:k + stride * (T_out - 1) + 1:stride]
    return out


def channel_major_windows(strided, overlap):
    """A backend's channel-major windows pair, by transposes of its batch-major ``strided_windows`` and
    ``overlap_windows`` (the numpy reference's; the cuda backend's; the cpu backend has kernels of its own).

    Returns
    -------
    strided_windows_channel_major : callable
        ``(x, K, stride, padding, out)``: x (C, B, T) -> ``out`` (C, K, B, T_out), returned.
    overlap_windows_channel_major : callable
        ``(cols, stride, padding, bias, out)``: cols (C, K, B, T) -> ``out`` (C, B, length), returned.
    """
    def strided_windows_channel_major(x, K, stride, padding, out):
        strided(x.transpose(1, 0, 2), K, stride, padding, out.transpose(2, 0, 1, 3))
        return out

    def overlap_windows_channel_major(cols, stride, padding, bias, out):
        overlap(cols.transpose(2, 0, 1, 3), stride, padding, bias, out.transpose(1, 0, 2))
        return out

    return strided_windows_channel_major, overlap_windows_channel_major


def overlap_windows(cols, stride, padding, bias, out):
    """Adjoint of :func:`strided_windows` into ``out`` (B, C, length), plus a bias (C,) per channel.

    ``out[b, c, s] = bias[c] + sum of cols[b, c, k, t] over t*stride + k - padding = s``:
    (B, C, K, T) -> (B, C, length). The transposed convolution's output and the strided
    convolution's input gradient. Returns ``out``.
    """
    B, C, K, T = cols.shape
    length = out.shape[2]
    full = np.zeros((B, C, max(length + 2 * padding, (T - 1) * stride + K)), dtype=cols.dtype)
    for k in range(K):
        full[:, :, k:k + stride * (T - 1) + 1:stride] += cols[:, :, k, :]
    out[...] = full[:, :, padding:padding + length] + bias[None, :, None]
    return out


strided_windows_channel_major, overlap_windows_channel_major = channel_major_windows(strided_windows,
                                                                                     overlap_windows)
