"""The feedforward toolkit's layers: every backward against central finite differences in float64."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from test_gradients import assert_gradient, finite_difference

from nstaudio.nn.layers import BatchNorm1d, Conv1d, ConvTranspose1d, ReLU, gram, gram_backward
from nstaudio.nn.losses import gram_factor, gram_mse, mse
from nstaudio.nn.optim import Adam


def check_layer(layer, params, x, state=None):
    """Compare the analytic gradients of ``sum(forward(x) * R)`` with central differences."""
    forward = (lambda p, v: layer.forward(p, v, state)) if state is not None else layer.forward
    y, cache = forward(params, x)
    R = np.random.default_rng(0).standard_normal(y.shape)
    dx, grads = layer.backward(params, cache, R)
    assert dx.shape == x.shape
    assert_gradient(dx, finite_difference(lambda v: np.sum(forward(params, v)[0] * R), x.copy()))
    for name, g in grads.items():
        def f(value, name=name):
            return np.sum(forward({**params, name: value}, x)[0] * R)
        assert g.shape == params[name].shape
        assert_gradient(g, finite_difference(f, params[name].copy()))


conv_shapes = st.fixed_dictionaries({
    "B": st.integers(1, 2), "C_in": st.integers(1, 3), "C_out": st.integers(1, 3), "K": st.integers(1, 4),
    "stride": st.integers(1, 3), "padding": st.integers(0, 2), "extra": st.integers(0, 5),
})


def direct_conv1d(W, b, x, stride, padding):
    """The docstring's definition, one output at a time."""
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    C_out, C_in, K = W.shape
    T_out = (x_pad.shape[2] - K) // stride + 1
    y = np.empty((x.shape[0], C_out, T_out))
    for i, o, t in np.ndindex(*y.shape):
        y[i, o, t] = b[o] + np.sum(W[o] * x_pad[i, :, t * stride:t * stride + K])
    return y


def direct_conv_transpose1d(W, b, x, stride, padding, output_padding):
    """The docstring's definition: every input frame scatters W[:, :, k] to ``t * stride + k``."""
    C_in, C_out, K = W.shape
    B, _, T = x.shape
    full = np.zeros((B, C_out, (T - 1) * stride + K + output_padding))
    for i, c, t, k in np.ndindex(B, C_in, T, K):
        full[i, :, t * stride + k] += W[c, :, k] * x[i, c, t]
    return full[:, :, padding:full.shape[2] - padding] + b[None, :, None]


@settings(max_examples=25, deadline=None)
@given(p=conv_shapes, output_padding=st.integers(0, 2))
def test_convolutions_match_their_definitions(p, output_padding):
    rng = np.random.default_rng(p["extra"])
    W, b = rng.standard_normal((p["C_out"], p["C_in"], p["K"])), rng.standard_normal(p["C_out"])
    T = max(1, p["K"] - 2 * p["padding"]) + p["extra"]
    x = rng.standard_normal((p["B"], p["C_in"], T))
    conv = Conv1d(p["C_in"], p["C_out"], p["K"], stride=p["stride"], padding=p["padding"])
    np.testing.assert_allclose(conv.forward({"W": W, "b": b}, x)[0], direct_conv1d(W, b, x, p["stride"], p["padding"]),
                               rtol=1e-12, atol=1e-12)
    output_padding = min(output_padding, p["stride"] - 1)
    transposed = ConvTranspose1d(p["C_out"], p["C_in"], p["K"], stride=p["stride"], padding=p["padding"],
                                 output_padding=output_padding)
    z = rng.standard_normal((p["B"], p["C_out"], 1 + p["extra"]))
    c = rng.standard_normal(p["C_in"])
    if transposed.output_length(z.shape[2]) >= 1:
        np.testing.assert_allclose(transposed.forward({"W": W, "b": c}, z)[0],
                                   direct_conv_transpose1d(W, c, z, p["stride"], p["padding"], output_padding),
                                   rtol=1e-12, atol=1e-12)


