"""Fast FIR splitting of the 1-D convolution: Toom-Cook products on polyphase components.

With the taps of W and the frames of X split into ``f`` phases (``W_q = W[..., q::f]``,
``X_r = X[:, r::f]``, each phase ``ceil(K/f)`` taps), the valid correlation
``Y = corr(W, X)`` is, phase by phase,

    Y[:, f s + p] = C_p[:, s] + C_{p-f}[:, s + 1]        (C_{-f} = 0)

where ``C_d`` sums ``corr(W_q, X_r)`` over ``r - q = d``: the coefficients of the product of
the polynomials ``x(v) = sum_r v^r X_r`` and ``w(v) = sum_q v^(f-1-q) W_q`` (shifted by
``f - 1``). Toom-Cook evaluates both at ``2f - 1`` points, correlates each pair once (one
GEMM leaf of ``ceil(K/f)`` taps over a ``1/f`` of the frames) and interpolates: ``2f - 1``
half-, third- or quarter-width convolutions instead of ``f^2``. With ``f = 2`` at the points
0, 1 and infinity this is Karatsuba's 2-parallel fast FIR algorithm (Mou & Duhamel 1991);
with ``f = 4`` at 0, +-1, +-2, +-1/2 it is Toom-4: for K = 11, 7 leaves of 3 taps over a
quarter of the frames, 0.48 of the direct form's GEMM FLOPs (two Karatsuba splits: 9 leaves,
0.61). The price is rounding: Karatsuba adds only additions (1.3-1.8x the direct form's
float32 error); Toom-3's and Toom-4's interpolation weighs the products by fractions (up to 5.25 in
size) and leaves 2.5-3.4x the direct form's float32 error (~1e-6 relative, measured in
``tests/test_fast_fir.py``; the ratio depends on how the BLAS kernel orders the direct form's
own sums), far below what the optimizer resolves. The interpolation sums in
float64. The adjoint runs the same steps transposed.

The leaves are the backend's direct im2col GEMMs; this module never imports the backend:
the caller passes its own ``conv`` / ``adjoint`` so that a split node's children can be
split nodes or leaves alike.
"""

import itertools

import numba
import numpy as np

from .threading_layer import parallel_kernel

# A split pays off only while the leaf GEMMs keep enough columns to run at BLAS speed
# (measured on 2 cores: leaves of ~50 output frames still gained, of ~28 lost).
MIN_LEAF_FRAMES = 48
MAX_LEVELS = 3
# The leaves' weights, relative to W's own bytes (their evaluations at every point). More
# leaves with fewer taps each would cut FLOPs further (Toom-4 twice: 0.28 of the direct
# form for K = 11) but hold 4.5x W (0.8 GB for the default 4096 filters) in narrower GEMMs.
MAX_LEAF_WEIGHTS = 2.5

# Evaluation points per number of phases (None is infinity: the leading coefficients).
# Chosen for float32: small integers and their inverses keep the interpolation's weights
# small (Toom-4 at these points: 2.5-3.4x the direct form's float32 error; with 3 in place of -1/2,
# ~5x more again).
POINTS = {2: (0.0, 1.0, None), 3: (0.0, 1.0, -1.0, 0.5, None), 4: (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5)}
FACTORS = tuple(POINTS)


def _scheme(factor):
    """Evaluation matrices of the signal (2f-1, f) and the weights (2f-1, f), and interpolation (2f-1, 2f-1)."""
    points = POINTS[factor]
    degree = 2 * factor - 1  # coefficients of the product
    powers = np.array([[0.0] * (degree - 1) + [1.0] if v is None else [v ** e for e in range(degree)]
                       for v in points])
    signal = powers[:, :factor].copy()                 # x(v) = sum_r v^r X_r
    weights = powers[:, :factor][:, ::-1].copy()       # w(v) = sum_q v^(f-1-q) W_q
    for i, v in enumerate(points):
        if v is None:  # the leading coefficients: X_{f-1} and W_0
            signal[i] = np.eye(factor)[factor - 1]
            weights[i] = np.eye(factor)[0]
    return signal, weights, np.linalg.inv(powers)


