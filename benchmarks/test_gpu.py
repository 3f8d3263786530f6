"""GPU cases: nstaudio `cuda` vs torch on the same GPU (cuDNN conv1d + autograd, torch.stft).

Skipped, with the reason, where CuPy or a CUDA GPU is missing. Same cases as the CPU
benchmarks; results go to the ``cuda`` section of RESULTS.md.
"""

import time

import numpy as np
import pytest
from test_objective import ALPHA, evaluation_flops, problem

import nstaudio as nst
from nstaudio.kernels import cuda_status, get_backend
from nstaudio.objective import StyleTransferObjective

from audio_fixtures import SR, clip
from conftest import alternate, gemm_rate

reason = cuda_status()
pytestmark = pytest.mark.skipif(reason is not None, reason=f"cuda backend unavailable: {reason}")


@pytest.fixture(scope="module")
def cupy():
    import cupy

    return cupy


def synced(cupy, fn):
    def run():
        out = fn()
        cupy.cuda.runtime.deviceSynchronize()
        return out
    return run


@pytest.mark.parametrize("seconds", [10, 60])
def test_gpu_objective(torch, cupy, report, seconds):
    from torch_reference import TorchObjective

    content, style, W, X = problem(seconds)
    ours = StyleTransferObjective(get_backend("cuda"), W, content, [style], alpha=ALPHA)
    theirs = TorchObjective(W, content, [style], [1.0], ALPHA, device="cuda")
    torch.backends.cuda.matmul.allow_tf32 = False  # FP32 on both sides
    torch.backends.cudnn.allow_tf32 = False
    t_ours, t_torch, (loss, grad), (loss_t, grad_t) = alternate(
        synced(cupy, lambda: ours(X)), lambda: theirs(X), repeats=5)
    grad = cupy.asnumpy(grad)
    rate = gemm_rate(cupy, sync=cupy.cuda.runtime.deviceSynchronize)
    flops = evaluation_flops(content.shape[1], content.shape[2], style.shape[1])
    loss_err = abs(loss - loss_t) / abs(loss_t)
    grad_err = np.linalg.norm(grad - grad_t) / np.linalg.norm(grad_t)
    report(f"GPU 1. objective+grad, T={content.shape[2]} ({seconds} s)", t_ours, t_torch,
           f"loss {loss_err:.1e}, grad {grad_err:.1e}; {flops / t_ours / 1e9:.0f} GFLOP/s of a measured "
           f"{rate / 1e9:.0f} GFLOP/s FP32 GEMM", section="cuda")
    assert loss_err < 1e-4 and grad_err < 1e-3


def test_gpu_griffin_lim(torch, cupy, report):
    from torch_reference import torch_griffin_lim

    y = clip("content", 60)
    S = np.abs(nst.stft(y))
    angles = np.exp(2j * np.pi * np.random.default_rng(0).random(S.shape)).astype(np.complex64)

    def ours():
        out, history = nst.griffin_lim(S, n_iter=100, init=angles, length=len(y), device="cuda",
                                       return_convergence=True)
        return out, history[-1]

    def theirs():
        out = torch_griffin_lim(S, angles, n_iter=100, length=len(y), device="cuda")
        torch.cuda.synchronize()
        return out

    t_ours, t_torch, (_, sc), (_, sc_t) = alternate(ours, theirs)
    report("GPU 2. Griffin-Lim, 100 iterations, 60 s", t_ours, t_torch,
           f"spectral convergence {sc:.2f} dB vs {sc_t:.2f} dB", section="cuda")
    assert abs(sc - sc_t) < 1.0


def test_gpu_whole_run(torch, report):
    from torch_reference import torch_stylize

    content, style = clip("content", 10), clip("style", 10)
    nst.stylize(content[:SR], style[:SR], SR, iterations=2, device="cuda")  # compile the kernels
    start = time.perf_counter()
    _, info = nst.stylize(content, style, SR, iterations=300, tolerance=0, device="cuda", return_info=True)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    _, loss_t = torch_stylize(content, style, iterations=300, device="cuda")
    t_torch = time.perf_counter() - start
    report("GPU 3. whole run, 300 L-BFGS-B iterations + 100 Griffin-Lim, 10 s", t_ours, t_torch,
           f"final loss {info.loss:.2f} vs {loss_t:.2f}", section="cuda")
    assert info.loss <= 1.005 * loss_t