def test_float32_layers_stay_float32():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 12)).astype(np.float32)
    for layer in (Conv1d(3, 4, 3, stride=2, padding=1), ConvTranspose1d(3, 4, 3, stride=2, padding=1,
                                                                         output_padding=1)):
        params = layer.init_params(rng)
        y, cache = layer.forward(params, x)
        dx, grads = layer.backward(params, cache, np.ones_like(y))
        assert y.dtype == dx.dtype == np.float32 and dx.shape == x.shape
        assert all(g.dtype == np.float32 for g in grads.values())


@settings(max_examples=25, deadline=None)
@given(p=conv_shapes)
def test_conv1d_gradients(p):
    layer = Conv1d(p["C_in"], p["C_out"], p["K"], stride=p["stride"], padding=p["padding"])
    params = {k: v.astype(np.float64) for k, v in layer.init_params(np.random.default_rng(1)).items()}
    params["b"] = np.random.default_rng(2).standard_normal(p["C_out"])
    T = max(1, p["K"] - 2 * p["padding"]) + p["extra"]
    x = np.random.default_rng(3).standard_normal((p["B"], p["C_in"], T))
    y, _ = layer.forward(params, x)
    assert y.shape == (p["B"], p["C_out"], layer.output_length(T))
    check_layer(layer, params, x)


@settings(max_examples=25, deadline=None)
@given(p=conv_shapes, output_padding=st.integers(0, 2))
def test_conv_transpose1d_gradients_and_adjointness(p, output_padding):
    output_padding = min(output_padding, p["stride"] - 1)
    layer = ConvTranspose1d(p["C_in"], p["C_out"], p["K"], stride=p["stride"], padding=p["padding"],
                            output_padding=output_padding)
    params = {k: v.astype(np.float64) for k, v in layer.init_params(np.random.default_rng(1)).items()}
    T = 1 + p["extra"]
    if layer.output_length(T) < 1:
        return
    x = np.random.default_rng(3).standard_normal((p["B"], p["C_in"], T))
    y, _ = layer.forward(params, x)
    assert y.shape == (p["B"], p["C_out"], layer.output_length(T))
    check_layer(layer, params, x)
    # Without bias it is the adjoint of the strided convolution with the same weights.
    conv = Conv1d(p["C_out"], p["C_in"], p["K"], stride=p["stride"], padding=p["padding"])
    if conv.output_length(y.shape[2]) == T:
        z = np.random.default_rng(4).standard_normal(y.shape)
        conv_params = {"W": params["W"], "b": np.zeros(p["C_in"])}
        no_bias = {"W": params["W"], "b": np.zeros(p["C_out"])}
        lhs = np.sum(conv.forward(conv_params, z)[0] * x)
        rhs = np.sum(z * layer.forward(no_bias, x)[0])
        np.testing.assert_allclose(lhs, rhs, rtol=1e-10)


def test_relu_gradient():
    x = np.random.default_rng(0).standard_normal((2, 3, 5))
    x[np.abs(x) < 0.05] = 0.5  # off the kink
    check_layer(ReLU(), {}, x)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradients(training):
    layer = BatchNorm1d(3)
    layer.training = training
    rng = np.random.default_rng(0)
    params = {"gamma": rng.random(3) + 0.5, "beta": rng.standard_normal(3)}
    state = {"running_mean": rng.standard_normal(3), "running_var": rng.random(3) + 0.5}
    x = rng.standard_normal((2, 3, 4))
    frozen = dict(state)
    check_layer(layer, params, x, state={k: v.copy() for k, v in frozen.items()})


