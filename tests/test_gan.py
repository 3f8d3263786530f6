"""MelGAN-VC's pieces: new layers, spectral norm, the three networks and a whole training step,
every gradient against central finite differences in float64."""

import copy

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from test_gradients import assert_gradient, finite_difference
from test_nn_layers import check_layer

from nstaudio.errors import ParameterError
from nstaudio.nn import gan_losses, spectral_norm
from nstaudio.nn.layers import Dense, LeakyReLU, Tanh, Upsample1d
from nstaudio.nn.melgan import GanArchitecture
from nstaudio.nn.trainers.gan import (
    LOSSES,
    GanWeights,
    assemble,
    critic_loss,
    generator_loss,
    identity_step,
    thirds,
    train_networks,
)

from conftest import finish_counting

TINY = GanArchitecture(n_mels=3, frames=4, channels=2, critic_channels=2, embedding=2)


@settings(max_examples=20, deadline=None)
@given(B=st.integers(1, 3), C=st.integers(1, 4), T=st.integers(1, 6), seed=st.integers(0, 99))
def test_activation_and_upsampling_gradients(B, C, T, seed):
    x = np.random.default_rng(seed).standard_normal((B, C, T))
    x[np.abs(x) < 1e-3] = 0.5  # away from LeakyReLU's kink
    for layer in (LeakyReLU(0.2), Tanh(), Upsample1d(2), Upsample1d(3)):
        check_layer(layer, {}, x)


def test_leaky_relu_and_upsampling_values():
    x = np.array([[[-1.0, 2.0]]])
    np.testing.assert_array_equal(LeakyReLU(0.2).forward({}, x)[0], [[[-0.2, 2.0]]])
    np.testing.assert_array_equal(Upsample1d(2).forward({}, x)[0], [[[-1.0, -1.0, 2.0, 2.0]]])


@settings(max_examples=20, deadline=None)
@given(B=st.integers(1, 3), shape=st.lists(st.integers(1, 4), min_size=1, max_size=2), out=st.integers(1, 4),
       seed=st.integers(0, 99))
def test_dense_gradients(B, shape, out, seed):
    rng = np.random.default_rng(seed)
    layer = Dense(int(np.prod(shape)), out)
    params = {name: a.astype(np.float64) for name, a in layer.init_params(rng).items()}
    params["b"] = rng.standard_normal(out)
    check_layer(layer, params, rng.standard_normal((B, *shape)))


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=3), seed=st.integers(0, 99))
def test_spectral_norm_gradient_with_its_vectors_held(shape, seed):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal(shape)
    u, v = spectral_norm.power_iteration(W, rng.standard_normal(shape[0]))
    W_bar, cache = spectral_norm.normalize(W, u, v)
    R = rng.standard_normal(W.shape)
    dW = spectral_norm.normalize_backward(cache, R)
    assert_gradient(dW, finite_difference(lambda w: np.sum(spectral_norm.normalize(w, u, v)[0] * R), W.copy()))


def test_power_iteration_finds_the_largest_singular_value():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((6, 2, 5))
    state = spectral_norm.init_state(W, rng)
    for _ in range(200):
        state["u"], state["v"] = spectral_norm.power_iteration(W, state["u"])
    W_bar, _ = spectral_norm.normalize(W, state["u"], state["v"])
    assert np.linalg.svd(W_bar.reshape(6, -1), compute_uv=False)[0] == pytest.approx(1.0, rel=1e-6)


def _float64(tree):
    return {layer: {name: np.asarray(a, dtype=np.float64) for name, a in values.items()} for layer, values in tree.items()}


def _networks(seed=0):
    rng = np.random.default_rng(seed)
    nets = TINY.networks()
    params, state = {}, {}
    for net in nets:
        p, s = net.init_params(rng)
        params.update(_float64(p))
        state.update(_float64(s))
    for layer, values in params.items():  # non-trivial BatchNorm parameters and biases
        for name, a in values.items():
            if name in ("gamma", "beta", "b"):
                values[name] = a + 0.3 * rng.standard_normal(a.shape)
    return nets, params, state


def _check_parameters(loss, params, grads, layers):
    for layer in layers:
        for name, g in grads[layer].items():
            def f(value, layer=layer, name=name):
                return loss({**params, layer: {**params[layer], name: value}})
            assert g.shape == params[layer][name].shape, (layer, name)
            assert_gradient(g, finite_difference(f, params[layer][name].copy()))


@pytest.mark.parametrize("which", [0, 1, 2])
def test_network_gradients(which):
    nets, params, state = _networks()
    net = nets[which]
    rng = np.random.default_rng(which)
    x = rng.uniform(-1, 1, (3, TINY.n_mels, 3 * TINY.frames if which == 2 else TINY.frames))
    y, cache = net.forward(params, state, x)
    R = rng.standard_normal(y.shape)
    dx, grads = net.backward(params, cache, R)
    assert sorted(grads) == sorted(net.layer_names())

    def loss(p, v=x):
        return float(np.sum(net.forward(p, state, v)[0] * R))
    assert_gradient(dx, finite_difference(lambda v: loss(params, v), x.copy()))
    _check_parameters(loss, params, grads, grads)


