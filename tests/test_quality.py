"""The quality measures: what they give at their ends, and that a gain changes nothing."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from nstaudio import mel, quality, resample
from nstaudio.errors import AudioError, ParameterError

from conftest import SR, harmonic_tone


def _noise(seconds, seed=1):
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


@settings(max_examples=30, deadline=None)
@given(f=st.floats(0.0, 11025.0))
def test_mel_scale_round_trips_and_is_linear_below_1khz(f):
    assert mel.mel_to_hz(mel.hz_to_mel(f)) == pytest.approx(f, rel=1e-9, abs=1e-9)
    if f < 1000:
        assert mel.hz_to_mel(f) == pytest.approx(f * 3 / 200)


def test_mel_filters_have_unit_area_and_cover_the_band():
    bank = mel.mel_filterbank(SR, 2048, 64)
    assert bank.shape == (64, 1025) and np.all(bank >= 0)
    bin_hz = SR / 2048
    # Slaney normalisation: each triangle integrates to 1 over Hz (to the sampling of its few bins).
    np.testing.assert_allclose(bank.sum(axis=1) * bin_hz, 1.0, rtol=0.02)
    peaks = np.argmax(bank, axis=1) * bin_hz
    assert np.all(np.diff(peaks) >= 0) and peaks[-1] > 9000
    with pytest.raises(ParameterError):
        mel.mel_filterbank(SR, 2048, 64, fmax=SR)


def test_the_ends_of_each_scale():
    content, style = harmonic_tone(2.0), _noise(2.0)
    assert quality.style_movement(content, content, style, SR) == pytest.approx(0.0, abs=1e-12)
    assert quality.style_movement(style, content, style, SR) == pytest.approx(1.0, abs=1e-12)
    assert quality.content_preservation(content, content, SR) == pytest.approx(1.0)
    # Steady noise has no onsets where the tone's notes start.
    assert abs(quality.content_preservation(_noise(2.0, seed=2), content, SR)) < 0.3


def test_a_mix_lies_between_and_a_gain_changes_nothing():
    content, style = harmonic_tone(2.0), harmonic_tone(2.0, f0=523.0, seed=3) + _noise(2.0)
    movement, parts = quality.style_movement(content + style, content, style, SR, return_parts=True)
    assert 0.1 < movement < 0.9 and set(parts) == {"means", "covariance"}
    assert quality.style_movement(0.01 * (content + style), 3.0 * content, 0.5 * style, SR) == pytest.approx(
        movement, abs=1e-6)
    kept = quality.content_preservation(content + 0.1 * style, content, SR)
    assert quality.content_preservation(0.01 * (content + 0.1 * style), content, SR) == pytest.approx(kept, abs=1e-6)


def test_channels_rates_and_what_is_refused():
    content, style = harmonic_tone(1.0), _noise(1.0)
    stereo = np.stack([content, style])
    # Each output channel is measured against the same content channel: the second moved all the way.
    assert quality.style_movement(stereo, np.stack([content, content]), style, SR) == pytest.approx(0.5, abs=1e-6)
    # The style at another rate is resampled to the measuring rate.
    style_44k = resample(style, orig_sr=SR, target_sr=44100)
    assert quality.style_movement(style, content, style_44k, SR, style_sr=44100) == pytest.approx(1.0, abs=0.02)
    with pytest.raises(ParameterError, match="channels"):
        quality.style_movement(stereo, content, style, SR)
    with pytest.raises(AudioError, match="silent"):
        quality.content_preservation(np.zeros_like(content), content, SR)