def test_batchnorm_normalises_and_tracks_running_statistics():
    layer = BatchNorm1d(2, momentum=0.5)
    params = layer.init_params(None, np.float64)
    state = layer.init_state(np.float64)
    x = np.random.default_rng(0).standard_normal((4, 2, 6)) * 3 + 1
    y, _ = layer.forward(params, x, state)
    np.testing.assert_allclose(y.mean(axis=(0, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2)), 1, atol=1e-4)
    np.testing.assert_allclose(state["running_mean"], 0.5 * x.mean(axis=(0, 2)))
    layer.training = False
    y_eval, _ = layer.forward(params, x, state)
    expected = (x - state["running_mean"][None, :, None]) / np.sqrt(state["running_var"][None, :, None] + 1e-5)
    np.testing.assert_allclose(y_eval, expected)


def test_gram_gradient():
    F = np.random.default_rng(0).standard_normal((2, 3, 5))
    R = np.random.default_rng(1).standard_normal((2, 3, 3))
    G, cache = gram(F)
    np.testing.assert_allclose(G[1], F[1] @ F[1].T / 5)
    assert_gradient(gram_backward(cache, R), finite_difference(lambda f: np.sum(gram(f)[0] * R), F.copy()))


def test_mse_gradient():
    a, b = np.random.default_rng(0).standard_normal((2, 3, 4))
    value, grad = mse(a, b)
    assert value == pytest.approx(np.mean((a - b) ** 2))
    assert_gradient(grad, finite_difference(lambda v: mse(v, b)[0], a.copy()))


@settings(max_examples=25, deadline=None)
@given(B=st.integers(1, 3), C=st.integers(1, 6), T=st.integers(1, 7), Ts=st.integers(1, 9), seed=st.integers(0, 99))
def test_gram_mse_kernel_form_equals_the_direct_form(B, C, T, Ts, seed):
    """Value and gradient of the kernel form against MSE of the formed Gram matrices, and finite differences."""
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((B, C, T))
    S = rng.standard_normal((1, C, Ts))
    G = gram(S)[0][0]
    L, squared_norm = gram_factor(G)
    assert L.shape[1] <= min(C, Ts)
    np.testing.assert_allclose(L @ L.T, G, atol=1e-10)
    value, dF = gram_mse(F, L, squared_norm)
    G_F, cache = gram(F)
    expected, dG = mse(G_F, np.broadcast_to(G, G_F.shape))
    assert value == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert_gradient(dF, gram_backward(cache, dG))
    assert_gradient(dF, finite_difference(lambda f: gram_mse(f, L, squared_norm)[0], F.copy()))


def test_gram_mse_in_float32_keeps_float32():
    rng = np.random.default_rng(0)
    F = rng.random((4, 1025, 64), dtype=np.float32)
    L, squared_norm = gram_factor(gram(rng.random((1, 1025, 172), dtype=np.float32))[0][0])
    value, dF = gram_mse(F, L, squared_norm)
    G_F, cache = gram(F.astype(np.float64))
    expected, dG = mse(G_F, np.broadcast_to(L.astype(np.float64) @ L.T.astype(np.float64), G_F.shape))
    assert dF.dtype == np.float32 and value == pytest.approx(expected, rel=1e-4)
    np.testing.assert_allclose(dF, gram_backward(cache, dG), rtol=1e-3, atol=1e-3 * np.abs(dF).max())


def test_adam_with_weight_decay_matches_the_update_rule():
    p = {"w": np.array([1.0, -2.0])}
    g = {"w": np.array([0.5, 0.5])}
    opt = Adam(lr=0.1, weight_decay=0.1)
    opt.step(p, g)
    # first step: m_hat = g', v_hat = g'^2, so the step is lr * sign(g') (up to eps)
    g_decayed = np.array([0.5 + 0.1, 0.5 - 0.2])
    np.testing.assert_allclose(p["w"], np.array([1.0, -2.0]) - 0.1 * np.sign(g_decayed), atol=1e-6)


