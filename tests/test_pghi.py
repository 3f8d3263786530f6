"""Phase Gradient Heap Integration: the numba kernel against the reference, and on signals whose phase is known."""

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

import nstaudio as nst
from nstaudio import spectral
from nstaudio.cli.main import main
from nstaudio.errors import ParameterError
from nstaudio.kernels import cpu, numpy_backend

from conftest import SR, harmonic_tone


def _chirp(seconds=1.0):
    t = np.arange(int(seconds * SR)) / SR
    return np.sin(2 * np.pi * (200 * t + 1500 * t ** 2)).astype(np.float32)


def _sines(seconds=1.0):
    t = np.arange(int(seconds * SR)) / SR
    return (sum(np.sin(2 * np.pi * f * t + p) for f, p in ((220, 0.3), (555, 1.0), (1234, 2.0))) / 3).astype(
        np.float32)


def _convergence(S, phase, hop_length):
    """Spectral convergence (dB) of the signal that magnitude ``S`` with ``phase`` gives."""
    y = nst.istft(S * np.exp(1j * phase), hop_length=hop_length)
    return spectral.spectral_convergence(S, nst.stft(y, n_fft=2 * (S.shape[-2] - 1), hop_length=hop_length))


@settings(max_examples=40, deadline=None)
@given(bins=st.integers(1, 40), frames=st.integers(1, 40), levels=st.sampled_from([0, 3, 50]),
       threshold=st.sampled_from([0.0, 0.3]), seed=st.integers(0, 2**32 - 1))
def test_heap_integration_kernel_matches_the_reference(bins, frames, levels, threshold, seed):
    """Same visiting order (ties in magnitude included: ``levels`` quantises them) and the same phases."""
    rng = np.random.default_rng(seed)
    magnitude = rng.random((bins, frames))
    if levels:
        magnitude = np.round(magnitude * levels) / levels
    time_step, freq_step = rng.standard_normal((2, bins, frames))
    start = 2 * np.pi * rng.random((bins, frames))
    expected = numpy_backend.heap_integrate(magnitude, time_step, freq_step, threshold, start.copy())
    got = cpu.heap_integrate(magnitude, time_step, freq_step, threshold, start.copy())
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    below = magnitude <= threshold
    np.testing.assert_array_equal(got[below], start[below])  # small coefficients keep the phase they were given


def test_heap_integration_follows_the_gradient_from_the_largest_coefficient():
    """One island: the peak gets phase 0 and every other phase is a sum of steps along a path."""
    magnitude = np.array([[1.0, 3.0, 2.0]])
    time_step = np.array([[0.2, 0.4, 0.8]])
    phase = numpy_backend.heap_integrate(magnitude, time_step, np.zeros_like(time_step), 0.0, np.zeros((1, 3)))
    np.testing.assert_allclose(phase, [[-0.3, 0.0, 0.6]])
    magnitude = np.array([[3.0], [1.0]])
    freq_step = np.array([[0.5], [0.1]])
    phase = numpy_backend.heap_integrate(magnitude, np.zeros_like(freq_step), freq_step, 0.0, np.zeros((2, 1)))
    np.testing.assert_allclose(phase, [[0.0], [0.3 + np.pi]])  # each bin adds pi more


@pytest.mark.parametrize("signal, hop_length, better_than", [
    (_chirp, 512, -18.0), (_sines, 512, -25.0), (_chirp, 256, -25.0), (_sines, 256, -30.0),
    (harmonic_tone, 512, -15.0),
])
def test_pghi_alone_rebuilds_signals_whose_phase_is_known(signal, hop_length, better_than):
    """Measured: chirp -22.3 / -30.4 dB, sines -30.2 / -34.5 dB at hop n_fft/4 / n_fft/8; random phase -2 to -4 dB."""
    S = np.abs(nst.stft(signal(), hop_length=hop_length))
    assert _convergence(S, nst.pghi(S, hop_length=hop_length), hop_length) < better_than
    random_phase = 2 * np.pi * np.random.default_rng(0).random(S.shape)
    assert _convergence(S, random_phase, hop_length) > -6.0


