"""Hand-written gradients against central finite differences, in float64, on shapes hypothesis draws."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from nstaudio.features import random_filters
from nstaudio.kernels import cpu, numpy_backend as ref
from nstaudio.objective import StyleTransferObjective, choose_gram_form

EPS = 1e-6


def finite_difference(f, x, eps=EPS):
    """Central differences of the scalar function f at every element of x."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        up = f(x)
        x[idx] = old - eps
        down = f(x)
        x[idx] = old
        grad[idx] = (up - down) / (2 * eps)
    return grad


def assert_gradient(analytic, numeric):
    scale = max(1.0, np.max(np.abs(numeric)))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6 * scale)


problem = st.fixed_dictionaries({
    "B": st.integers(1, 2), "C": st.integers(1, 5), "N": st.integers(1, 6), "K": st.integers(1, 3),
    "extra": st.integers(0, 4), "Ts": st.lists(st.integers(0, 5), min_size=1, max_size=2),
    "alpha": st.sampled_from([0.0, 0.05, 1.0]), "form": st.sampled_from(["nxn", "kernel"]),
    "backend": st.sampled_from([ref, cpu]), "seed": st.integers(0, 1000),
    "temporal": st.sampled_from([0.0, 0.7]), "spectral": st.sampled_from([0.0, 1.3]),
})


@settings(max_examples=40, deadline=None)
@given(p=problem)
def test_full_objective_gradient(p):
    rng = np.random.default_rng(p["seed"])
    C, K = p["C"], p["K"]
    T = K + p["extra"]
    W = random_filters(p["N"], C, K, seed=p["seed"], dtype=np.float64)
    content = rng.random((p["B"], C, T))
    styles = [rng.random((C, K + ts)) for ts in p["Ts"]]
    weights = list(rng.random(len(styles)) + 0.1)
    obj = StyleTransferObjective(p["backend"], W, content, styles, style_weights=weights, alpha=p["alpha"],
                                 gram_form=p["form"], dtype=np.float64, temporal_weight=p["temporal"],
                                 spectral_weight=p["spectral"])
    # Start away from ReLU kinks: points where a pre-activation is ~0 make central differences meaningless.
    X = rng.random((p["B"], C, T)) + 0.5
    loss, grad = obj(X)
    assert np.isfinite(loss) and grad.shape == X.shape
    assert_gradient(grad, finite_difference(lambda x: obj(x)[0], X))


@settings(max_examples=25, deadline=None)
@given(C=st.integers(1, 6), N=st.integers(1, 6), K=st.integers(1, 4), extra=st.integers(0, 6))
def test_conv_gradient(C, N, K, extra):
    rng = np.random.default_rng(C * 31 + N * 7 + K)
    X = rng.standard_normal((C, K + extra))
    W = rng.standard_normal((N, C, K))
    dY = rng.standard_normal((N, extra + 1))
    numeric = finite_difference(lambda x: np.sum(ref.conv1d(x, W) * dY), X)
    assert_gradient(ref.conv1d_adjoint(dY, W, X.shape[1]), numeric)


@pytest.mark.parametrize("backend", [ref, cpu], ids=lambda b: b.name)
@settings(max_examples=20, deadline=None)
@given(N=st.integers(1, 6), T=st.integers(1, 6), Ts=st.integers(1, 6), seed=st.integers(0, 100))
def test_style_loss_gradients(backend, N, T, Ts, seed):
    rng = np.random.default_rng(seed)
    F = rng.random((N, T))
    S_hat = rng.random((N, Ts)) / np.sqrt(Ts)
    G_s = S_hat @ S_hat.T
    target_sq = float(np.sum(G_s**2))
    for fn, arg in [(backend.style_loss_nxn, (G_s,)), (backend.style_loss_kernel, (S_hat, target_sq))]:
        _, dF = fn(F.copy(), *arg)
        assert_gradient(dF, finite_difference(lambda f: fn(f.copy(), *arg)[0], F))


