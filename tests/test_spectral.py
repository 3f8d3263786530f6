import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nstaudio as nst
from nstaudio import spectral
from nstaudio.errors import ParameterError

from conftest import harmonic_tone


@settings(max_examples=30, deadline=None)
@given(n=st.integers(300, 5000), n_fft=st.sampled_from([64, 256, 512]), hop_div=st.sampled_from([2, 4, 8]),
       channels=st.integers(1, 3))
def test_stft_istft_round_trip_with_exact_length(n, n_fft, hop_div, channels):
    rng = np.random.default_rng(n)
    y = rng.standard_normal((channels, n)).astype(np.float32)
    S = nst.stft(y, n_fft=n_fft, hop_length=n_fft // hop_div)
    assert S.shape == (channels, 1 + n_fft // 2, spectral.n_frames(n, n_fft=n_fft, hop_length=n_fft // hop_div))
    hop = n_fft // hop_div
    z = nst.istft(S, hop_length=hop, length=n)
    assert z.shape == y.shape
    # float32 throughout: the error is a few ulps of the peak divided by the summed squared
    # window, which gets small at the very ends where only a window's tail covers a sample.
    w2 = spectral.get_window("hann", n_fft, n_fft) ** 2
    wss = spectral.overlap_add(np.broadcast_to(w2, (S.shape[-1], n_fft)), hop)[n_fft // 2:n_fft // 2 + n]
    tol = 1e-5 * np.max(np.abs(y)) / np.minimum(wss, 1.0)
    assert np.all(np.abs(z - y) <= tol)
    longer = nst.istft(S, hop_length=hop, length=n + 100)
    assert longer.shape == (channels, n + 100)
    assert np.all(np.abs(longer[:, :n] - y) <= tol)


def test_stft_matches_direct_dft_of_a_frame():
    y = harmonic_tone(0.1)
    S = nst.stft(y, n_fft=256, hop_length=64, center=False)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(256) / 256)  # periodic Hann
    frame = y[3 * 64: 3 * 64 + 256] * w
    direct = np.exp(-2j * np.pi * np.outer(np.arange(129), np.arange(256)) / 256) @ frame
    np.testing.assert_allclose(S[:, 3], direct, atol=1e-4)


def test_griffin_lim_converges_on_real_audio(example_audio):
    content, _, _ = example_audio
    S = np.abs(nst.stft(content[: 22050 * 2]))
    y, conv = nst.griffin_lim(S, n_iter=100, length=22050 * 2, seed=0, return_convergence=True)
    assert y.shape == (22050 * 2,)
    assert conv[-1] <= -25.0, conv[-1]
    assert conv[-1] < conv[0]


def test_griffin_lim_converges_on_synthetic_tone(tone):
    S = np.abs(nst.stft(tone))
    _, conv = nst.griffin_lim(S, n_iter=100, seed=1, return_convergence=True)
    assert conv[-1] <= -25.0, conv[-1]


def test_fast_griffin_lim_beats_plain(tone):
    S = np.abs(nst.stft(tone))
    _, fast = nst.griffin_lim(S, n_iter=30, seed=0, return_convergence=True)
    _, plain = nst.griffin_lim(S, n_iter=30, momentum=0.0, seed=0, return_convergence=True)
    assert fast[-1] < plain[-1] - 3


def test_griffin_lim_seed_reproducible_and_inits(tone):
    spec = nst.stft(tone)
    S = np.abs(spec)
    a = nst.griffin_lim(S, n_iter=5, seed=3)
    b = nst.griffin_lim(S, n_iter=5, seed=3)
    c = nst.griffin_lim(S, n_iter=5, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # starting from the true phase, zero iterations give the signal back
    exact = nst.griffin_lim(S, n_iter=0, init="content", content=spec, length=len(tone))
    np.testing.assert_allclose(exact, tone, atol=1e-5)
    from_angles = nst.griffin_lim(S, n_iter=0, init=np.angle(spec), length=len(tone))
    np.testing.assert_allclose(from_angles, tone, atol=1e-5)


def test_griffin_lim_callback_reports_every_iteration(tone):
    seen = []
    nst.griffin_lim(np.abs(nst.stft(tone)), n_iter=4, callback=lambda i, db: seen.append((i, db)))
    assert [i for i, _ in seen] == [1, 2, 3, 4] and all(np.isfinite(db) for _, db in seen)


@pytest.mark.parametrize("kwargs,message", [
    (dict(n_fft=8), "n_fft"),
    (dict(n_fft=256, hop_length=512), "hop_length"),
    (dict(n_fft=256, hop_length=0), "hop_length"),
    (dict(n_fft=256, window="no-such-window"), "window"),
])
def test_stft_parameter_errors(tone, kwargs, message):
    with pytest.raises(ParameterError, match=message):
        nst.stft(tone, **kwargs)


def test_griffin_lim_parameter_errors(tone):
    S = np.abs(nst.stft(tone))
    with pytest.raises(ParameterError, match="content"):
        nst.griffin_lim(S, init="content")
    with pytest.raises(ParameterError, match="n_iter"):
        nst.griffin_lim(S, n_iter=-1)
    with pytest.raises(ParameterError, match="non-negative"):
        nst.griffin_lim(-S)


@pytest.mark.parametrize("center", [True, False])
def test_griffin_lim_backends_agree_on_multichannel(tone, center):
    y = np.stack([tone, tone[::-1].copy()])
    S = np.abs(nst.stft(y, n_fft=512, center=center))
    outs = {dev: nst.griffin_lim(S, n_iter=10, seed=2, center=center, length=len(tone), device=dev,
                                 return_convergence=True) for dev in ("numpy", "cpu")}
    (a, ha), (b, hb) = outs["numpy"], outs["cpu"]
    assert a.shape == b.shape == y.shape and ha.shape == hb.shape == (2, 10)
    # float32 rounding differs between backends; without centering, the edges are divided by
    # a tiny window sum, so compare relative to the signal's scale
    np.testing.assert_allclose(b, a, atol=1e-4 * np.max(np.abs(a)))
    np.testing.assert_allclose(hb, ha, atol=0.01)


def test_griffin_lim_callback_counts_across_channels(tone):
    S = np.abs(nst.stft(np.stack([tone, tone])))
    steps = []
    nst.griffin_lim(S, n_iter=3, callback=lambda i, db: steps.append(i))
    assert steps == [1, 2, 3, 4, 5, 6]
