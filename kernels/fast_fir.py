"""Fast FIR splitting of the 1-D convolution: three half-width convolutions instead of one.

With the taps of W and the frames of X split into even and odd phases
(``W0 = W[..., 0::2]``, ``W1 = W[..., 1::2]``, ``X0 = X[:, 0::2]``, ``X1 = X[:, 1::2]``),
the valid correlation ``Y = corr(W, X)`` interleaves

    Y[:, 2s]     = A[:, s] + B[:, s]
    Y[:, 2s + 1] = P[:, s] - A[:, s + 1] - B[:, s]

with ``A = corr(W0, X0)``, ``B = corr(W1, X1)`` and ``P = corr(W0 + W1, X1 + X0[:, 1:])``:
Karatsuba's product on the polyphase components (the 2-parallel fast FIR algorithm,
Mou & Duhamel 1991). Each of the three has ``ceil(K/2)`` taps over half the frames, so
the GEMM work falls to ``3 ceil(K/2) / (2K)`` of the direct form: 0.82 for K = 11, and
0.61 when the three are split once more. Only additions are added (no division, no
large constants, unlike Winograd's or FFT convolutions), so float32 accuracy stays
(measured ~1e-6 relative to the direct form). The adjoint runs the same steps transposed.

The leaves are the backend's direct im2col GEMMs; this module never imports the backend:
the caller passes its own ``conv`` / ``adjoint`` so that a split node's children can be
split nodes or leaves alike.
"""

import numba
import numpy as np

from .threading_layer import parallel_kernel

# A split pays off only while the leaf GEMMs keep enough columns to run at BLAS speed
# (measured on 2 cores: leaves of ~50 output frames still gained, of ~28 lost).
MIN_LEAF_FRAMES = 48
MAX_LEVELS = 3


def work_fraction(K, levels):
    """GEMM FLOPs of ``levels`` splits relative to the direct form, for filters of width K.

    Each split turns one convolution of ``taps`` taps into three of ``ceil(taps/2)`` taps
    over half the frames.
    """
    fraction, taps = 1.0, K
    for _ in range(levels):
        half = (taps + 1) // 2
        fraction *= 3 * half / (2 * taps)
        taps = half
    return fraction


def split_levels(K, frames):
    """How many times to split filters of width K for inputs of ``frames`` frames.

    Picks the level with the fewest GEMM FLOPs (:func:`work_fraction`; a level must save
    at least 1 %) among those whose leaves still produce ``MIN_LEAF_FRAMES`` output frames.

    Returns
    -------
    int
        0 (direct) to ``MAX_LEVELS``.
    """
    best = 0
    taps, out_frames = K, frames - K + 1
    for level in range(1, MAX_LEVELS + 1):
        if taps < 2:
            break  # a single tap cannot be split
        taps, out_frames = (taps + 1) // 2, (out_frames + 1) // 2
        if out_frames < MIN_LEAF_FRAMES:
            break
        if work_fraction(K, level) < 0.99 * work_fraction(K, best):
            best = level
    return best


