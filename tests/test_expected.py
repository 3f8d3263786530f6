"""The expected network (nstaudio.expected): its kernel, its gradient, and that it is the random network's expectation."""

import threading

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from test_gradients import assert_gradient, finite_difference

import nstaudio as nst
from nstaudio.errors import ParameterError
from nstaudio.expected import (
    ExpectedStyleTransferObjective,
    band_adjoint,
    band_sum,
    expected_style_targets,
    feature_scale,
    patch_norms,
)
from nstaudio.features import random_filters
from nstaudio.kernels import cpu, numpy_backend as ref
from nstaudio.methods.optimize import initial_state, optimize, starting_point
from nstaudio.objective import StyleTransferObjective

from conftest import SR


def _patches(rng, rows, dims, silent=()):
    P = rng.random((rows, dims)) + 0.05
    P[list(silent)] = 0
    return P


def test_arccos_kernel_is_the_relu_features_expectation():
    """E[relu(w.p) relu(w.q)] over w ~ N(0, I), by Monte Carlo, for patches at many angles."""
    rng = np.random.default_rng(0)
    P = rng.standard_normal((5, 4))
    Q = np.vstack([P[0], -P[1], rng.standard_normal((3, 4))])  # parallel, opposite and arbitrary pairs
    w = rng.standard_normal((400_000, 4))
    features_p, features_q = np.maximum(P @ w.T, 0), np.maximum(Q @ w.T, 0)
    monte_carlo = features_p @ features_q.T / w.shape[0]
    kappa, _, _ = ref.arccos_kernel(P @ Q.T, np.sum(P * P, 1), np.sum(Q * Q, 1))
    np.testing.assert_allclose(kappa, monte_carlo, rtol=0.02, atol=0.005 * np.abs(monte_carlo).max())


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 6), cols=st.integers(1, 6), dims=st.integers(1, 5), seed=st.integers(0, 1000),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_arccos_kernel_cpu_matches_reference(rows, cols, dims, seed, dtype):
    rng = np.random.default_rng(seed)
    P, Q = _patches(rng, rows, dims, silent=[0] if rows > 1 else []), rng.standard_normal((cols, dims))
    args = ((P @ Q.T).astype(dtype), np.sum(P * P, 1).astype(dtype), np.sum(Q * Q, 1).astype(dtype))
    for got, want in zip(cpu.arccos_kernel(*args), ref.arccos_kernel(*args)):
        assert got.dtype == dtype and np.all(np.isfinite(got))
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7)


@settings(max_examples=30, deadline=None)
@given(dims=st.integers(1, 5), seed=st.integers(0, 1000))
def test_arccos_kernel_derivatives(dims, seed):
    """d kappa / d(p.q) and d kappa / d|p|^2 against central differences in float64."""
    rng = np.random.default_rng(seed)
    p, q = rng.standard_normal(dims), rng.standard_normal(dims)
    u, a2, b2 = p @ q, p @ p, q @ q
    if dims > 1 and abs(u) > 0.999 * np.sqrt(a2 * b2):
        return  # at theta = 0 or pi kappa is not differentiable in these coordinates

    def kappa(u, a2):
        return ref.arccos_kernel(np.array([[u]]), np.array([a2]), np.array([b2]))[0][0, 0]

    _, d_u, d_a2 = ref.arccos_kernel(np.array([[u]]), np.array([a2]), np.array([b2]))
    eps = 1e-6 * max(1.0, abs(u))
    if dims > 1:
        assert d_u[0, 0] == pytest.approx((kappa(u + eps, a2) - kappa(u - eps, a2)) / (2 * eps), rel=1e-5, abs=1e-8)
        assert d_a2[0, 0] == pytest.approx((kappa(u, a2 + eps) - kappa(u, a2 - eps)) / (2 * eps), rel=1e-5,
                                           abs=1e-8)


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 6), cols=st.integers(1, 6), width=st.integers(1, 4), seed=st.integers(0, 1000))
def test_band_sum_adjoint(rows, cols, width, seed):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((rows + width - 1, cols + width - 1))
    G = rng.standard_normal((rows, cols))
    assert np.sum(band_sum(np, M, width, rows, cols) * G) == pytest.approx(np.sum(M * band_adjoint(np, G, width)))
    X, Y = rng.standard_normal((3, rows + width - 1)), rng.standard_normal((3, cols + width - 1))
    patches_x = np.stack([X[:, t:t + width].ravel() for t in range(rows)])
    patches_y = np.stack([Y[:, t:t + width].ravel() for t in range(cols)])
    np.testing.assert_allclose(band_sum(np, X.T @ Y, width, rows, cols), patches_x @ patches_y.T, atol=1e-12)
    np.testing.assert_allclose(patch_norms(np, X, width), np.sum(patches_x ** 2, 1), atol=1e-12)


