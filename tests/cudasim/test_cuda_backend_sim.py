"""The whole cuda backend module, run under the CUDA simulator with numpy standing in for CuPy.

``nstaudio.kernels.cuda`` uses only the part of CuPy's API that numpy shares (plus
``asnumpy``), so with a stand-in ``cupy`` module its host code (launch configuration,
im2col blocks, GEMM orchestration, the Griffin-Lim loop) runs here end to end, and its
results are compared with the numpy reference and the cpu backend.
"""

import importlib
import sys
import types

import numpy as np
import pytest
from numba import config

import nstaudio as nst
from nstaudio.features import random_filters
from nstaudio.kernels import cpu, cuda_kernels, numpy_backend as ref
from nstaudio.objective import StyleTransferObjective
from nstaudio.spectral import fast_griffin_lim

pytestmark = pytest.mark.skipif(not config.ENABLE_CUDASIM, reason="needs NUMBA_ENABLE_CUDASIM=1")


@pytest.fixture
def cuda(monkeypatch):
    """``nstaudio.kernels.cuda`` imported against a numpy stand-in for CuPy, with tiny thread blocks."""
    fake = types.ModuleType("cupy")
    fake.__dict__.update({k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    fake.asnumpy = np.asarray
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.delitem(sys.modules, "nstaudio.kernels.cuda", raising=False)
    monkeypatch.setattr(cuda_kernels, "THREADS", 16)
    module = importlib.import_module("nstaudio.kernels.cuda")
    yield module
    sys.modules.pop("nstaudio.kernels.cuda", None)


@pytest.mark.parametrize("form", ["nxn", "kernel"])
def test_objective_matches_reference(cuda, form):
    rng = np.random.default_rng(0)
    C, T, N, K = 9, 14, 6, 3
    W = random_filters(N, C, K, seed=1)
    content = rng.random((2, C, T)).astype(np.float32)
    styles = [rng.random((C, 10)).astype(np.float32), rng.random((C, 13)).astype(np.float32)]
    X = rng.random((2, C, T)).astype(np.float32)
    args = dict(style_weights=[1, 2], alpha=0.1, gram_form=form)
    loss_ref, grad_ref = StyleTransferObjective(ref, W, content, styles, **args)(X)
    loss, grad = StyleTransferObjective(cuda, W, content, styles, **args)(X)
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-4)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-4, atol=1e-4 * np.abs(grad_ref).max())