def test_adam_fits_a_tiny_convnet():
    """Overfit a tiny batch: Conv1d + ReLU + ConvTranspose1d learn to reproduce their input."""
    rng = np.random.default_rng(0)
    enc = Conv1d(4, 32, 3, stride=2, padding=1)
    dec = ConvTranspose1d(32, 4, 3, stride=2, padding=1, output_padding=1)
    relu = ReLU()
    params = {"enc": enc.init_params(rng, np.float64), "dec": dec.init_params(rng, np.float64)}
    opts = {name: Adam(lr=1e-2) for name in params}
    x = rng.random((3, 4, 8))
    first = None
    for _ in range(1000):
        h, c1 = enc.forward(params["enc"], x)
        a, c2 = relu.forward({}, h)
        y, c3 = dec.forward(params["dec"], a)
        loss, dy = mse(y, x)
        first = loss if first is None else first
        da, g_dec = dec.backward(params["dec"], c3, dy)
        dh, _ = relu.backward({}, c2, da)
        _, g_enc = enc.backward(params["enc"], c1, dh)
        opts["dec"].step(params["dec"], g_dec)
        opts["enc"].step(params["enc"], g_enc)
    assert loss < 1e-3 * first, (first, loss)


def direct_causal_conv1d(W, b, x, stride):
    """Output ``t`` = ``b + sum_k W[:, :, k] x[t*stride + k - (K - 1)]``, zeros before the input."""
    K = W.shape[2]
    x_pad = np.pad(x, ((0, 0), (0, 0), (K - 1, 0)))
    T_out = (x.shape[2] - 1) // stride + 1
    y = np.empty((x.shape[0], W.shape[0], T_out))
    for i, o, t in np.ndindex(*y.shape):
        y[i, o, t] = b[o] + np.sum(W[o] * x_pad[i, :, t * stride:t * stride + K])
    return y


def direct_causal_conv_transpose1d(W, b, x, stride):
    """Every input frame scatters ``W[:, :, k]`` to ``t*stride + k``; the first ``T*stride`` frames kept."""
    full = direct_conv_transpose1d(W, np.zeros(W.shape[1]), x, stride, 0, 0)
    length = x.shape[2] * stride
    full = np.pad(full, ((0, 0), (0, 0), (0, max(0, length - full.shape[2]))))
    return full[:, :, :length] + b[None, :, None]


@settings(max_examples=25, deadline=None)
@given(p=conv_shapes)
def test_causal_convolutions_match_their_definitions_gradients_and_see_no_later_frame(p):
    rng = np.random.default_rng(p["extra"])
    T = 1 + p["extra"]
    conv = Conv1d(p["C_in"], p["C_out"], p["K"], stride=p["stride"], causal=True)
    transposed = ConvTranspose1d(p["C_out"], p["C_in"], p["K"], stride=p["stride"], causal=True)
    W, b, c = rng.standard_normal((p["C_out"], p["C_in"], p["K"])), rng.standard_normal(p["C_out"]), \
        rng.standard_normal(p["C_in"])
    x = rng.standard_normal((p["B"], p["C_in"], T))
    y = conv.forward({"W": W, "b": b}, x)[0]
    np.testing.assert_allclose(y, direct_causal_conv1d(W, b, x, p["stride"]), rtol=1e-12, atol=1e-12)
    z = transposed.forward({"W": W, "b": c}, y)[0]
    np.testing.assert_allclose(z, direct_causal_conv_transpose1d(W, c, y, p["stride"]), rtol=1e-12, atol=1e-12)
    # a change at frame T - 1 moves no earlier output frame of the pair
    later = x.copy()
    later[:, :, -1] += 1.0
    z_later = transposed.forward({"W": W, "b": c}, conv.forward({"W": W, "b": b}, later)[0])[0]
    first_touched = (T - 1) // p["stride"] * p["stride"]  # the frame the strided pair first places it at
    np.testing.assert_allclose(z_later[:, :, :first_touched], z[:, :, :first_touched], atol=1e-12)
    check_layer(conv, {"W": W, "b": b}, x)
    check_layer(transposed, {"W": W, "b": c}, y)