def work_fraction(K, plan):
    """GEMM FLOPs of the splits in ``plan`` relative to the direct form, for filters of width K.

    Parameters
    ----------
    K : int
    plan : tuple of int
        Phases of each split, outermost first (``()``: the direct form).
    """
    fraction, taps = 1.0, K
    for factor in plan:
        part = -(-taps // factor)
        fraction *= (2 * factor - 1) * part / (factor * taps)
        taps = part
    return fraction


def leaf_weights(K, plan):
    """The leaves' weight bytes relative to W's: leaves times their taps over K."""
    leaves, taps = 1, K
    for factor in plan:
        leaves, taps = leaves * (2 * factor - 1), -(-taps // factor)
    return leaves * taps / K


def split_plan(K, frames):
    """The splits to run filters of width K on inputs of ``frames`` frames with.

    The plan with the fewest GEMM FLOPs (:func:`work_fraction`; a plan must save at least
    1 % over the best one with fewer or the same number of splits found before it) whose leaves keep ``MIN_LEAF_FRAMES`` output frames and whose leaf
    weights stay within ``MAX_LEAF_WEIGHTS`` of W's bytes.

    Returns
    -------
    tuple of int
        Phases of each split, outermost first; ``()`` for the direct form.
    """
    best, best_fraction = (), 1.0
    for levels in range(1, MAX_LEVELS + 1):
        for plan in itertools.product(FACTORS, repeat=levels):
            taps, out_frames, feasible = K, frames - K + 1, True
            for factor in plan:
                feasible &= taps >= 2  # a single tap is not split
                taps, out_frames = -(-taps // factor), -(-out_frames // factor)
            fraction = work_fraction(K, plan)
            if (feasible and out_frames >= MIN_LEAF_FRAMES and leaf_weights(K, plan) <= MAX_LEAF_WEIGHTS
                    and fraction < 0.99 * best_fraction):
                best, best_fraction = plan, fraction
    return best


class SplitWeights:
    """One Toom-Cook split of filters W (N, C, K) into ``factor`` phases: one child per point.

    Parameters
    ----------
    W : np.ndarray, shape (N, C, K), K >= 2
    plan : tuple of int
        Phases of this split and of those below it (``plan[0]`` here).
    make_leaf : callable
        ``make_leaf(W) -> leaf weights`` of the backend's direct convolution.

    Attributes
    ----------
    N, C, K : int
    factor : int
        Phases.
    taps : int
        ceil(K / factor), the children's width (the last phases get zero taps).
    evaluation, interpolation : tuple of np.ndarray, each shape (f, 2f-1)
        The signal's evaluation and the products' interpolation as the ``(now, following)``
        weights of :func:`_interleave` (float64).
    children : tuple
        One per evaluation point, each SplitWeights or a leaf.
    """

    def __init__(self, W, plan, make_leaf):
        self.N, self.C, self.K = W.shape
        self.factor = plan[0]
        self.taps = -(-self.K // self.factor)
        signal_matrix, weight_matrix, interpolation = _scheme(self.factor)
        # As (now, following) pairs for _interleave / _deinterleave: the signal's evaluation
        # involves one frame of each phase; of the product's coefficients, phase p takes C_p
        # (row p + f - 1 of the interpolation) of its own frame and C_(p-f) (row p - 1) of the next.
        f = self.factor
        self.evaluation = (np.ascontiguousarray(signal_matrix.T), np.zeros((f, 2 * f - 1)))
        following = np.zeros((f, 2 * f - 1))
        following[1:] = interpolation[:f - 1]
        self.interpolation = (np.ascontiguousarray(interpolation[f - 1:]), following)

        def child(weights):
            """w(v) at one point (N, C, taps): a view of an (N, taps, C) array, the leaves' im2col layout."""
            V = np.empty((self.N, self.taps, self.C), dtype=W.dtype)
            _weights_at_point(W, weights, V)
            V = V.transpose(0, 2, 1)  # a leaf's flattening transposes it back: no copy
            return SplitWeights(V, plan[1:], make_leaf) if len(plan) > 1 and self.taps >= 2 else make_leaf(V)

        # One point at a time: a nested split frees its intermediate weights before the next point makes its own.
        self.children = tuple(child(weights) for weights in weight_matrix)
        self._buffers = {}

    def buffer(self, name, shape, dtype):
        """A work array of this node, reused across calls (its shape and dtype may change)."""
        array = self._buffers.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = np.empty(shape, dtype=dtype)
            self._buffers[name] = array
        return array


def prepare(W, plan, make_leaf):
    """``make_leaf(W)`` for an empty plan, else the tree of :class:`SplitWeights`."""
    return make_leaf(W) if not plan or W.shape[2] < 2 else SplitWeights(W, tuple(plan), make_leaf)


@parallel_kernel()
def _weights_at_point(W, weights, V):
    """``V[n, j, c] = sum_q weights[q] W[n, c, f j + q]`` (zero past K), summed in float64.

    The weights' polynomial ``w(v) = sum_q v^(f-1-q) W_q`` at one point (``weights[q] =
    v^(f-1-q)``), written taps-major so that a leaf's im2col matrix is this array as it lies.

    Parameters
    ----------
    W : np.ndarray, shape (N, C, K), any strides
    weights : np.ndarray, shape (f,), float64
    V : np.ndarray, shape (N, ceil(K / f), C), W's dtype
    """
    N, C, K = W.shape
    f = weights.shape[0]
    taps = V.shape[1]
    for n in numba.prange(N):
        for j in range(taps):
            for c in range(C):
                total = 0.0
                for q in range(f):
                    if weights[q] != 0 and f * j + q < K:
                        total += weights[q] * W[n, c, f * j + q]
                V[n, j, c] = total


@parallel_kernel()
def _interleave(P, now, following, Y):
    """``Y[n, f s + p] = sum_i now[p, i] P[i, n, s] + following[p, i] P[i, n, s + 1]``.

    The interpolation of the products into the output's phases, and (with the signal's
    evaluation matrix, transposed, as ``now`` and zeros as ``following``) the adjoint of the
    signal's evaluation. Summed phase by phase over contiguous frames (so that the sums
    vectorise), in float64 (the interpolation's weights cancel), then interleaved into Y.
    """
    N, T = Y.shape
    f, n_points = now.shape
    S1 = P.shape[2]
    for n in numba.prange(N):
        phases = np.zeros((f, S1), dtype=np.float64)
        for i in range(n_points):
            for p in range(f):
                a, b = now[p, i], following[p, i]
                if a != 0:
                    for s in range(S1):
                        phases[p, s] += a * P[i, n, s]
                if b != 0:
                    for s in range(S1 - 1):
                        phases[p, s] += b * P[i, n, s + 1]
        for p in range(f):
            for s in range((T - p + f - 1) // f):
                Y[n, f * s + p] = phases[p, s]


@parallel_kernel()
def _deinterleave(Y, now, following, P):
    """Transpose of :func:`_interleave`: ``P[i, n, s] = sum_p now[p, i] Y[n, f s + p] + following[p, i] Y[n, f (s-1) + p]``
    (zero past the end of Y).

    The signal's evaluation at the points (``now`` its matrix transposed, ``following``
    zeros), and the adjoint of the interpolation.
    """
    N, T = Y.shape
    f, n_points = now.shape
    S1 = P.shape[2]
    for n in numba.prange(N):
        phases = np.zeros((f, S1), dtype=np.float64)
        for p in range(f):
            for s in range((T - p + f - 1) // f):
                phases[p, s] = Y[n, f * s + p]
        row = np.empty(S1, dtype=np.float64)
        for i in range(n_points):
            row[:] = 0
            for p in range(f):
                a, b = now[p, i], following[p, i]
                if a != 0:
                    for s in range(S1):
                        row[s] += a * phases[p, s]
                if b != 0:
                    for s in range(1, S1):
                        row[s] += b * phases[p, s - 1]
            for s in range(S1):
                P[i, n, s] = row[s]


def _frames(W, T_out):
    """Output frames S of each phase, and the frames of the children's inputs (S + 1 + taps - 1)."""
    S = -(-T_out // W.factor)
    return S, S + W.taps


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
    S, L = _frames(W, T - W.K + 1)
    n_points = len(W.children)
    E = W.buffer("signal", (n_points, C, L), X.dtype)
    _deinterleave(X, *W.evaluation, E)
    P = W.buffer("products", (n_points, W.N, S + 1), X.dtype)
    for i, child in enumerate(W.children):
        conv(E[i], child, out=P[i])
    _interleave(P, *W.interpolation, out)
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
    S, L = _frames(W, dY.shape[1])
    n_points = len(W.children)
    # The forward pass is over, so its buffers hold the gradients here.
    dP = W.buffer("products", (n_points, W.N, S + 1), dY.dtype)
    _deinterleave(dY, *W.interpolation, dP)
    dE = W.buffer("signal", (n_points, W.C, L), dY.dtype)
    for i, child in enumerate(W.children):
        adjoint(dP[i], child, L, out=dE[i])
    _interleave(dE, *W.evaluation, out)
    return out