def test_conv_in_several_blocks(cuda, monkeypatch):
    monkeypatch.setattr(cuda, "_BLOCK", 4)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((5, 17)).astype(np.float32)
    W = rng.standard_normal((4, 5, 3)).astype(np.float32)
    Wp = cuda.prepare_weights(W)
    Y = cuda.conv1d(X, Wp)
    np.testing.assert_allclose(Y, ref.conv1d(X, W), rtol=1e-5, atol=1e-5)
    dY = rng.standard_normal(Y.shape).astype(np.float32)
    np.testing.assert_allclose(cuda.conv1d_adjoint(dY, Wp, 17), ref.conv1d_adjoint(dY, W, 17), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("center", [True, False])
def test_griffin_lim_matches_cpu(cuda, center):
    rng = np.random.default_rng(2)
    n_fft, hop, T = 32, 12, 6
    S = rng.random((n_fft // 2 + 1, T)).astype(np.float32)
    angles = np.exp(2j * np.pi * rng.random(S.shape)).astype(np.complex64)
    window = nst.spectral.get_window("hann", n_fft, n_fft)
    seen = []
    opts = dict(window=window, hop_length=hop, center=center, momentum=0.99, n_iter=4)
    y, history = fast_griffin_lim(cuda, S, angles, callback=lambda i, db: seen.append(i), **opts)
    y_cpu, history_cpu = fast_griffin_lim(cpu, S, angles, **opts)
    np.testing.assert_allclose(y, y_cpu, atol=1e-4 * np.abs(y_cpu).max())
    np.testing.assert_allclose(history, history_cpu, atol=0.01)
    assert seen == [1, 2, 3, 4]


def test_timedomain_objective_matches_reference(cuda):
    """The timedomain method's conv layer runs on the cuda backend; value and gradient as the reference's."""
    from nstaudio.methods.timedomain import TimeDomainObjective

    rng = np.random.default_rng(2)
    W = random_filters(5, 3 * 9, 2, seed=3)
    content, style = rng.standard_normal((2, 70)).astype(np.float32), rng.standard_normal(50).astype(np.float32)
    y = rng.standard_normal((2, 70)).astype(np.float32)
    loss_ref, grad_ref = TimeDomainObjective(ref, W, content, [style], frame=16, hop=4, alpha=0.5)(y)
    loss, grad = TimeDomainObjective(cuda, W, content, [style], frame=16, hop=4, alpha=0.5)(y)
    assert isinstance(grad, np.ndarray)
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-4)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-3, atol=1e-4 * np.abs(grad_ref).max())


def test_training_on_the_cuda_backend_matches_cpu(cuda):
    """The trainer's device path (arrays moved to the backend, its window kernels, results back on the host)."""
    from nstaudio.nn.autoencoder import Architecture
    from nstaudio.nn.trainers.lossnet import train_autoencoder
    from nstaudio.nn.trainers.style import train_transformer

    rng = np.random.default_rng(3)
    arch = Architecture(n_bins=3, channels=(4, 3, 2, 2), width=3, stride=2)
    corpus = [rng.random((3, 40)).astype(np.float32), rng.random((3, 24)).astype(np.float32)]
    opts = dict(steps=2, batch_size=2, crop=16, learning_rate=1e-2, seed=5)
    runs = [train_autoencoder(corpus, arch, backend=backend, **opts) for backend in (cpu, cuda)]
    style = rng.random((3, 32)).astype(np.float32)
    runs += [train_transformer(corpus, style, (arch, *runs[0][:2]), backend=backend, alpha=1.0, beta=10.0, **opts)
             for backend in (cpu, cuda)]
    for (p_cpu, s_cpu, h_cpu), (p_gpu, s_gpu, h_gpu) in (runs[:2], runs[2:]):
        np.testing.assert_allclose(h_gpu, h_cpu, rtol=1e-4)
        for tree_cpu, tree_gpu in ((p_cpu, p_gpu), (s_cpu, s_gpu)):
            for layer in tree_cpu:
                for name, a in tree_cpu[layer].items():
                    assert isinstance(tree_gpu[layer][name], np.ndarray)
                    np.testing.assert_allclose(tree_gpu[layer][name], a, rtol=1e-3, atol=1e-5)


def test_gan_training_on_the_cuda_backend_matches_cpu(cuda):
    """MelGAN-VC's networks on the cuda backend: one generator step's gradients and a short run's losses.

    (Parameters after Adam are not compared: a gradient that is rounding residue on one backend
    and exactly 0 on the other becomes a step of +-lr or none.)
    """
    from nstaudio.nn.melgan import GanArchitecture
    from nstaudio.nn.trainers.gan import generator_loss, train_networks

    arch = GanArchitecture(n_mels=6, frames=8, channels=4, critic_channels=4, embedding=3)
    rng = np.random.default_rng(4)
    params, state = {}, {}
    for net in arch.networks():
        p, s = net.init_params(rng)
        params.update(p)
        state.update(s)
    a, b = (rng.uniform(-1, 1, (2, 6, 24)).astype(np.float32) for _ in range(2))
    grads = [generator_loss(arch.networks(backend), params, {k: dict(v) for k, v in state.items()}, a, b)[1]
             for backend in (cpu, cuda)]
    for layer, values in grads[0].items():
        for name, g in values.items():
            np.testing.assert_allclose(grads[1][layer][name], g, rtol=1e-3, atol=1e-5 * max(np.abs(g).max(), 1e-3))
    content = [rng.uniform(-1, 1, (6, 40)).astype(np.float32)]
    style = [rng.uniform(-1, 1, (6, 30)).astype(np.float32)]
    runs = [train_networks(content, style, arch, steps=5, batch_size=2, seed=1, backend=backend)
            for backend in (cpu, cuda)]
    np.testing.assert_allclose(runs[1][2], runs[0][2], rtol=1e-3, atol=1e-5)
    assert all(isinstance(a, np.ndarray) for values in runs[1][0].values() for a in values.values())


def test_expected_objective_matches_reference(cuda):
    from nstaudio.expected import ExpectedStyleTransferObjective, expected_style_targets

    rng = np.random.default_rng(3)
    C, T, K = 7, 13, 3
    content = rng.random((2, C, T)).astype(np.float32)
    styles = [rng.random((C, 10)).astype(np.float32), rng.random((C, 12)).astype(np.float32)]
    X = rng.random((2, C, T)).astype(np.float32)
    results = []
    for backend in (ref, cuda):
        targets = expected_style_targets(backend, styles, width=K, style_weights=[1, 2])
        results.append(ExpectedStyleTransferObjective(backend, content, targets, n_filters=64, alpha=0.2)(X))
    (loss_ref, grad_ref), (loss, grad) = results
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-4)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-4, atol=1e-4 * np.abs(grad_ref).max())