problem = st.fixed_dictionaries({
    "B": st.integers(1, 2), "C": st.integers(1, 5), "K": st.integers(1, 3), "extra": st.integers(0, 4),
    "Ts": st.lists(st.integers(0, 5), min_size=1, max_size=2), "alpha": st.sampled_from([0.0, 0.05, 1.0]),
    "backend": st.sampled_from([ref, cpu]), "seed": st.integers(0, 1000),
    "temporal": st.sampled_from([0.0, 0.7]), "spectral": st.sampled_from([0.0, 1.3]),
})


@settings(max_examples=40, deadline=None)
@given(p=problem)
def test_objective_gradient(p):
    rng = np.random.default_rng(p["seed"])
    C, K = p["C"], p["K"]
    # Patches of one value are all parallel, where |p||q| sin(theta) = sqrt(|p|^2 |q|^2 - (p.q)^2)
    # is the square root of a rounding error (~1e-8 |p||q|), too rough for central differences.
    assume(C * K > 1)
    T = K + p["extra"]
    content = rng.random((p["B"], C, T))
    styles = [rng.random((C, K + ts)) for ts in p["Ts"]]
    targets = expected_style_targets(p["backend"], styles, width=K, style_weights=list(rng.random(len(styles)) + 0.1),
                                     dtype=np.float64)
    obj = ExpectedStyleTransferObjective(p["backend"], content, targets, n_filters=16, alpha=p["alpha"],
                                         dtype=np.float64, temporal_weight=p["temporal"],
                                         spectral_weight=p["spectral"])
    # Away from parallel patches (where kappa is not smooth in the patch): positive noise in
    # more than one dimension.
    X = rng.random((p["B"], C, T)) + 0.5
    loss, grad = obj(X)
    assert np.isfinite(loss) and grad.shape == X.shape
    assert_gradient(grad, finite_difference(lambda x: obj(x)[0], X))


def test_perfect_match_reads_zero():
    """Content = output and style = output: both terms vanish (the targets' constant is right).

    To within the kernel's conditioning at parallel patches, not to float64's epsilon: kappa holds
    ``sqrt(|a|^2 |b|^2 - u^2)``, and a patch's inner product with itself summed in another order
    (a BLAS product against frame sums of energies) is off by an ulp, which the square root makes
    ``sqrt(2 eps) |a| |b|`` (loss 1.5e-8 and gradient 2e-9 here on an AVX-512 OpenBLAS; under 1e-9
    on others by luck of the rounding). A wrong constant would be off by the terms' own size.
    """
    rng = np.random.default_rng(1)
    X = rng.random((1, 6, 12))
    targets = expected_style_targets(ref, [X[0]], width=3, dtype=np.float64)
    obj = ExpectedStyleTransferObjective(ref, X, targets, n_filters=32, alpha=0.5, dtype=np.float64)
    loss, grad = obj(X)
    parallel_patches = 10 * np.sqrt(np.finfo(np.float64).eps)
    assert abs(loss) < parallel_patches * obj.scale ** 2
    assert np.abs(grad).max() < parallel_patches
    # a step away from the match, both read far more than those bounds
    loss, grad = obj(X + 0.1 * rng.random(X.shape))
    assert loss > 1e3 * parallel_patches * obj.scale ** 2 and np.abs(grad).max() > 1e3 * parallel_patches


