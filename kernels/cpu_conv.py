"""The cpu backend's convolution: one BLAS GEMM per block of frames on an im2col matrix.

``cols[k*C + c, t] = X[c, t + k]``, so the (N, K*C) x (K*C, frames) product runs at BLAS
speed; blocks keep the im2col buffer bounded for long audio. Also the conv layers' windows
(channels first) and the filters' layout, with fast FIR splits (:mod:`.fast_fir`) where they save work.
"""

import numba
import numpy as np

from . import fast_fir, threading_layer
from .products import matmul
from .scratch import checked_output, thread_scratch
from .threading_layer import parallel_kernel

threading_layer.configure()

# Most frames per im2col block: large enough for GEMM efficiency, small enough that the
# (K*C, block) buffer stays bounded (~90 MB at 1025 bins) for any length of audio.
_BLOCK = 2048


def _blocks(T_out):
    """Equal blocks of at most ``_BLOCK`` frames: a short last block would run the GEMM slowly.

    Returns
    -------
    width : int
        Frames per block (the last may have fewer).
    starts : range
    """
    n_blocks = -(-T_out // _BLOCK)
    width = -(-T_out // n_blocks)
    return width, range(0, T_out, width)


class ConvWeights:
    """Filters W (N, C, K) flattened for im2col: ``mat[n, k*C + c] = W[n, c, k]``.

    ``xp`` is the array module (numpy here, cupy for the cuda backend).
    """

    def __init__(self, W, xp=np):
        self.N, self.C, self.K = W.shape
        self.mat = xp.ascontiguousarray(W.transpose(0, 2, 1).reshape(self.N, self.K * self.C))


def prepare_weights(W, frames=None, plan=None):
    """Lay out W (N, C, K) once: flattened for the im2col GEMMs, split by fast FIR where that saves work.

    Parameters
    ----------
    W : np.ndarray, shape (N, C, K)
    frames : int or None
        Input frames the convolution will mostly run on; chooses the fast FIR splits
        (:func:`fast_fir.split_plan`). None: direct form.
    plan : tuple of int or None
        Force these splits instead (phases of each, outermost first; ``()``: direct form).

    Returns
    -------
    ConvWeights or fast_fir.SplitWeights
    """
    W = np.asarray(W)
    if plan is None:
        plan = () if frames is None else fast_fir.split_plan(W.shape[2], frames)
    return fast_fir.prepare(W, plan, ConvWeights)


@parallel_kernel()
def im2col(X, K, t0, out):
    """``out[k*C + c, j] = X[c, t0 + j + k]`` for the j in ``range(out.shape[1])``."""
    C = X.shape[0]
    width = out.shape[1]
    for row in numba.prange(K * C):
        k = row // C
        c = row - k * C
        for j in range(width):
            out[row, j] = X[c, t0 + j + k]


@parallel_kernel()
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


@parallel_kernel()
def strided_windows_channel_major(x, K, stride, padding, out):
    """Windows of a strided, zero-padded 1-D convolution, channels first (``numpy_backend.strided_windows``
    with the layout of a channel-major activation): ``out[c, k, b, t] = x[c, b, t*stride + k - padding]``,
    zero outside x.

    x (C, B, T) (a channel-major activation, contiguous as such), out (C, K, B, T_out) C-contiguous:
    the whole batch's im2col matrix, (C K, B T_out), for one GEMM. Parallel over (c, k) rows; no
    padded copy of x.
    """
    C, B, T = x.shape
    T_out = out.shape[3]
    for row in numba.prange(C * K):
        c = row // K
        k = row - c * K
        lo = min(max(0, -((k - padding) // stride)), T_out)
        hi = max(min(T_out, (T - 1 + padding - k) // stride + 1), lo)
        for b in range(B):
            for t in range(lo):
                out[c, k, b, t] = 0
            for t in range(lo, hi):
                out[c, k, b, t] = x[c, b, t * stride + k - padding]
            for t in range(hi, T_out):
                out[c, k, b, t] = 0


@parallel_kernel()
def overlap_windows_channel_major(cols, stride, padding, bias, out):
    """The adjoint of :func:`strided_windows_channel_major` plus a bias: ``out[c, b, s] = bias[c] +
    sum of cols[c, k, b, t]`` over ``t*stride + k - padding = s``; cols (C, K, B, T), out (C, B, length).
    Each channel is written by one thread, so the scatter has no races."""
    C, K, B, T = cols.shape
    length = out.shape[2]
    for c in numba.prange(C):
        for b in range(B):
            for s in range(length):
                out[c, b, s] = bias[c]
            for k in range(K):
                lo = max(0, -((k - padding) // stride))
                hi = min(T, (length - 1 + padding - k) // stride + 1)
                for t in range(lo, hi):
                    out[c, b, t * stride + k - padding] += cols[c, k, b, t]


def conv1d(X, W, out=None):
    """Valid 1-D convolution over time; see ``numpy_backend.conv1d``.

    Parameters
    ----------
    X : np.ndarray, shape (C, T)
    W : ConvWeights or fast_fir.SplitWeights
        From :func:`prepare_weights`.
    out : np.ndarray, shape (N, T - K + 1), optional
        Where to write the result.

    Returns
    -------
    np.ndarray, shape (N, T - K + 1)
    """
    T_out = X.shape[1] - W.K + 1
    out = checked_output(out, (W.N, T_out), X.dtype)
    if isinstance(W, fast_fir.SplitWeights):
        return fast_fir.conv1d(X, W, conv1d, out)
    block_width, starts = _blocks(T_out)
    cols = thread_scratch().get("cols", (W.K * W.C, block_width), X.dtype)
    for t0 in starts:
        width = min(block_width, T_out - t0)
        block = cols[:, :width]
        im2col(X, W.K, t0, block)
        matmul(W.mat.astype(X.dtype, copy=False), block, out=out[:, t0:t0 + width])
    return out


def conv1d_adjoint(dY, W, T, out=None):
    """Adjoint of :func:`conv1d` with respect to X: (N, T') -> (C, T), written into ``out`` if given."""
    T_out = dY.shape[1]
    dX = checked_output(out, (W.C, T), dY.dtype)
    if isinstance(W, fast_fir.SplitWeights):
        return fast_fir.conv1d_adjoint(dY, W, T, conv1d_adjoint, dX)
    dX[...] = 0
    mat_t = W.mat.astype(dY.dtype, copy=False).T
    block_width, starts = _blocks(T_out)
    cols = thread_scratch().get("cols", (W.K * W.C, block_width), dY.dtype)
    for t0 in starts:
        width = min(block_width, T_out - t0)
        block = cols[:, :width]
        matmul(mat_t, dY[:, t0:t0 + width], out=block)
        col2im_add(block, W.K, t0, dX)
    return dX
