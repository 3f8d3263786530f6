"""The GPU backend: CuPy arrays, cuBLAS GEMMs and cuFFT through CuPy, hand-written numba.cuda kernels.

The same functions as ``nstaudio.kernels.cpu``, on device arrays. The GEMMs and FFTs
are CuPy's; everything else (im2col / col2im, the fused ReLU mask and content residual,
the float64 reductions, framing, overlap-add and the Griffin-Lim phase step) is a
kernel of ``cuda_kernels``, launched here on CuPy arrays. Only the L-BFGS-B vector
crosses to the host per iteration.
"""

import cupy as cp
import numpy as np

from . import cuda_kernels as ck

# Heap integration visits coefficients one at a time, each from a neighbour: no GPU kernel
# would beat the CPU's, so the GPU backend hands it the host arrays.
from .cpu import (  # noqa: F401
    ConvWeights,
    _output,
    frame_product,
    heap_integrate,
    heap_integrate_frame,
    keep_magnitude,
    mel_fista_start,
    mel_fista_steps,
    normalized_frames,
    overlap_add_frames,
    polyphase_outputs,
    window_sum_weights,
)
from .numpy_backend import channel_major_windows

name = "cuda"
xp = cp

# The GPU has memory to spare: one im2col block covers minutes of audio.
_BLOCK = 8192


def asarray(x, dtype):
    """Move ``x`` to the GPU as a contiguous array of ``dtype``."""
    return cp.ascontiguousarray(cp.asarray(x, dtype=dtype))


def to_numpy(x):
    """Copy ``x`` to the host."""
    return cp.asnumpy(x)


def _launch(kernel, n, *args):
    blocks, threads = ck.launch_config(n)
    kernel[blocks, threads](*args)


def prepare_weights(W, frames=None):
    """Flatten W (N, C, K) once, on the device; direct form for any ``frames`` (the cpu
    backend's fast FIR split is not implemented here)."""
    return ConvWeights(cp.asarray(W), xp=cp)


def matmul(a, b, out=None):
    """``a @ b`` for 2-D device arrays (into ``out`` if given): cuBLAS."""
    return cp.matmul(a, b, out=out)


def gram(a, out=None):
    """``a @ a.T`` for a 2-D device array (into ``out`` if given)."""
    return cp.matmul(a, a.T, out=out)


def conv1d(X, W, out=None):
    """Valid 1-D convolution over time: (C, T) -> (N, T - K + 1); see ``numpy_backend.conv1d``."""
    T_out = X.shape[1] - W.K + 1
    out = _output(out, (W.N, T_out), X.dtype, cp)
    mat = W.mat.astype(X.dtype, copy=False)
    for t0 in range(0, T_out, _BLOCK):
        width = min(_BLOCK, T_out - t0)
        cols = cp.empty((W.K * W.C, width), dtype=X.dtype)
        _launch(ck.im2col, cols.size, X, W.K, t0, cols)
        if width == T_out:
            cp.matmul(mat, cols, out=out)
        else:
            out[:, t0:t0 + width] = mat @ cols
    return out


def conv1d_adjoint(dY, W, T, out=None):
    """Adjoint of :func:`conv1d` with respect to X: (N, T') -> (C, T)."""
    T_out = dY.shape[1]
    dX = _output(out, (W.C, T), dY.dtype, cp)
    dX.fill(0)
    mat_t = W.mat.astype(dY.dtype, copy=False).T
    for t0 in range(0, T_out, _BLOCK):
        width = min(_BLOCK, T_out - t0)
        cols = mat_t @ cp.ascontiguousarray(dY[:, t0:t0 + width])
        _launch(ck.col2im_add, W.C * (width + W.K - 1), cols, W.K, t0, dX)
    return dX


def _contiguous_target(out):
    """``out`` itself, or a contiguous stand-in to copy into it.

    The layers pass channel-major views; the CUDA simulator (what CI runs) transfers only
    contiguous buffers. Whether numba.cuda on a GPU takes CuPy's strided views directly, and
    saves these copies, is not yet measured."""
    return out if out.flags.c_contiguous else cp.empty(out.shape, out.dtype)


def strided_windows(x, K, stride, padding, out):
    """Windows of a strided, zero-padded convolution into ``out`` (B, C, K, T_out); see ``numpy_backend``."""
    target = _contiguous_target(out)
    _launch(ck.strided_windows, target.size, cp.ascontiguousarray(x), K, stride, padding, target)
    if target is not out:
        out[...] = target
    return out


def overlap_windows(cols, stride, padding, bias, out):
    """Adjoint of :func:`strided_windows` plus a bias, into ``out`` (B, C, length); see ``numpy_backend``."""
    target = _contiguous_target(out)
    _launch(ck.overlap_windows, target.size, cp.ascontiguousarray(cols), stride, padding, bias, target)
    if target is not out:
        out[...] = target
    return out


strided_windows_channel_major, overlap_windows_channel_major = channel_major_windows(strided_windows,
                                                                                     overlap_windows)