def test_is_the_random_networks_expectation():
    """With many random filters the random network's loss and gradient approach the expected ones."""
    rng = np.random.default_rng(2)
    C, T, K = 4, 12, 3
    content = rng.random((1, C, T))
    styles = [rng.random((C, 15)), rng.random((C, 10))]
    X = rng.random((1, C, T))
    targets = expected_style_targets(ref, styles, width=K, style_weights=[1, 3], dtype=np.float64)
    gaps = []
    for n_filters in (256, 65536):
        W = random_filters(n_filters, C, K, seed=3, dtype=np.float64)
        random_net = StyleTransferObjective(ref, W, content, styles, style_weights=[1, 3], alpha=0.3,
                                            dtype=np.float64)
        expected_net = ExpectedStyleTransferObjective(ref, content, targets, n_filters=n_filters, alpha=0.3,
                                                      dtype=np.float64)
        (loss_r, grad_r), (loss_e, grad_e) = random_net(X), expected_net(X)
        gaps.append((abs(loss_r / loss_e - 1), np.linalg.norm(grad_r - grad_e) / np.linalg.norm(grad_e)))
    assert gaps[1][0] < 0.01 and gaps[1][1] < 0.03, gaps
    assert gaps[1][0] < gaps[0][0] and gaps[1][1] < gaps[0][1], gaps  # closer with more filters


def test_feature_scale_is_the_filters_variance_times_n():
    W = random_filters(512, 30, 5, seed=0, dtype=np.float64)
    assert 512 * np.var(W) == pytest.approx(feature_scale(512, 30, 5), rel=0.01)


def test_backends_agree_in_float32():
    rng = np.random.default_rng(4)
    content = rng.random((2, 40, 30)).astype(np.float32)
    styles = [rng.random((40, 25)).astype(np.float32)]
    X = rng.random((2, 40, 30)).astype(np.float32)
    results = []
    for backend in (ref, cpu):
        targets = expected_style_targets(backend, styles, width=5)
        results.append(ExpectedStyleTransferObjective(backend, content, targets, n_filters=4096, alpha=0.01,
                                                      spectral_weight=2.0)(X))
    (loss_ref, grad_ref), (loss, grad) = results
    assert loss == pytest.approx(loss_ref, rel=1e-5)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-4, atol=1e-4 * np.abs(grad_ref).max())


def test_two_threads_match_a_serial_run():
    rng = np.random.default_rng(5)
    styles = [rng.random((30, 25)).astype(np.float32)]
    targets = expected_style_targets(cpu, styles, width=5)
    inputs = [rng.random((1, 30, 40 + 9 * i)).astype(np.float32) for i in range(2)]
    objectives = [ExpectedStyleTransferObjective(cpu, x, targets, n_filters=4096) for x in inputs]
    points = [x + rng.random(x.shape).astype(np.float32) for x in inputs]
    serial = [obj(x) for obj, x in zip(objectives, points)]
    together = [None, None]

    def work(i):
        for _ in range(5):
            together[i] = objectives[i](points[i])
    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for (loss, grad), (loss_s, grad_s) in zip(together, serial):
        assert loss == loss_s
        np.testing.assert_array_equal(grad, grad_s)


def test_optimize_lowers_the_loss_from_the_random_networks_start():
    rng = np.random.default_rng(6)
    content = rng.random((1, 33, 40)).astype(np.float32)
    styles = [rng.random((33, 30)).astype(np.float32) * 2]
    _, x0 = initial_state(content.shape, n_filters=8, width=5, init="noise", seed=3)
    np.testing.assert_array_equal(starting_point(content.shape, init="noise", seed=3), x0)
    X, info = optimize(content, styles, network="expected", width=5, iterations=30, seed=3, device="cpu")
    assert info["gram_form"] == "expected" and info["loss"] < 0.5 * info["initial_loss"]
    assert X.shape == content.shape and np.all(np.isfinite(X))