def test_pghi_finds_a_sinusoid_s_phase_advance():
    """Between frames the phase of a stationary sinusoid's peak bin advances by 2 pi f hop / sr (mod 2 pi)."""
    f, hop = 1000.0, 512
    t = np.arange(SR) / SR
    S = np.abs(nst.stft(np.sin(2 * np.pi * f * t).astype(np.float32), hop_length=hop))
    phase = nst.pghi(S, hop_length=hop)
    peak = int(np.argmax(S[:, S.shape[1] // 2]))
    advance = np.diff(phase[peak, 5:-5])
    expected = 2 * np.pi * f * hop / SR
    error = np.angle(np.exp(1j * (advance - expected)))
    assert np.max(np.abs(error)) < 0.02


def test_griffin_lim_from_pghi_converges_faster_than_from_random_phase():
    y = harmonic_tone(1.0)
    S = np.abs(nst.stft(y))
    _, from_pghi = spectral.griffin_lim(S, n_iter=8, init="pghi", return_convergence=True, seed=0)
    _, from_random = spectral.griffin_lim(S, n_iter=8, init="random", return_convergence=True, seed=0)
    assert from_pghi[-1] < from_random[-1] - 5.0


@pytest.mark.parametrize("device", ["numpy", "cpu"])
def test_pghi_is_the_same_on_every_backend_and_seeded(device):
    S = np.abs(nst.stft(np.stack([harmonic_tone(0.5), harmonic_tone(0.5, f0=330)]), n_fft=256, hop_length=64))
    S[:, :, 3] = 0.0  # a silent frame: random phase there, from the seed
    reference = nst.pghi(S, hop_length=64, seed=3, device="numpy")
    np.testing.assert_allclose(nst.pghi(S, hop_length=64, seed=3, device=device), reference, atol=1e-9)
    assert reference.shape == S.shape
    assert not np.allclose(nst.pghi(S, hop_length=64, seed=4)[:, :, 3], reference[:, :, 3])


def test_pghi_refuses_what_it_cannot_use():
    S = np.abs(nst.stft(harmonic_tone(0.2), n_fft=256, hop_length=64))
    with pytest.raises(ParameterError, match="tolerance"):
        nst.pghi(S, hop_length=64, tolerance=0)
    with pytest.raises(ParameterError, match="non-negative"):
        nst.pghi(-S, hop_length=64)
    with pytest.raises(ParameterError, match="bins"):
        nst.pghi(S, n_fft=512, hop_length=64)
    with pytest.raises(ParameterError, match="hann"):
        spectral.griffin_lim(S, n_iter=1, hop_length=64, window="hamming", init="pghi")


def test_stylize_and_the_cli_take_pghi(tmp_path):
    content, style = harmonic_tone(1.0), harmonic_tone(1.0, f0=330)
    settings = dict(iterations=3, n_filters=16, device="cpu")
    y, info = nst.stylize(content, style, SR, phase_init="pghi", phase_iters=0, return_info=True, **settings)
    assert y.shape == content.shape and np.all(np.isfinite(y)) and np.isnan(info.phase_convergence_db)
    y, info = nst.stylize(content, style, SR, phase_init="pghi", phase_iters=4, return_info=True, **settings)
    assert np.isfinite(info.phase_convergence_db)
    for name, clip in (("c.wav", content), ("s.wav", style)):
        nst.save(tmp_path / name, clip, SR)
    result = CliRunner().invoke(main, [
        "run", str(tmp_path / "c.wav"), str(tmp_path / "s.wav"), "-o", str(tmp_path / "o.wav"), "--iterations", "3",
        "--filters", "16", "--phase-init", "pghi", "--phase-iters", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert nst.load(tmp_path / "o.wav")[0].shape == (1, content.shape[0])