def test_eval_mode_uses_running_statistics():
    nets, params, state = _networks()
    x = np.random.default_rng(0).uniform(-1, 1, (2, TINY.n_mels, TINY.frames))
    one = nets[0].forward(params, state, x[:1], training=False)[0]
    both = nets[0].forward(params, state, x, training=False)[0]
    np.testing.assert_allclose(one, both[:1], rtol=1e-12)


@pytest.mark.parametrize("max_macs", [1, 40, 10 ** 9])
def test_generator_in_parts_is_its_forward(max_macs):
    """Inference with each block's product cut into groups of output channels (a stream's pieces): the
    same output, a stop after each group, and training refused (its cache would be incomplete)."""
    nets, params, state = _networks()
    generator = nets[0]
    x = np.random.default_rng(1).uniform(-1, 1, (2, TINY.n_mels, TINY.frames))
    whole = generator.forward(params, state, x, training=False)[0]
    (y, cache), stops = finish_counting(generator.forward_in_pieces(params, state, x, training=False,
                                                                    max_macs=max_macs))
    np.testing.assert_allclose(y, whole, rtol=1e-12, atol=1e-15)
    assert cache is None
    blocks = len(generator.blocks)
    if max_macs == 1:  # every output channel its own product, after the im2col its groups share
        assert stops == (blocks - 1) + sum(block.layer.out_channels for block in generator.blocks)
    elif max_macs == 10 ** 9:  # one product a block: a stop between blocks, as forward_in_pieces without parts
        assert stops == blocks - 1
    with pytest.raises(ParameterError, match="inference only"):
        next(generator.forward_in_pieces(params, state, x, training=True, max_macs=max_macs))
    with pytest.raises(ParameterError, match="max_macs"):
        next(generator.forward_in_pieces(params, state, x, training=False, max_macs=0))


def test_thirds_and_assemble_are_inverse():
    x = np.arange(2 * 3 * 12.0).reshape(2, 3, 12)
    parts = thirds(x, 4)
    assert parts.shape == (6, 3, 4)
    np.testing.assert_array_equal(parts[2:4], x[:, :, 4:8])
    np.testing.assert_array_equal(assemble(parts, 2), x)


@settings(max_examples=20, deadline=None)
@given(B=st.integers(1, 3), D=st.integers(1, 4), seed=st.integers(0, 99), scale=st.sampled_from([0.3, 3.0]))
def test_loss_gradients(B, D, seed, scale):
    rng = np.random.default_rng(seed)
    real, fake = rng.standard_normal((B, 1)) * 2, rng.standard_normal((B, 1)) * 2
    value, d_real, d_fake = gan_losses.hinge_critic(real, fake)
    assert_gradient(d_real, finite_difference(lambda r: gan_losses.hinge_critic(r, fake)[0], real.copy()))
    assert_gradient(d_fake, finite_difference(lambda f: gan_losses.hinge_critic(real, f)[0], fake.copy()))
    assert_gradient(gan_losses.generator_adversarial(fake)[1],
                    finite_difference(lambda f: gan_losses.generator_adversarial(f)[0], fake.copy()))
    target = rng.standard_normal((B, D))
    generated = target + rng.choice([-1, 1], (B, D)) * rng.uniform(0.1, 1, (B, D))
    assert_gradient(gan_losses.identity(generated, target)[1],
                    finite_difference(lambda g: gan_losses.identity(g, target)[0], generated.copy()))
    t, t_gen = rng.standard_normal((B, D)) * scale, rng.standard_normal((B, D)) * scale
    _, d_t, d_gen = gan_losses.travel(t, t_gen)
    assert_gradient(d_t, finite_difference(lambda v: gan_losses.travel(v, t_gen)[0], t.copy()))
    assert_gradient(d_gen, finite_difference(lambda v: gan_losses.travel(t, v)[0], t_gen.copy()))
    assert_gradient(gan_losses.siamese_margin(t)[1], finite_difference(lambda v: gan_losses.siamese_margin(v)[0],
                                                                       t.copy()))


def test_loss_values():
    assert gan_losses.hinge_critic(np.array([[2.0], [0.0]]), np.array([[-2.0], [0.5]]))[0] == pytest.approx(
        (0.5 + 0.75) / 2)
    t = np.array([[1.0, 0.0]])
    assert gan_losses.travel(t, t)[0] == pytest.approx(-1.0)
    assert gan_losses.travel(t, -t)[0] == pytest.approx(2.0 + 1.0)
    assert gan_losses.siamese_margin(t)[0] == pytest.approx(1.0)
    assert gan_losses.siamese_margin(3 * t)[0] == 0.0


def _crops(seed):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, (3, TINY.n_mels, 3 * TINY.frames)) for _ in range(2))


