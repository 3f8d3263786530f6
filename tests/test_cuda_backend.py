"""The cuda backend (CuPy + numba.cuda) against the numpy reference; needs CuPy and an NVIDIA GPU.

Without them every test here skips, saying what is missing; the kernels themselves are
still exercised on the CPU by the simulator suite (tests/cudasim).
"""

import numpy as np
import pytest

import nstaudio as nst
from nstaudio.features import random_filters
from nstaudio.kernels import cuda_status, numpy_backend as ref
from nstaudio.objective import StyleTransferObjective

reason = cuda_status()
pytestmark = pytest.mark.skipif(reason is not None, reason=f"cuda backend unavailable: {reason}")


@pytest.fixture(scope="module")
def cuda():
    return nst.get_backend("cuda")


@pytest.mark.parametrize("form", ["nxn", "kernel"])
def test_objective_matches_reference(cuda, form):
    rng = np.random.default_rng(0)
    C, T, N, K = 33, 40, 24, 5
    W = random_filters(N, C, K, seed=1)
    content = rng.random((2, C, T)).astype(np.float32)
    styles = [rng.random((C, 30)).astype(np.float32), rng.random((C, 47)).astype(np.float32)]
    X = rng.random((2, C, T)).astype(np.float32)
    args = dict(style_weights=[1, 2], alpha=0.1, gram_form=form)
    loss_ref, grad_ref = StyleTransferObjective(ref, W, content, styles, **args)(X)
    loss, grad = StyleTransferObjective(cuda, W, content, styles, **args)(X)
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-4)
    np.testing.assert_allclose(cuda.to_numpy(grad), grad_ref, rtol=1e-3, atol=1e-3 * np.abs(grad_ref).max())


def test_long_input_uses_several_blocks(cuda, monkeypatch):
    monkeypatch.setattr(cuda, "_BLOCK", 7)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((6, 30)).astype(np.float32)
    W = rng.standard_normal((5, 6, 3)).astype(np.float32)
    Wp = cuda.prepare_weights(W)
    Y = cuda.conv1d(cuda.asarray(X, np.float32), Wp)
    np.testing.assert_allclose(cuda.to_numpy(Y), ref.conv1d(X, W), rtol=1e-4, atol=1e-4)
    dY = rng.standard_normal(Y.shape).astype(np.float32)
    dX = cuda.conv1d_adjoint(cuda.asarray(dY, np.float32), Wp, 30)
    np.testing.assert_allclose(cuda.to_numpy(dX), ref.conv1d_adjoint(dY, W, 30), rtol=1e-4, atol=1e-4)


def test_griffin_lim_matches_cpu(tone):
    S = np.abs(nst.stft(tone, n_fft=512))
    a, ha = nst.griffin_lim(S, n_iter=20, seed=0, device="cpu", return_convergence=True)
    b, hb = nst.griffin_lim(S, n_iter=20, seed=0, device="cuda", return_convergence=True)
    np.testing.assert_allclose(b, a, atol=1e-3 * np.abs(a).max())
    np.testing.assert_allclose(hb, ha, atol=0.05)


def test_stylize_same_seed_as_cpu(example_audio):
    content, style, sr = example_audio
    opts = dict(n_fft=512, n_filters=64, iterations=5, phase_iters=5, tolerance=0, match_loudness=False)
    _, info_cpu = nst.stylize(content[:sr], style[:sr], sr, device="cpu", return_info=True, **opts)
    y, info_gpu = nst.stylize(content[:sr], style[:sr], sr, device="cuda", return_info=True, **opts)
    assert info_gpu.backend == "cuda" and y.shape == (sr,)
    np.testing.assert_allclose(info_gpu.loss, info_cpu.loss, rtol=1e-3)
