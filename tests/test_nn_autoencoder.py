"""The AutoStyle autoencoder: shapes, whole-network gradients, checkpoints."""

import json

import numpy as np
import pytest
from test_gradients import assert_gradient, finite_difference

from nstaudio.errors import ParameterError
from nstaudio.nn.autoencoder import Architecture, Autoencoder
from nstaudio.nn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

TINY = Architecture(n_bins=3, channels=(4, 3, 2, 2), width=3, stride=2)


def test_shapes_and_padding():
    net = Autoencoder(TINY)
    params, state = net.init_params(seed=0)
    x = np.random.default_rng(0).random((2, 3, 32)).astype(np.float32)
    y, acts, _ = net.forward(params, state, x)
    assert y.shape == x.shape and y.dtype == np.float32
    assert [acts[f"enc{i}"].shape for i in range(4)] == [(2, 4, 16), (2, 3, 8), (2, 2, 4), (2, 2, 2)]
    assert net.pad_length(30) == 2 and net.pad_length(32) == 0
    h, partial, caches = net.forward(params, state, x, stop_after="enc1")
    assert len(caches) == 2 and sorted(partial) == ["enc0", "enc1"]
    np.testing.assert_array_equal(h, acts["enc1"])
    with pytest.raises(ParameterError, match="multiple of 16"):
        net.forward(params, state, x[:, :, :30])


