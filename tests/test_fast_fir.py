"""The cpu backend's fast FIR split of the convolution against the direct reference."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from test_gradients import assert_gradient, finite_difference

from nstaudio.features import random_filters
from nstaudio.kernels import cpu, fast_fir, numpy_backend as ref
from nstaudio.objective import StyleTransferObjective

PLANS = [(2,), (3,), (4,), (2, 2), (4, 2), (2, 3), (3, 4), (2, 2, 2)]


@settings(max_examples=60, deadline=None)
@given(N=st.integers(1, 7), C=st.integers(1, 6), K=st.integers(2, 12), extra=st.integers(0, 30),
       plan=st.sampled_from(PLANS), seed=st.integers(0, 1000))
def test_split_conv_and_adjoint_match_reference(N, C, K, extra, plan, seed):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((N, C, K))
    Wp = cpu.prepare_weights(W, plan=plan)
    assert isinstance(Wp, fast_fir.SplitWeights)
    # Prepared for one length, used on others, twice each: the node buffers are reused.
    for T in (K + extra, K + extra // 2, K + extra):
        X = rng.standard_normal((C, T))
        np.testing.assert_allclose(cpu.conv1d(X, Wp), ref.conv1d(X, W), rtol=1e-10, atol=1e-10)
        dY = rng.standard_normal((N, T - K + 1))
        out = np.full((C, T), np.nan)
        got = cpu.conv1d_adjoint(dY, Wp, T, out=out)
        assert got is out
        np.testing.assert_allclose(got, ref.conv1d_adjoint(dY, W, T), rtol=1e-10, atol=1e-10)


def weights_at_point_reference(W, weights):
    """w(v) at one point, (N, C, ceil(K/f)): the phases ``W[..., q::f]`` weighed and summed in float64."""
    N, C, K = W.shape
    f = len(weights)
    V = np.zeros((N, C, -(-K // f)))
    for q in range(f):
        if weights[q] != 0:
            phase = W[:, :, q::f]
            V[:, :, :phase.shape[2]] += weights[q] * phase
    return V.astype(W.dtype)


@settings(max_examples=60, deadline=None)
@given(N=st.integers(1, 6), C=st.integers(1, 7), K=st.integers(2, 13), factor=st.sampled_from(fast_fir.FACTORS),
       dtype=st.sampled_from([np.float32, np.float64]), strided=st.booleans(), seed=st.integers(0, 1000))
def test_weights_at_point_matches_reference(N, C, K, factor, dtype, strided, seed):
    """The leaves' weights, laid out taps-major, equal the numpy sums to the bit (the same float64
    sums in the same order), from contiguous filters and from a split node's transposed view."""
    W = np.random.default_rng(seed).standard_normal((N, C, K)).astype(dtype)
    if strided:  # how a nested split sees its parent's child: an (N, C, taps) view of (N, taps, C)
        W = np.ascontiguousarray(W.transpose(0, 2, 1)).transpose(0, 2, 1)
    _, weight_matrix, _ = fast_fir._scheme(factor)
    for weights in weight_matrix:
        V = np.full((N, -(-K // factor), C), np.nan, dtype=dtype)
        fast_fir._weights_at_point(W, weights, V)
        np.testing.assert_array_equal(V.transpose(0, 2, 1), weights_at_point_reference(W, weights))


@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 5), C=st.integers(1, 5), K=st.integers(2, 9), extra=st.integers(0, 20),
       plan=st.sampled_from(PLANS), seed=st.integers(0, 1000))
def test_split_adjoint_is_the_adjoint(N, C, K, extra, plan, seed):
    """<conv(X), dY> == <X, conv^T(dY)> through the split itself."""
    rng = np.random.default_rng(seed)
    Wp = cpu.prepare_weights(rng.standard_normal((N, C, K)), plan=plan)
    X = rng.standard_normal((C, K + extra))
    dY = rng.standard_normal((N, extra + 1))
    lhs = np.vdot(cpu.conv1d(X, Wp), dY)
    rhs = np.vdot(X, cpu.conv1d_adjoint(dY, Wp, X.shape[1]))
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)


