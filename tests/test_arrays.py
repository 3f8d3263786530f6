"""Arrays from other audio libraries (issue 21): layouts, dtypes, memory orders and strides.

What comes back is documented in the README ("Arrays"): float32, C-contiguous, the content's
shape ((n,) in, (n,) out). Any floating dtype, byte order, memory order or stride gives what
the same samples as a C-contiguous float32 array give. Integer PCM and (samples, channels)
arrays are refused with a message that says how to pass them.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import nstaudio as nst
from nstaudio.errors import AudioError

from conftest import harmonic_tone

SR = 22050
TINY = dict(n_filters=4, iterations=2, phase_iters=2, n_fft=256, device="cpu", tolerance=0)
EXAMPLES = settings(max_examples=15, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def audio_arrays(draw, seconds=0.3):
    """(reference, variant): C-contiguous float32 audio, and the same samples in another layout."""
    channels = draw(st.sampled_from([None, 1, 2, 3]))  # None: mono (n,)
    rows = [harmonic_tone(seconds, f0=200 + 90 * c, seed=c) for c in range(channels or 1)]
    reference = rows[0] if channels is None else np.stack(rows)
    dtype = draw(st.sampled_from(["<f4", ">f4", "<f8", ">f8"]))
    variant = reference.astype(dtype)
    if draw(st.booleans()):  # Fortran order
        variant = np.asfortranarray(variant)
    step = draw(st.sampled_from([1, 2, 3]))
    if step > 1:  # the same samples as a strided view into a larger buffer
        buffer = np.zeros(variant.shape[:-1] + (variant.shape[-1] * step,), dtype=dtype)
        buffer[..., ::step] = variant
        variant = buffer[..., ::step]
    reference = reference.astype(dtype).astype(np.float32)  # what the variant holds, in float32
    return np.ascontiguousarray(reference), variant


def assert_plain_float32(y, shape):
    assert y.dtype == np.float32 and y.shape == shape and y.flags.c_contiguous


@EXAMPLES
@given(arrays=audio_arrays())
def test_stylize_takes_any_float_layout(arrays):
    reference, variant = arrays
    style = harmonic_tone(0.5, f0=330, seed=9)
    expected = nst.stylize(reference, style, SR, **TINY)
    out = nst.stylize(variant, style, SR, **TINY)
    assert_plain_float32(out, reference.shape)
    np.testing.assert_array_equal(out, expected)
    as_style = nst.stylize(style, variant, SR, **TINY)  # the same rules for a style
    np.testing.assert_array_equal(as_style, nst.stylize(style, reference, SR, **TINY))


@EXAMPLES
@given(arrays=audio_arrays(seconds=0.5))
def test_spectral_functions_take_any_float_layout(arrays):
    reference, variant = arrays
    S = nst.stft(reference, n_fft=256)
    np.testing.assert_array_equal(nst.stft(variant, n_fft=256), S)
    S_variant = np.asfortranarray(S.astype(np.complex128)) if variant.flags.f_contiguous else S[..., :]
    np.testing.assert_allclose(nst.istft(S_variant, length=reference.shape[-1]),
                               nst.istft(S, length=reference.shape[-1]), atol=1e-6)
    magnitude = np.abs(S)
    expected = nst.griffin_lim(magnitude, n_iter=3, n_fft=256, seed=0, device="cpu")
    out = nst.griffin_lim(np.asfortranarray(magnitude.astype(variant.dtype)), n_iter=3, n_fft=256, seed=0,
                          device="cpu")
    assert_plain_float32(out, expected.shape)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    resampled = nst.resample(variant, orig_sr=SR, target_sr=16000)
    np.testing.assert_array_equal(resampled, nst.resample(reference, orig_sr=SR, target_sr=16000))


@pytest.mark.parametrize("dtype, conversion", [("int16", "/ 32768"), ("int32", "/ 2147483648"),
                                               ("uint8", "- 128) / 128"), ("int8", "/ 128")])
def test_integer_pcm_is_refused_with_its_conversion(dtype, conversion):
    pcm = (harmonic_tone(0.5) * 100).astype(dtype)
    style = harmonic_tone(0.5, f0=330)
    for call in (lambda: nst.stylize(pcm, style, SR, **TINY), lambda: nst.stylize(style, pcm, SR, **TINY),
                 lambda: nst.stft(pcm), lambda: nst.resample(pcm, orig_sr=SR, target_sr=16000)):
        with pytest.raises(AudioError, match="floating point") as info:
            call()
        assert conversion in str(info.value) and "nstaudio.load" in str(info.value)


@pytest.mark.parametrize("role", ["content", "style"])
def test_samples_by_channels_is_refused_with_how_to_pass_it(role):
    """soundfile.read gives (samples, channels): 88200 "channels" of 2 samples was read as too short before."""
    stereo_from_soundfile = np.stack([harmonic_tone(1.0), harmonic_tone(1.0, f0=330)], axis=1)
    other = harmonic_tone(1.0, f0=440)
    args = (stereo_from_soundfile, other) if role == "content" else (other, stereo_from_soundfile)
    with pytest.raises(AudioError, match=r"pass y\.T") as info:
        nst.stylize(*args, SR, **TINY)
    assert "(22050, 2)" in str(info.value) and role in str(info.value)
    out = nst.stylize(*(a.T if a is stereo_from_soundfile else a for a in args), SR, **TINY)
    assert out.shape == ((2, SR) if role == "content" else (SR,))


def test_more_channels_than_any_format_is_refused():
    with pytest.raises(AudioError, match="looks like"):
        nst.stylize(np.ones((2000, 4000), np.float32) * 0.1, harmonic_tone(0.5), SR, **TINY)


def test_save_refuses_the_same_layouts(tmp_path):
    with pytest.raises(AudioError, match="floating point"):
        nst.save(tmp_path / "x.wav", (harmonic_tone(0.2) * 1000).astype(np.int16), SR)
    with pytest.raises(AudioError, match=r"pass y\.T"):
        nst.save(tmp_path / "x.wav", np.stack([harmonic_tone(0.2)] * 2, axis=1), SR)
    assert list(tmp_path.iterdir()) == []


def test_results_are_new_c_arrays_on_every_path():
    stereo = np.asfortranarray(np.stack([harmonic_tone(1.0), harmonic_tone(1.0, f0=330)]))
    same_rate = nst.resample(stereo, orig_sr=SR, target_sr=SR)
    trimmed = nst.resample(stereo[:, ::2], orig_sr=SR, target_sr=16000, length=100)
    for y in (same_rate, trimmed):
        assert y.dtype == np.float32 and y.flags.c_contiguous and not np.shares_memory(y, stereo)
    out = nst.stylize(stereo, harmonic_tone(1.0, f0=440), SR, match_loudness=False, **TINY)
    assert out.flags.c_contiguous and out.shape == stereo.shape