def test_targets_of_one_network_do_not_serve_the_other():
    rng = np.random.default_rng(7)
    content = rng.random((1, 9, 20)).astype(np.float32)
    styles = [rng.random((9, 20)).astype(np.float32)]
    targets = expected_style_targets(cpu, styles, width=3)
    with pytest.raises(ParameterError, match="network='expected'"):
        optimize(content, targets, n_filters=4, width=3, iterations=1)
    with pytest.raises(ParameterError, match="width 3"):
        optimize(content, targets, network="expected", width=5, iterations=1)


def test_stylize_and_analysis_with_the_expected_network(tone):
    sr = SR
    style = np.roll(tone, 100) * 0.5
    y, info = nst.stylize(tone, style, sr, network="expected", iterations=20, device="cpu", return_info=True)
    assert y.shape == tone.shape and np.all(np.isfinite(y)) and info.gram_form == "expected"
    analysis = nst.analyse_style(style, sr, network="expected", device="cpu")
    y2 = nst.stylize(tone, analysis, sr, network="expected", iterations=20, device="cpu")
    np.testing.assert_allclose(y2, y, atol=1e-5)
    with pytest.raises(ParameterError, match="network"):
        nst.stylize(tone, analysis, sr, iterations=20, device="cpu")  # an analysis for the other network


@pytest.mark.parametrize("settings, message", [
    (dict(network="infinite"), "network must be one of"),
    (dict(method="timedomain", network="expected"), "network does not apply to the timedomain method"),
])
def test_bad_network_settings(tone, settings, message):
    with pytest.raises(ParameterError, match=message):
        nst.stylize(tone, tone, SR, **settings)


def test_init_expected_starts_the_random_network_at_the_expected_optimum():
    rng = np.random.default_rng(8)
    content = rng.random((1, 17, 30)).astype(np.float32)
    styles = [rng.random((17, 25)).astype(np.float32) * 2]
    settings = dict(n_filters=64, width=3, iterations=15, seed=2, device="cpu")
    warm, _ = optimize(content, styles, network="expected", **settings)
    W, _ = initial_state(content.shape, n_filters=64, width=3, init="noise", seed=2)
    objective = StyleTransferObjective(cpu, W, content, styles)
    X, info = optimize(content, styles, init="expected", **settings)
    assert info["initial_loss"] == pytest.approx(objective(warm)[0], rel=1e-6)  # started where the expected run ended
    assert info["loss"] <= info["initial_loss"] and np.all(np.isfinite(X))


def test_init_expected_reports_its_warm_start_as_a_stage_of_its_own(tone):
    seen = []
    nst.stylize(tone, tone, SR, n_filters=16, init="expected", iterations=4, phase_iters=2, tolerance=0.0,
                device="cpu", callback=lambda *report: seen.append(report))
    stages = [stage for stage, _, _, _ in seen]
    assert stages == ["warm start"] * 4 + ["optimize"] * 4 + ["phase"] * 2
    assert [step for _, step, _, _ in seen[:8]] == [1, 2, 3, 4] * 2 and {total for _, _, total, _ in seen[:8]} == {4}


@pytest.mark.parametrize("settings, message", [
    (dict(network="expected", init="expected"), "with network='expected' start from noise or the content"),
    (dict(method="timedomain", init="expected"), "init must be one of 'noise', 'content'"),
])
def test_init_expected_where_it_does_not_apply(tone, settings, message):
    with pytest.raises(ParameterError, match=message):
        nst.stylize(tone, tone, SR, **settings)


def test_init_expected_needs_an_analysis_made_for_it(tone):
    analysis = nst.analyse_style(tone, SR, n_filters=16, device="cpu")
    with pytest.raises(ParameterError, match="analyse the style with init='expected'"):
        nst.stylize(tone, analysis, SR, n_filters=16, init="expected", iterations=2, device="cpu")
    analysis = nst.analyse_style(tone, SR, n_filters=16, init="expected", device="cpu")
    y = nst.stylize(tone, analysis, SR, n_filters=16, init="expected", iterations=2, device="cpu")
    np.testing.assert_array_equal(y, nst.stylize(tone, tone, SR, n_filters=16, init="expected", iterations=2,
                                                 device="cpu"))