@pytest.mark.parametrize("training", [True, False])
def test_a_pass_from_scratch_buffers_equals_a_fresh_pass(training):
    """Reused buffers (inference) give the fresh-array pass, also for a strided view and a second input."""
    from nstaudio.kernels.cpu import Scratch

    net = Autoencoder(TINY)
    net.train(training)
    params, state = net.init_params(seed=3)
    rng = np.random.default_rng(4)
    for layer in params.values():
        for name in layer:
            layer[name] = layer[name] + 0.1 * rng.standard_normal(layer[name].shape).astype(np.float32)
    scratch = Scratch()
    for length in (48, 32):  # the second pass reuses (a prefix of) the first pass's buffers
        x = rng.random((2, 3, length + 5)).astype(np.float32)[:, :, 5:]  # not contiguous
        y, acts, _ = net.forward(params, _copy(state), x, keep_caches=False)
        y_s, acts_s, caches = net.forward(params, _copy(state), x, scratch=scratch)
        assert caches == []
        np.testing.assert_allclose(y_s, y, rtol=1e-5, atol=1e-6)
        for name in acts:
            np.testing.assert_allclose(acts_s[name], acts[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("training", [True, False])
def test_whole_network_gradients(training):
    net = Autoencoder(TINY)
    net.train(training)
    params, state = net.init_params(seed=1, dtype=np.float64)
    rng = np.random.default_rng(2)
    for layer in params.values():  # move BatchNorm off its identity initialisation
        for name in layer:
            layer[name] = layer[name] + 0.1 * rng.standard_normal(layer[name].shape)
    x = rng.random((2, 3, 16))
    R = rng.standard_normal(x.shape)
    R1 = rng.standard_normal((2, 3, 4))

    def loss(p, v):
        frozen = {k: {n: a.copy() for n, a in d.items()} for k, d in state.items()}  # running stats unchanged
        y, acts, _ = net.forward(p, frozen, v)
        return np.sum(y * R) + np.sum(acts["enc1"] * R1)

    y, acts, caches = net.forward(params, {k: {n: a.copy() for n, a in d.items()} for k, d in state.items()}, x)
    dx, grads = net.backward(params, caches, R, {"enc1": R1})
    assert_gradient(dx, finite_difference(lambda v: loss(params, v), x.copy()))
    for layer, name in [("enc0", "W"), ("dec3", "b"), ("bn_enc1", "gamma"), ("dec1", "W")]:
        def f(value, layer=layer, name=name):
            return loss({**params, layer: {**params[layer], name: value}}, x)
        assert_gradient(grads[layer][name], finite_difference(f, params[layer][name].copy()))


def test_only_activation_gradients_reach_the_encoder():
    """A content/style loss on encoder activations alone (no output term) still gives encoder grads."""
    net = Autoencoder(TINY)
    params, state = net.init_params(seed=3, dtype=np.float64)
    x = np.random.default_rng(4).random((1, 3, 16))
    _, acts, caches = net.forward(params, state, x)
    dx, grads = net.backward(params, caches, None, {"enc3": np.ones_like(acts["enc3"])})
    assert dx.shape == x.shape and "enc0" in grads and "dec0" not in grads


def test_checkpoint_round_trip(tmp_path):
    net = Autoencoder(TINY)
    params, state = net.init_params(seed=5)
    path = tmp_path / "net.npz"
    moments = {"enc0": {"W.m": np.ones_like(params["enc0"]["W"]), "W.v": np.full_like(params["enc0"]["W"], 2)}}
    save_checkpoint(path, TINY, params, state, meta={"n_fft": 4, "seed": 5}, moments=moments, history=[3.0, 2.5])
    ckpt = load_checkpoint(path)
    assert ckpt.arch == TINY and ckpt.meta == {"n_fft": 4, "seed": 5}
    for layer in params:
        for name in params[layer]:
            np.testing.assert_array_equal(ckpt.params[layer][name], params[layer][name])
    assert ckpt.state.keys() == state.keys()
    np.testing.assert_array_equal(ckpt.moments["enc0"]["W.v"], moments["enc0"]["W.v"])
    np.testing.assert_array_equal(ckpt.history, [3.0, 2.5])
    # float16 storage halves the file and reads back as float32, rounded to float16
    save_checkpoint(tmp_path / "half.npz", TINY, params, state, dtype=np.float16)
    half = load_checkpoint(tmp_path / "half.npz")
    assert half.params["dec3"]["W"].dtype == np.float32 and not half.moments and half.history is None
    np.testing.assert_array_equal(half.params["dec3"]["W"], params["dec3"]["W"].astype(np.float16))


def test_checkpoint_errors(tmp_path):
    net = Autoencoder(TINY)
    params, state = net.init_params(seed=5)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(CheckpointError, match="no valid header"):
        load_checkpoint(tmp_path / "other.npz")
    header = {"format": "nstaudio-checkpoint", "version": 99, "architecture": TINY.to_dict()}
    np.savez(tmp_path / "future.npz", header=np.frombuffer(json.dumps(header).encode(), np.uint8))
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(tmp_path / "future.npz")
    bigger = Architecture(n_bins=3, channels=(5, 3, 2, 2), width=3, stride=2)
    save_checkpoint(tmp_path / "wrong.npz", bigger, params, state)
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(tmp_path / "wrong.npz")
    header = {"format": "nstaudio-checkpoint", "version": 1, "architecture": TINY.to_dict()}
    np.savez(tmp_path / "ints.npz", header=np.frombuffer(json.dumps(header).encode(), np.uint8),
             **{"params/enc0/W": np.zeros((4, 3, 3), np.int64)})
    with pytest.raises(CheckpointError, match="not floats"):
        load_checkpoint(tmp_path / "ints.npz")


@pytest.mark.parametrize("which", ["autoencoder", "transformer"])
def test_resumed_training_equals_an_uninterrupted_run(which):
    """Stop after a checkpoint, resume from it: the same parameters and losses as one long run."""
    from nstaudio.nn.trainers.lossnet import train_autoencoder
    from nstaudio.nn.trainers.style import train_transformer
    from nstaudio.nn.training import TrainingState

    rng = np.random.default_rng(0)
    corpus = [np.abs(rng.standard_normal((3, 48))).astype(np.float32)]
    arch = Architecture(n_bins=3, channels=(6, 4, 4, 2), width=3, stride=2)
    opts = dict(batch_size=3, crop=16, learning_rate=1e-2, seed=4)
    if which == "autoencoder":
        def train(**kw):
            return train_autoencoder(corpus, arch, **opts, **kw)
    else:
        lp, ls, _ = train_autoencoder(corpus, arch, steps=5, **opts)
        style = np.abs(rng.standard_normal((3, 32))).astype(np.float32)

        def train(**kw):
            return train_transformer(corpus, style, (arch, lp, ls), alpha=1.0, beta=5.0, **opts, **kw)

    saved = []

    def keep(training):  # the arrays are live: copy what the checkpoint would write
        saved.append(TrainingState(_copy(training.params), _copy(training.state), _copy(training.moments),
                                   training.step, training.rng, training.history.copy()))

    params, state, history = train(steps=12, checkpoint=keep, checkpoint_every=5)
    assert [s.step for s in saved] == [5, 10]
    p2, s2, h2 = train(steps=12, resume=saved[0])
    np.testing.assert_array_equal(h2, history)
    for layer in params:
        for name in params[layer]:
            np.testing.assert_array_equal(p2[layer][name], params[layer][name])
    for layer in state:
        np.testing.assert_array_equal(s2[layer]["running_var"], state[layer]["running_var"])
    with pytest.raises(ParameterError, match="already did 10 steps"):
        train(steps=8, resume=saved[1])


def _copy(tree):
    return {k: {n: a.copy() for n, a in v.items()} for k, v in tree.items()}


def test_architecture_is_checked():
    with pytest.raises(ParameterError, match="width must be odd"):
        Architecture(n_bins=3, width=4)
    with pytest.raises(ParameterError, match="channels"):
        Architecture(n_bins=3, channels=(1, 2))


def test_training_reduces_reconstruction_loss_and_is_reproducible():
    from nstaudio.nn.corpus import random_crops
    from nstaudio.nn.trainers.lossnet import train_autoencoder

    rng = np.random.default_rng(0)
    t = np.arange(80)
    corpus = [np.stack([np.sin(0.3 * t + k) + 1 for k in range(3)]).astype(np.float32),
              np.abs(rng.standard_normal((3, 40))).astype(np.float32)]
    arch = Architecture(n_bins=3, channels=(16, 8, 8, 4), width=3, stride=2)
    seen = []
    params, state, history = train_autoencoder(corpus, arch, steps=300, batch_size=4, crop=16, learning_rate=1e-2,
                                               seed=7, callback=lambda i, loss: seen.append(i))
    assert seen == list(range(1, 301))
    assert np.mean(history[-20:]) < 0.2 * np.mean(history[:20]), (history[:5], history[-5:])
    _, _, again = train_autoencoder(corpus, arch, steps=5, batch_size=4, crop=16, learning_rate=1e-2, seed=7)
    np.testing.assert_array_equal(again, history[:5])
    crops = random_crops(corpus, 10, 16, np.random.default_rng(1))
    assert crops.shape == (10, 3, 16)
    with pytest.raises(ParameterError, match="multiple of 16"):
        train_autoencoder(corpus, arch, steps=1, crop=24)
    with pytest.raises(ParameterError, match="no spectrogram"):
        random_crops(corpus, 1, 100, np.random.default_rng(0))


def test_transformer_training_moves_toward_the_style_and_chunking_is_seamless():
    from nstaudio.nn.inference import apply_network
    from nstaudio.nn.layers import gram
    from nstaudio.nn.trainers.lossnet import train_autoencoder
    from nstaudio.nn.trainers.style import style_targets, train_transformer

    rng = np.random.default_rng(0)
    t = np.arange(96)
    content = [np.stack([np.sin(0.2 * t + k) + 1 for k in range(3)]).astype(np.float32)]
    style = np.abs(rng.standard_normal((3, 64))).astype(np.float32) * np.array([[3.0], [0.1], [1.0]], np.float32)
    arch = Architecture(n_bins=3, channels=(8, 8, 4, 4), width=3, stride=2)
    lp, ls, _ = train_autoencoder(content, arch, steps=50, batch_size=4, crop=16, learning_rate=1e-2, seed=1)
    # This toy problem is chaotic: a float32 rounding change in any kernel moves the trajectory after some
    # tens of steps. At lr 1e-2 for 150 steps the loss ratio ranged 0.02-1.1 over seeds; at 3e-2 for 300
    # steps it stayed below 0.38 over 30 seeds (0.07 median), so the assertion tests training, not one path.
    params, state, history = train_transformer(content, style, (arch, lp, ls), steps=300, alpha=1.0, beta=10.0,
                                               batch_size=4, crop=16, learning_rate=3e-2, seed=2)
    assert np.mean(history[-10:]) < 0.5 * np.mean(history[:10]), (history[:3], history[-3:])
    # the stylized content's Gram matrices (on the loss net) are closer to the style's than the content's were
    net = Autoencoder(arch)
    targets = style_targets(net, lp, ls, style, ["enc0"])
    X = content[0][None, :, :96]
    Y = apply_network(arch, params, state, X, chunk=32, overlap=8)
    assert Y.shape == X.shape
    def distance(Z):
        _, acts, _ = net.forward(lp, ls, Z)
        return np.sum((gram(acts["enc0"])[0][0] - targets["enc0"]) ** 2)
    assert distance(Y) < distance(X)
    # With an overlap that covers the receptive field, chunks give exactly the single-pass result.
    chunked = apply_network(arch, params, state, X, chunk=96, overlap=48)
    whole = apply_network(arch, params, state, X, chunk=96 + 96, overlap=48)
    np.testing.assert_allclose(chunked, whole, rtol=1e-4, atol=1e-4)


def test_transformer_loss_gradient():
    """The whole training loss (content, loss-network Grams, the spectrogram's own Gram) against finite differences."""
    from nstaudio.nn.losses import gram_factor
    from nstaudio.nn.trainers.style import SPECTROGRAM, SPECTROGRAM_DELTA, style_targets, transformer_loss

    rng = np.random.default_rng(5)
    loss_model, model = Autoencoder(TINY), Autoencoder(TINY)
    loss_params, loss_state = loss_model.init_params(seed=6, dtype=np.float64)
    params, state = model.init_params(seed=7, dtype=np.float64)
    for tree in (loss_params, params):  # off the zero biases, whose exact zeros would sit on ReLU kinks
        for layer in tree.values():
            for name in layer:
                layer[name] = layer[name] + 0.1 * rng.standard_normal(layer[name].shape)
    loss_model.train(False)
    model.train(False)  # running statistics: the loss is a function of the parameters alone
    x = rng.random((2, 3, 16))
    layers = ("enc0", SPECTROGRAM, SPECTROGRAM_DELTA)
    targets = style_targets(loss_model, loss_params, loss_state, rng.random((3, 16)), layers)
    assert targets[SPECTROGRAM].shape == targets[SPECTROGRAM_DELTA].shape == (3, 3) and targets["enc0"].shape == (4, 4)
    targets = {name: gram_factor(G) for name, G in targets.items()}

    def loss(p):
        return transformer_loss(model, p, state, loss_model, loss_params, loss_state, x, targets, alpha=2.0,
                                beta=3.0, style_layers=layers, content_layer="enc2")[0]

    _, grads = transformer_loss(model, params, state, loss_model, loss_params, loss_state, x, targets, alpha=2.0,
                                beta=3.0, style_layers=layers, content_layer="enc2")
    for layer, name in [("enc0", "W"), ("dec3", "W"), ("dec3", "b"), ("bn_enc1", "beta")]:
        def f(value, layer=layer, name=name):
            return loss({**params, layer: {**params[layer], name: value}})
        assert_gradient(grads[layer][name], finite_difference(f, params[layer][name].copy()))


def test_feedforward_method_shapes_and_errors():
    from nstaudio.methods.feedforward import feedforward

    net = Autoencoder(TINY)
    params, state = net.init_params(seed=0)
    X = np.random.default_rng(0).random((2, 3, 37)).astype(np.float32)  # any length, two channels
    Y = feedforward(X, (TINY, params, state), chunk=32, overlap=8)
    assert Y.shape == X.shape and Y.dtype == np.float32 and np.all(Y >= 0)
    with pytest.raises(ParameterError, match="bins"):
        feedforward(X[:, :2], (TINY, params, state))


def test_training_on_the_numpy_reference_backend_matches_cpu():
    """Same seed, same run: the layers' windows from the numpy reference kernels or the numba ones.

    The gradients of one step agree to float32 rounding, and so do the losses of a 3-step run.
    The parameters after Adam are not compared: Adam divides by sqrt(v), so where the true
    gradient is zero (a conv bias whose channel BatchNorm re-centres) the rounding residue of
    either backend (1e-9 or exactly 0) becomes a step of +-lr or none.
    """
    from nstaudio.kernels import cpu, numpy_backend
    from nstaudio.nn.trainers.lossnet import train_autoencoder

    rng = np.random.default_rng(8)
    corpus = [rng.random((3, 48)).astype(np.float32)]
    params, state = Autoencoder(TINY).init_params(seed=9)
    x = rng.random((2, 3, 16)).astype(np.float32)
    grads = []
    for backend in (numpy_backend, cpu):
        net = Autoencoder(TINY, backend)
        y, _, caches = net.forward(params, {k: dict(v) for k, v in state.items()}, x)
        grads.append(net.backward(params, caches, y - x)[1])
    for layer in grads[0]:
        for name, g in grads[0][layer].items():
            np.testing.assert_allclose(grads[1][layer][name], g, rtol=1e-4, atol=1e-5 * max(np.abs(g).max(), 1e-3))
    opts = dict(steps=3, batch_size=2, crop=16, learning_rate=1e-2, seed=9)
    h_ref = train_autoencoder(corpus, TINY, backend=numpy_backend, **opts)[2]
    h_cpu = train_autoencoder(corpus, TINY, backend=cpu, **opts)[2]
    np.testing.assert_allclose(h_cpu, h_ref, rtol=1e-5)


def test_a_causal_start_keeps_each_taps_offset_in_time():
    """With the centred network's taps on future frames at zero, the causal network that starts from its
    weights computes exactly what it does: nothing is delayed."""
    from nstaudio.nn.autoencoder import causal_start

    centred = Architecture(n_bins=6, channels=(5, 4, 4, 3), width=5, stride=1)
    causal = Architecture(n_bins=6, channels=(5, 4, 4, 3), width=5, stride=1, causal=True)
    net = Autoencoder(centred)
    params, state = net.init_params(seed=2)
    for layer, values in params.items():
        if layer.startswith("enc"):
            values["W"][..., 3:] = 0.0  # taps on later frames (offsets k - 2 > 0)
        elif layer.startswith("dec"):
            values["W"][..., :2] = 0.0  # (offsets 2 - k > 0)
    net.train(False)
    x = np.random.default_rng(0).random((1, 6, 40)).astype(np.float32)
    expected = net.forward(params, state, x, keep_caches=False)[0]
    causal_net = Autoencoder(causal)
    causal_net.train(False)
    got = causal_net.forward(causal_start(params, causal), state, x, keep_caches=False)[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