@pytest.mark.parametrize("backend", [ref, cpu], ids=lambda b: b.name)
def test_relu_content_gradient(backend):
    rng = np.random.default_rng(5)
    F_pre = rng.standard_normal((4, 6))
    F_pre[np.abs(F_pre) < 0.05] = 0.3  # stay off the kink
    Fc = rng.random((4, 6))
    alpha = 0.7

    def loss(f):
        F, c = backend.relu_content(f.copy(), Fc)
        return alpha * c + np.sum(F)  # sum(F) tests the mask with a style-like upstream gradient of ones

    F, _ = backend.relu_content(F_pre.copy(), Fc)
    analytic = backend.relu_content_backward(F, Fc, np.ones_like(F), alpha)
    assert_gradient(analytic, finite_difference(loss, F_pre))


def test_choose_gram_form_by_cost():
    assert choose_gram_form(4096, 420, 430) == "kernel"
    assert choose_gram_form(4096, 7750, 430) == "nxn"
    assert choose_gram_form(64, 420, 430) == "nxn"


def test_envelope_terms_are_verma_and_smith_s():
    """The temporal term holds the energy per frame to the content's, the spectral term the energy per bin to the styles'."""
    rng = np.random.default_rng(0)
    W = random_filters(3, 4, 2, seed=0, dtype=np.float64)
    content, styles, X = rng.random((1, 4, 6)), [rng.random((4, 5)), rng.random((4, 8))], rng.random((1, 4, 6))
    plain = StyleTransferObjective(ref, W, content, styles, style_weights=[1, 3], dtype=np.float64)
    both = StyleTransferObjective(ref, W, content, styles, style_weights=[1, 3], dtype=np.float64,
                                  temporal_weight=2.0, spectral_weight=5.0)
    temporal = 2.0 * np.sum((X[0].mean(axis=0) - content[0].mean(axis=0)) ** 2)
    spectral = 5.0 * np.sum((X[0].mean(axis=1) - (0.25 * styles[0].mean(axis=1) + 0.75 * styles[1].mean(axis=1))) ** 2)
    assert both(X)[0] == pytest.approx(plain(X)[0] + temporal + spectral, rel=1e-12)
    assert both.last_parts["temporal"] == pytest.approx(temporal) and both.last_parts["spectral"] == pytest.approx(spectral)
    with pytest.raises(Exception, match="temporal_weight needs the content"):
        StyleTransferObjective(ref, W, None, styles, shape=(1, 4, 6), dtype=np.float64, temporal_weight=1.0)


@settings(max_examples=30, deadline=None)
@given(B=st.integers(2, 3), C=st.integers(1, 4), N=st.integers(1, 5), K=st.integers(1, 6),
       extra=st.integers(0, 12), form=st.sampled_from(["nxn", "kernel"]), backend=st.sampled_from([ref, cpu]),
       seed=st.integers(0, 1000))
def test_joined_channels_match_one_objective_per_channel(B, C, N, K, extra, form, backend, seed):
    """Channels convolved end to end give each channel's own loss and gradient (the outputs
    straddling two channels are dropped); the cpu backend's fast FIR split runs on the joined signal."""
    from nstaudio.kernels import fast_fir

    rng = np.random.default_rng(seed)
    T = K + extra
    W = random_filters(N, C, K, seed=seed, dtype=np.float64)
    content = rng.random((B, C, T))
    styles = [rng.random((C, K + 2))]
    args = dict(alpha=0.3, gram_form=form, dtype=np.float64, temporal_weight=0.4, spectral_weight=0.2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast_fir, "MIN_LEAF_FRAMES", 1)  # let these tiny lengths split
        whole = StyleTransferObjective(backend, W, content, styles, **args)
        channels = [StyleTransferObjective(backend, W, content[b:b + 1], styles, **args) for b in range(B)]
        patch.setattr("nstaudio.objective.JOIN_FRAMES", B * T - 1)  # too long to join: one channel at a time
        apart = StyleTransferObjective(backend, W, content, styles, **args)
    assert whole.joined and not channels[0].joined and not apart.joined
    for _ in range(2):  # the joined buffers are reused
        X = rng.random((B, C, T))
        parts = [objective(X[b:b + 1]) for b, objective in enumerate(channels)]
        for objective in (whole, apart):
            loss, grad = objective(X)
            assert loss == pytest.approx(sum(part[0] for part in parts), rel=1e-11)
            np.testing.assert_allclose(grad, np.concatenate([part[1] for part in parts]), rtol=1e-9, atol=1e-12)