# The factors allow for the BLAS: the direct form's own error depends on how its kernel orders
# the float32 sums, and so does the ratio. On an AVX-512 Intel Xeon (seed 0): (2,) 1.3-1.5x,
# (4,) ~2.5x; on OpenBLAS's AVX2 (Haswell) kernels of an AMD EPYC, whose direct form is more
# accurate (2.4-2.6e-7), seeds 0-2: (2,) 1.7-1.8x, (2, 2) 2.0-2.1x, (3,) 2.7-2.8x, (4,) 3.0-3.4x,
# (2, 3) 3.3-3.5x. Worse points cost ~5x more (see fast_fir.POINTS), a wrong weight far more.
@pytest.mark.parametrize("plan, factor", [((2,), 2.5), ((2, 2), 3), ((3,), 4), ((4,), 5), ((2, 3), 5)])
def test_split_keeps_float32_accuracy(plan, factor):
    """Karatsuba adds only additions (float32 error near the direct form's); Toom-3 and Toom-4
    interpolate with fractions, which costs a few times the direct form's rounding error, no more."""
    rng = np.random.default_rng(0)
    W = random_filters(64, 40, 11, seed=0)
    X = rng.random((40, 300)).astype(np.float32)
    exact = ref.conv1d(X.astype(np.float64), W.astype(np.float64))
    direct = cpu.conv1d(X, cpu.prepare_weights(W))
    split = cpu.conv1d(X, cpu.prepare_weights(W, plan=plan))
    error_direct = np.linalg.norm(direct - exact) / np.linalg.norm(exact)
    error_split = np.linalg.norm(split - exact) / np.linalg.norm(exact)
    assert error_split < factor * max(error_direct, 2e-7)
    assert error_split < 1.5e-6  # ~25 float32 units of roundoff, whatever the BLAS


def test_split_plan_follows_the_cost_model():
    # K = 11: Toom-4 runs 7 leaves of 3 taps over a quarter of the frames (0.48 of the direct
    # form); two Karatsuba splits 9 (0.61); Toom-4 twice would cut more but holds 4.5x W.
    assert fast_fir.work_fraction(11, (4,)) == pytest.approx(21 / 44)
    assert fast_fir.work_fraction(11, (2, 2)) == pytest.approx(27 / 44)
    assert fast_fir.split_plan(11, 431) == (4,)
    assert fast_fir.split_plan(11, 100_000) == (4,)
    assert fast_fir.leaf_weights(11, (4, 4)) > fast_fir.MAX_LEAF_WEIGHTS
    # Leaves must keep MIN_LEAF_FRAMES output frames: fewer phases for shorter inputs.
    assert fast_fir.split_plan(11, 10 + 4 * fast_fir.MIN_LEAF_FRAMES) == (4,)
    assert fast_fir.split_plan(11, 10 + 3 * fast_fir.MIN_LEAF_FRAMES) == (3,)
    assert fast_fir.split_plan(11, 10 + 2 * fast_fir.MIN_LEAF_FRAMES) == (2,)
    assert fast_fir.split_plan(11, 10 + fast_fir.MIN_LEAF_FRAMES) == ()
    # K = 3: Karatsuba alone saves nothing (3 -> 2 taps), Toom-3 does (5 leaves of one tap).
    assert fast_fir.split_plan(3, 2 + 3 * fast_fir.MIN_LEAF_FRAMES) == (3,)
    assert fast_fir.split_plan(3, 2 + 2 * fast_fir.MIN_LEAF_FRAMES) == ()
    assert fast_fir.split_plan(1, 10_000) == ()
    assert isinstance(cpu.prepare_weights(np.ones((2, 2, 1)), frames=10_000), cpu.ConvWeights)


@settings(max_examples=20, deadline=None)
@given(B=st.integers(1, 2), C=st.integers(1, 4), N=st.integers(1, 5), K=st.integers(2, 5),
       extra=st.integers(0, 6), alpha=st.sampled_from([0.0, 0.5]), form=st.sampled_from(["nxn", "kernel"]),
       seed=st.integers(0, 1000))
def test_objective_gradient_through_the_split(B, C, N, K, extra, alpha, form, seed):
    """The whole objective, with the split chosen by the objective itself, against finite differences."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast_fir, "MIN_LEAF_FRAMES", 1)  # let these tiny lengths split
        _check_objective_through_the_split(B, C, N, K, extra, alpha, form, seed)


def _check_objective_through_the_split(B, C, N, K, extra, alpha, form, seed):
    rng = np.random.default_rng(seed)
    T = K + extra
    W = random_filters(N, C, K, seed=seed, dtype=np.float64)
    content = rng.random((B, C, T))
    styles = [rng.random((C, K + 3))]
    obj = StyleTransferObjective(cpu, W, content, styles, alpha=alpha, gram_form=form, dtype=np.float64)
    assert isinstance(obj.W, fast_fir.SplitWeights) == (fast_fir.split_plan(K, T) != ())
    reference = StyleTransferObjective(ref, W, content, styles, alpha=alpha, gram_form=form, dtype=np.float64)
    X = rng.random((B, C, T)) + 0.5
    loss, grad = obj(X)
    loss_ref, grad_ref = reference(X)
    assert loss == pytest.approx(loss_ref, rel=1e-10)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-8, atol=1e-10)
    assert_gradient(grad, finite_difference(lambda x: obj(x)[0], X))