def _no_content(F):
    """A placeholder for the absent content features: never read, and never an alias of F
    (the CUDA simulator copies each argument in and back out, so an alias would undo writes)."""
    return cp.zeros((1, 1), dtype=F.dtype)


def relu_content(F_pre, Fc):
    """ReLU in place fused with the content residual; see ``cpu.relu_content``."""
    total = cp.zeros(1, dtype=cp.float64)
    _launch(ck.relu_content, F_pre.size, F_pre, _no_content(F_pre) if Fc is None else Fc, Fc is not None, total)
    return F_pre, float(cp.asnumpy(total)[0]) if Fc is not None else 0.0


def relu_content_backward(F, Fc, dF_style, alpha):
    """``[F > 0] * (dF_style + 2 alpha (F - Fc))``, written into ``dF_style``."""
    _launch(ck.mask_content_grad, F.size, F, _no_content(F) if Fc is None else Fc, dF_style,
            dF_style.dtype.type(2 * alpha), Fc is not None)
    return dF_style


def sum_squares(A):
    """``sum(A**2)`` in float64."""
    total = cp.zeros(1, dtype=cp.float64)
    _launch(ck.sum_squares, A.size, A, total)
    return float(cp.asnumpy(total)[0])


def arccos_kernel(U, a2, b2):
    """The arc-cosine kernel and its derivatives; see ``numpy_backend.arccos_kernel``."""
    kappa, d_u, d_a2 = (cp.empty_like(U) for _ in range(3))
    _launch(ck.arccos_kernel, U.size, U, a2, b2, kappa, d_u, d_a2)
    return kappa, d_u, d_a2


def style_loss_nxn(F, G_s, out=None):
    """Gram style loss in the N x N form; see ``numpy_backend.style_loss_nxn``."""
    T_out = F.shape[1]
    D = F @ F.T
    D *= F.dtype.type(1.0 / T_out)
    D -= G_s
    value = sum_squares(D)
    D *= F.dtype.type(4.0 / T_out)
    return value, cp.matmul(D, F, out=_output(out, F.shape, F.dtype, cp))


def style_loss_kernel(F, S_hat, target_sq, out=None):
    """Gram style loss in the kernel form; see ``numpy_backend.style_loss_kernel``."""
    T_out = F.shape[1]
    A = F.T @ F
    B = F.T @ S_hat
    value = sum_squares(A) / T_out**2 - 2.0 * sum_squares(B) / T_out + target_sq
    A *= F.dtype.type(4.0 / T_out**2)
    B *= F.dtype.type(-4.0 / T_out)
    dF = cp.matmul(F, A, out=_output(out, F.shape, F.dtype, cp))
    dF += S_hat @ B.T
    return value, dF


def griffin_lim(S, angles, *, window, hop_length, center, momentum, n_iter, callback=None):
    """Fast Griffin-Lim on the GPU; see ``cpu.griffin_lim`` (same layout and return values)."""
    n_fft = window.shape[0]
    T = S.shape[1]
    S_tf = cp.ascontiguousarray(cp.asarray(S, dtype=cp.float32).T)
    spec = cp.ascontiguousarray((cp.asarray(S, dtype=cp.float32) * cp.asarray(angles)).T).astype(cp.complex64)
    w = cp.asarray(window, dtype=cp.float32)
    cut = cp.asarray(window_sum_weights(window, hop_length, T, n_fft // 2 if center else 0))
    y = cp.empty(cut.shape[0], dtype=cp.float32)
    frames = cp.empty((T, n_fft), dtype=cp.float32)
    norm_S = float(cp.sqrt(cp.sum(S_tf.astype(cp.float64) ** 2)))
    coef = np.float32(momentum / (1.0 + momentum))
    previous = cp.zeros_like(spec)
    # One error sum per iteration stays on the device; reading each back would sync every step.
    errors = cp.zeros(max(n_iter, 1), dtype=cp.float64)

    def to_db(err):
        return 20.0 * np.log10(np.maximum(np.sqrt(err), 1e-30) / max(norm_S, 1e-30))

    for i in range(n_iter):
        inverse = cp.fft.irfft(spec, n=n_fft, axis=-1).astype(cp.float32, copy=False)
        _launch(ck.overlap_add_normalized, y.size, inverse, w, hop_length, cut, y)
        _launch(ck.frame_windowed, frames.size, y, w, hop_length, frames)
        rebuilt = cp.fft.rfft(frames, axis=-1).astype(cp.complex64, copy=False)
        _launch(ck.phase_update, spec.size, S_tf, rebuilt, previous, coef, i > 0, spec, errors[i:i + 1])
        previous = rebuilt
        if callback is not None:
            callback(i + 1, float(to_db(float(cp.asnumpy(errors[i:i + 1])[0]))))
    history = to_db(cp.asnumpy(errors)[:n_iter])
    inverse = cp.fft.irfft(spec, n=n_fft, axis=-1).astype(cp.float32, copy=False)
    full = cp.asarray(window_sum_weights(window, hop_length, T, 0))
    _launch(ck.overlap_add_normalized, y.size, inverse, w, hop_length, full, y)
    return y, history