class SplitWeights:
    """One fast FIR split of filters W (N, C, K): children for W0, W1 and W0 + W1.

    Parameters
    ----------
    W : np.ndarray, shape (N, C, K), K >= 2
    levels : int
        Splits from here down (>= 1).
    make_leaf : callable
        ``make_leaf(W) -> leaf weights`` of the backend's direct convolution.

    Attributes
    ----------
    N, C, K : int
    half : int
        ceil(K / 2), the children's width (W1 gets a zero tap when K is odd).
    children : tuple
        (even taps, odd taps, their sum), each SplitWeights or a leaf.
    """

    def __init__(self, W, levels, make_leaf):
        self.N, self.C, self.K = W.shape
        self.half = (self.K + 1) // 2
        even = np.ascontiguousarray(W[:, :, 0::2])
        odd = np.zeros_like(even)
        odd[:, :, :self.K // 2] = W[:, :, 1::2]
        total = even + odd

        def child(V):
            return SplitWeights(V, levels - 1, make_leaf) if levels > 1 and V.shape[2] >= 2 else make_leaf(V)

        self.children = (child(even), child(odd), child(total))
        self._buffers = {}

    def buffer(self, name, shape, dtype):
        """A work array of this node, reused across calls (its shape and dtype may change)."""
        array = self._buffers.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = np.empty(shape, dtype=dtype)
            self._buffers[name] = array
        return array


def prepare(W, levels, make_leaf):
    """``make_leaf(W)`` for 0 levels, else the tree of :class:`SplitWeights`."""
    return make_leaf(W) if levels == 0 or W.shape[2] < 2 else SplitWeights(W, levels, make_leaf)


@parallel_kernel()
def _split_signal(X, X0, X1, U):
    """``X0[:, m] = X[:, 2m]``, ``X1[:, m] = X[:, 2m+1]``, ``U = X1 + X0[:, 1:]``; zeros past the end of X."""
    C, T = X.shape
    for c in numba.prange(C):
        for m in range(X0.shape[1]):
            X0[c, m] = X[c, 2 * m] if 2 * m < T else 0
        for m in range(X1.shape[1]):
            x1 = X[c, 2 * m + 1] if 2 * m + 1 < T else 0
            X1[c, m] = x1
            U[c, m] = x1 + X0[c, m + 1]


@parallel_kernel()
def _merge_outputs(A, B, P, Y):
    """``Y[:, 2s] = A[:, s] + B[:, s]``, ``Y[:, 2s+1] = P[:, s] - A[:, s+1] - B[:, s]``."""
    N, T_out = Y.shape
    for n in numba.prange(N):
        for s in range((T_out + 1) // 2):
            Y[n, 2 * s] = A[n, s] + B[n, s]
            if 2 * s + 1 < T_out:
                Y[n, 2 * s + 1] = P[n, s] - A[n, s + 1] - B[n, s]


@parallel_kernel()
def _split_output_grad(dY, dA, dB, dP):
    """Transpose of :func:`_merge_outputs`: the gradients of A, B and P from that of Y."""
    N, T_out = dY.shape
    S = dB.shape[1]
    for n in numba.prange(N):
        previous = np.float32(0)  # dY[:, 2s - 1]
        for s in range(S):
            d_even = dY[n, 2 * s] if 2 * s < T_out else 0
            d_odd = dY[n, 2 * s + 1] if 2 * s + 1 < T_out else 0
            dA[n, s] = d_even - previous
            dB[n, s] = d_even - d_odd
            dP[n, s] = d_odd
            previous = d_odd
        dA[n, S] = -previous


@parallel_kernel()
def _merge_signal_grad(dX0, dX1, dU, dX):
    """Transpose of :func:`_split_signal`: the gradient of X from those of X0, X1 and U."""
    C, T = dX.shape
    for c in numba.prange(C):
        for i in range(T):
            m = i // 2
            if i % 2 == 0:
                value = dX0[c, m]
                if m >= 1:
                    value += dU[c, m - 1]
            else:
                value = dX1[c, m] + dU[c, m]
            dX[c, i] = value


def conv1d(X, W, conv, out):
    """Valid 1-D correlation ``(C, T) -> (N, T - K + 1)`` through one split.

    Parameters
    ----------
    X : np.ndarray, shape (C, T)
    W : SplitWeights
    conv : callable
        The backend's ``conv1d(X, W, out=None)``, for the children.
    out : np.ndarray, shape (N, T - K + 1)
    """
    C, T = X.shape
    T_out = T - W.K + 1
    S = (T_out + 1) // 2  # frames of the even output phase
    X0 = W.buffer("x0", (C, S + W.half), X.dtype)
    X1 = W.buffer("x1", (C, S + W.half - 1), X.dtype)
    U = W.buffer("u", (C, S + W.half - 1), X.dtype)
    _split_signal(X, X0, X1, U)
    even, odd, total = W.children
    A = conv(X0, even, out=W.buffer("a", (W.N, S + 1), X.dtype))
    B = conv(X1, odd, out=W.buffer("b", (W.N, S), X.dtype))
    P = conv(U, total, out=W.buffer("p", (W.N, S), X.dtype))
    _merge_outputs(A, B, P, out)
    return out


def conv1d_adjoint(dY, W, T, adjoint, out):
    """Adjoint of :func:`conv1d` with respect to X: ``(N, T') -> (C, T)``.

    Parameters
    ----------
    dY : np.ndarray, shape (N, T')
    W : SplitWeights
    T : int
        Frames of X.
    adjoint : callable
        The backend's ``conv1d_adjoint(dY, W, T, out=None)``, for the children.
    out : np.ndarray, shape (C, T)
    """
    S = (dY.shape[1] + 1) // 2
    # The forward pass is over, so its output buffers hold the gradients here.
    dA = W.buffer("a", (W.N, S + 1), dY.dtype)
    dB = W.buffer("b", (W.N, S), dY.dtype)
    dP = W.buffer("p", (W.N, S), dY.dtype)
    _split_output_grad(dY, dA, dB, dP)
    even, odd, total = W.children
    dX0 = adjoint(dA, even, S + W.half, out=W.buffer("x0", (W.C, S + W.half), dY.dtype))
    dX1 = adjoint(dB, odd, S + W.half - 1, out=W.buffer("x1", (W.C, S + W.half - 1), dY.dtype))
    dU = adjoint(dP, total, S + W.half - 1, out=W.buffer("u", (W.C, S + W.half - 1), dY.dtype))
    _merge_signal_grad(dX0, dX1, dU, out)
    return out
