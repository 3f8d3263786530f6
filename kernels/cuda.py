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
from .cpu_conv import ConvWeights

# Heap integration visits coefficients one at a time, each from a neighbour: no GPU kernel
# would beat the CPU's, so the GPU backend hands it the host arrays (as it does a stream's
# frame kernels and mel inversion, which run a frame or two at a time).
from .cpu_mel import mel_fista_start, mel_fista_steps  # noqa: F401 (backend functions)
from .cpu_phase import (  # noqa: F401
    heap_integrate,
    heap_integrate_frame,
    keep_magnitude,
    window_sum_weights,
)
from .cpu_stream import (  # noqa: F401
    frame_product,
    normalized_frames,
    overlap_add_frames,
    polyphase_outputs,
)
from .numpy_backend import channel_major_windows
from .scratch import checked_output

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
    out = checked_output(out, (W.N, T_out), X.dtype, cp)
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
    dX = checked_output(out, (W.C, T), dY.dtype, cp)
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
    return value, cp.matmul(D, F, out=checked_output(out, F.shape, F.dtype, cp))


def style_loss_kernel(F, S_hat, target_sq, out=None):
    """Gram style loss in the kernel form; see ``numpy_backend.style_loss_kernel``."""
    T_out = F.shape[1]
    A = F.T @ F
    B = F.T @ S_hat
    value = sum_squares(A) / T_out**2 - 2.0 * sum_squares(B) / T_out + target_sq
    A *= F.dtype.type(4.0 / T_out**2)
    B *= F.dtype.type(-4.0 / T_out)
    dF = cp.matmul(F, A, out=checked_output(out, F.shape, F.dtype, cp))
    dF += S_hat @ B.T
    return value, dF


class GriffinLimState:
    """One spectrogram's fast Griffin-Lim on the GPU, frame-major as ``cpu_phase.GriffinLimState``
    (whose attributes these are, as device arrays, plus ``full``: the inverse window-sum without the cut)."""

    def __init__(self, S, angles, window, hop_length, center):
        n_fft, T = window.shape[0], S.shape[1]
        self.S = cp.ascontiguousarray(cp.asarray(S, dtype=cp.float32).T)
        self.spec = cp.ascontiguousarray((cp.asarray(S, dtype=cp.float32) * cp.asarray(angles)).T).astype(cp.complex64)
        self.window, self.hop_length = cp.asarray(window, dtype=cp.float32), hop_length
        self.cut = cp.asarray(window_sum_weights(window, hop_length, T, n_fft // 2 if center else 0))
        self.full = cp.asarray(window_sum_weights(window, hop_length, T, 0))
        self.y = cp.empty(self.cut.shape[0], dtype=cp.float32)
        self.frames = cp.empty((T, n_fft), dtype=cp.float32)
        self.no_previous = cp.zeros_like(self.spec)
        self.norm = float(cp.sqrt(cp.sum(self.S.astype(cp.float64) ** 2)))


def griffin_lim_start(S, angles, *, window, hop_length, center):
    """Fast Griffin-Lim's state for one spectrogram, on the device; parameters as ``cpu_phase.griffin_lim_start``."""
    return GriffinLimState(S, angles, window, hop_length, center)


def griffin_lim_project(state):
    """The STFT of the ISTFT of ``state.spec`` (cuFFT and two kernels): (frames, bins) complex64."""
    n_fft = state.window.shape[0]
    inverse = cp.fft.irfft(state.spec, n=n_fft, axis=-1).astype(cp.float32, copy=False)
    _launch(ck.overlap_add_normalized, state.y.size, inverse, state.window, state.hop_length, state.cut, state.y)
    _launch(ck.frame_windowed, state.frames.size, state.y, state.window, state.hop_length, state.frames)
    return cp.fft.rfft(state.frames, axis=-1).astype(cp.complex64, copy=False)


def griffin_lim_phase_step(state, rebuilt, previous, coef):
    """Fast Griffin-Lim's phase step in one kernel; parameters as ``cpu_phase.griffin_lim_phase_step``.

    Returns ``||S - |rebuilt|||`` as a 0-d device array: it stays on the device, as reading it
    back would sync every step."""
    use_previous = previous is not None
    total = cp.zeros(1, dtype=cp.float64)
    _launch(ck.phase_update, state.spec.size, state.S, rebuilt, previous if use_previous else state.no_previous,
            np.float32(coef), use_previous, state.spec, total)
    return cp.sqrt(total)[0]


def griffin_lim_inverse(state):
    """The ISTFT of ``state.spec`` in the padded domain, padding kept: (n_fft + hop (frames - 1),) float32."""
    n_fft = state.window.shape[0]
    inverse = cp.fft.irfft(state.spec, n=n_fft, axis=-1).astype(cp.float32, copy=False)
    _launch(ck.overlap_add_normalized, state.y.size, inverse, state.window, state.hop_length, state.full, state.y)
    return state.y