def test_generator_step_gradient_through_the_critic():
    """The whole generator and siamese loss, every parameter: the adversarial term's gradient
    flows through the (unchanged) critic, TraVeL's through the siamese network."""
    nets, params, state = _networks(1)
    a, b = _crops(2)
    weights = GanWeights()
    parts, grads, fake = generator_loss(nets, params, state, a, b, weights)
    assert fake.shape == a.shape
    assert sorted(grads) == sorted(nets[0].layer_names() + nets[1].layer_names())
    assert parts["total"] == pytest.approx(parts["generator"] + 0.5 * parts["identity"] + 10 * parts["travel"])

    def loss(p):
        return generator_loss(nets, p, state, a, b, weights)[0]["total"]
    _check_parameters(loss, params, grads, grads)


def test_critic_step_gradient():
    nets, params, state = _networks(3)
    a, b = _crops(4)
    value, grads = critic_loss(nets, params, state, a, b)
    assert sorted(grads) == sorted(nets[2].layer_names())
    _check_parameters(lambda p: critic_loss(nets, p, state, a, b)[0], params, grads, grads)


def _domains(seed):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, 40)
    content = [np.clip(np.sin(6 * t + k)[None] * rng.uniform(0.2, 1, (TINY.n_mels, 1)), -1, 1) for k in range(3)]
    style = [np.clip(rng.uniform(-1, 1, (TINY.n_mels, 40)), -1, 1) for _ in range(2)]
    return content, style


@pytest.mark.parametrize("every, warmup", [(3, 0), (4, 0), (2, 3), (3, 3)])
def test_training_runs_and_resumes_exactly(every, warmup):
    """Resumed at steps 3, 6 (between generator steps) and 4, 8 (right before one), and with a
    warm-up of 3 identity steps inside it (2) and right after it (3, 6): Adam's bias correction must
    count each network's own updates."""
    content, style = _domains(0)
    kwargs = dict(batch_size=2, seed=5, checkpoint_every=every, identity_warmup=warmup)
    saved = []
    params, state, history = train_networks(content, style, TINY, steps=9, checkpoint=saved.append, **kwargs)
    assert history.shape == (9, 4) and np.all(np.isfinite(history)) and len(saved) == 8 // every
    for checkpoint in saved:
        resumed = train_networks(content, style, TINY, steps=9, resume=checkpoint, **kwargs)
        np.testing.assert_array_equal(resumed[2], history)
        for tree, resumed_tree in ((params, resumed[0]), (state, resumed[1])):
            for layer, values in tree.items():
                for name, a in values.items():
                    np.testing.assert_array_equal(resumed_tree[layer][name], a)


def test_identity_warmup_trains_the_generator_alone_toward_its_input():
    """The warm-up's steps move only the generator's weights, record only the identity loss, and
    bring that loss down; the adversarial steps after it train all three networks."""
    content, style = _domains(1)
    nets = TINY.networks()
    init_rng = np.random.default_rng(int(np.random.default_rng(2).integers(2**31)))  # train_networks' start
    start, start_state = {}, {}
    for net in nets:
        p, s = net.init_params(init_rng)
        start.update(p)
        start_state.update(s)
    params, state, history = train_networks(content, style, TINY, steps=40, batch_size=2, seed=2,
                                            learning_rate=1e-2, identity_warmup=40)
    assert np.all(history[:, [0, 1, 3]] == 0) and np.all(history[:, 2] > 0)
    crops = np.stack([s[:, :3 * TINY.frames] for s in style]).astype(np.float32)
    before = identity_step(nets[0], start, copy.deepcopy(start_state), crops)[0]
    after = identity_step(nets[0], params, copy.deepcopy(state), crops)[0]
    assert after < 0.8 * before, (before, after)
    for net, moved in zip(nets, (True, False, False)):
        for layer in net.layer_names():
            for name, a in params[layer].items():
                assert np.array_equal(a, start[layer][name]) != moved, (layer, name)
    _, _, history = train_networks(content, style, TINY, steps=6, batch_size=2, seed=2, identity_warmup=2)
    assert np.all(history[:2, [0, 1, 3]] == 0) and np.all(history[2:, 1] != 0)
    with pytest.raises(ParameterError, match="identity_warmup"):
        train_networks(content, style, TINY, steps=2, identity_warmup=-1)


def test_architecture_checks_its_fields():
    with pytest.raises(ParameterError, match="multiple of 4"):
        GanArchitecture(frames=10)
    with pytest.raises(ParameterError, match="unknown architecture field"):
        GanArchitecture.from_dict({**GanArchitecture().to_dict(), "layers": 3})
    assert GanArchitecture.from_dict(GanArchitecture().to_dict()) == GanArchitecture()
    assert GanArchitecture.HISTORY_COLUMNS == len(LOSSES)  # what a checkpoint's reader holds a history to
    shapes = GanArchitecture().array_shapes()
    assert shapes["params"]["critic.dense"]["W"] == (1, 512 * 18)
    assert shapes["state"]["sn_gen.enc0"]["v"] == (192 * 3,)
