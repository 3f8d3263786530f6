"""Cases 1 and 4: objective value + gradient, nstaudio `cpu` vs torch autograd, and scaling with length."""

import os
import subprocess
import sys

import numpy as np
import pytest

from nstaudio.features import random_filters
from nstaudio.kernels import fast_fir, get_backend
from nstaudio.objective import StyleTransferObjective, choose_gram_form

from audio_fixtures import clip, log_spectrogram
from conftest import alternate, gemm_rate

N, K, ALPHA = 4096, 11, 1e-2


def problem(seconds, style_seconds=10.0):
    """Content and style log spectrograms of real audio, filters, and a point to evaluate at."""
    content = log_spectrogram(clip("content", seconds))[None]
    style = log_spectrogram(clip("style", style_seconds))
    W = random_filters(N, content.shape[1], K, seed=0)
    # halfway between content and noise: both loss terms are active
    X = (0.5 * content + 0.5 * np.random.default_rng(1).random(content.shape)).astype(np.float32)
    return content, style, W, X


def describe_plan(plan):
    """``(4,)`` -> "4", ``(2, 2)`` -> "2x2", ``()`` -> "none"."""
    return "x".join(map(str, plan)) or "none"


def evaluation_flops(C, T, Ts, conv_fraction=1.0):
    """FLOPs of one value+gradient: conv forward + adjoint, plus the cheaper exact Gram form.

    ``conv_fraction`` scales the direct convolution's FLOPs (the fast FIR split runs fewer).
    """
    T_out, Ts_out = T - K + 1, Ts - K + 1
    conv = 2 * 2 * N * C * K * T_out * conv_fraction
    if choose_gram_form(N, T_out, Ts_out) == "kernel":
        gram = 3 * N * T_out**2 + 4 * N * T_out * Ts_out
    else:
        gram = 3 * N**2 * T_out
    return conv + gram


@pytest.mark.parametrize("seconds", [10, 60], ids=["T=431 (10 s)", "T=2585 (60 s)"])
def test_objective_value_and_gradient(torch, report, seconds):
    from torch_reference import TorchObjective

    content, style, W, X = problem(seconds)
    ours = StyleTransferObjective(get_backend("cpu"), W, content, [style], alpha=ALPHA)
    theirs = TorchObjective(W, content, [style], [1.0], ALPHA)
    t_ours, t_torch, (loss, grad), (loss_t, grad_t) = alternate(lambda: ours(X), lambda: theirs(X))

    loss_err = abs(loss - loss_t) / abs(loss_t)
    grad_err = np.linalg.norm(grad - grad_t) / np.linalg.norm(grad_t)
    # The floor of the issue: the direct convolution's FLOPs at the measured GEMM rate. nstaudio's
    # fast FIR split runs fewer FLOPs; its own floor is reported beside it.
    rate = gemm_rate()
    C, T, Ts = content.shape[1], content.shape[2], style.shape[1]
    floor = evaluation_flops(C, T, Ts) / rate
    plan = fast_fir.split_plan(K, T)
    own_floor = evaluation_flops(C, T, Ts, fast_fir.work_fraction(K, plan)) / rate
    report(f"1. objective+grad, T={T} ({seconds} s)", t_ours, t_torch,
           f"loss {loss_err:.1e}, grad {grad_err:.1e}; floor {floor:.3f} s, nstaudio at {t_ours / floor:.2f}x floor; "
           f"fast FIR split {describe_plan(plan)} ({fast_fir.work_fraction(K, plan):.0%} of the conv FLOPs): "
           f"{t_ours / own_floor:.2f}x its own floor")
    assert loss_err < 1e-4
    assert grad_err < 1e-3


def test_scaling_is_linear(report):
    """Case 4: time per evaluation at 5-80 s of audio (nstaudio only)."""
    be = get_backend("cpu")
    per_frame = []
    for seconds in (5, 10, 20, 40, 80):
        content, style, W, X = problem(seconds)
        objective = StyleTransferObjective(be, W, content, [style], alpha=ALPHA)
        t, _, _, _ = alternate(lambda: objective(X), lambda: None, repeats=2)
        per_frame.append(t / content.shape[2])
        report(f"4. scaling: objective+grad at {seconds} s (T={content.shape[2]}, {objective.gram_form} form, "
               f"fast FIR split {describe_plan(fast_fir.split_plan(K, content.shape[2]))})", t,
               None, f"{1e3 * t / content.shape[2]:.2f} ms per frame")
    # Linear growth: the cost per frame stays bounded (the Gram form switches before T' ~ N).
    assert max(per_frame) < 3 * min(per_frame)


def test_peak_memory_one_minute(report):
    """Peak resident memory of one evaluation at T=2585, measured in a fresh process.

    Read from VmHWM, the high-water mark of the new process's own memory: Linux carries
    ``ru_maxrss`` over from the parent through fork and exec, so it would report the
    (larger) pytest process whenever that had grown past the child.
    """
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs Linux's /proc/self/status (VmHWM)")
    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        f"import re, sys; sys.path.insert(0, {here!r});"
        "from test_objective import *;"
        "content, style, W, X = problem(60);"
        "StyleTransferObjective(get_backend('cpu'), W, content, [style], alpha=ALPHA)(X);"
        "print(re.search(r'VmHWM:\\s*(\\d+) kB', open('/proc/self/status').read()).group(1))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=here)
    peak_gb = int(out.stdout.strip().splitlines()[-1]) / 2**20
    report("1. peak memory, objective at T=2585 (60 s)", None, None, f"{peak_gb:.2f} GB resident")
    assert peak_gb > 0
