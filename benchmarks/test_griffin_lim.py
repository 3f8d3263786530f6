"""Case 2: fast Griffin-Lim, 100 iterations, n_fft 2048, hop 512, on 10 s and 60 s of real audio."""

import numpy as np
import pytest

import nstaudio as nst

from audio_fixtures import clip
from conftest import alternate


@pytest.mark.parametrize("seconds", [10, 60])
def test_griffin_lim(torch, report, seconds):
    from torch_reference import torch_griffin_lim

    y = clip("content", seconds)
    S = np.abs(nst.stft(y))
    angles = np.exp(2j * np.pi * np.random.default_rng(0).random(S.shape)).astype(np.complex64)

    def ours():
        out, history = nst.griffin_lim(S, n_iter=100, init=angles, length=len(y), device="cpu",
                                       return_convergence=True)
        return out, history[-1]

    t_ours, t_torch, (_, sc_ours), (_, sc_torch) = alternate(
        ours, lambda: torch_griffin_lim(S, angles, n_iter=100, length=len(y)))
    report(f"2. Griffin-Lim, 100 iterations, {seconds} s", t_ours, t_torch,
           f"spectral convergence {sc_ours:.2f} dB vs {sc_torch:.2f} dB")
    assert abs(sc_ours - sc_torch) < 1.0
