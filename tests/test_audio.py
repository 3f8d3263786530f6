import os

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

import nstaudio as nst
from nstaudio import audio
from nstaudio.errors import AudioError, OutputError, ParameterError

from conftest import harmonic_tone


def test_load_keeps_channels_rate_and_reports_format(wav_files):
    y = np.stack([harmonic_tone(0.5, 44100), harmonic_tone(0.5, 44100, f0=330)])
    path = wav_files("stereo.wav", y, 44100)
    loaded, sr, info = nst.load(path, return_info=True)
    assert loaded.shape == (2, 22050) and loaded.dtype == np.float32 and sr == 44100
    assert info.subtype == "PCM_16" and info.format == "WAV" and info.channels == 2
    np.testing.assert_allclose(loaded, y, atol=1 / 2**15)


def test_load_resamples_and_mixes(wav_files):
    path = wav_files("a.wav", harmonic_tone(1.0, 16000), 16000)
    y, sr = nst.load(path, sr=22050, mono=True)
    assert sr == 22050 and y.shape == (1, 22050)


def test_resample_is_polyphase_and_keeps_frequency():
    sr, f = 16000, 1000.0
    t = np.arange(sr) / sr
    y = np.sin(2 * np.pi * f * t).astype(np.float32)
    z = nst.resample(y, orig_sr=sr, target_sr=22050)
    assert z.shape == (22050,)
    expected = np.sin(2 * np.pi * f * np.arange(22050) / 22050)
    # Away from the edges the resampled sine is the ideal one to within the Kaiser(5) filter's
    # passband ripple (about 0.02 dB per pass, so 0.25 % amplitude), where linear
    # interpolation would be off by several percent at 1 kHz.
    np.testing.assert_allclose(z[500:-500], expected[500:-500], atol=3e-3)
    back = nst.resample(z, orig_sr=22050, target_sr=sr, length=sr)
    np.testing.assert_allclose(back[500:-500], y[500:-500], atol=3e-3)
    linear = np.interp(np.arange(22050) / 22050, t, y)
    assert np.max(np.abs(linear[500:-500] - expected[500:-500])) > 3e-3


@pytest.mark.parametrize("ext,subtype", [(".wav", "PCM_24"), (".flac", "PCM_16"), (".wav", "FLOAT")])
def test_save_round_trip(tmp_path, ext, subtype):
    y = np.stack([harmonic_tone(0.2), harmonic_tone(0.2, f0=110)])
    path = tmp_path / f"out{ext}"
    nst.save(path, y, 22050, subtype=subtype)
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    assert sr == 22050 and sf.info(path).subtype == subtype
    np.testing.assert_allclose(data.T, y, atol=1 / 2**15)
    assert os.listdir(tmp_path) == [f"out{ext}"]  # no temporary file left over
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask  # not the temporary file's private 0600


def test_save_is_atomic_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "out.wav"
    path.write_bytes(b"previous contents")

    real_soundfile = audio.sf.SoundFile

    class BrokenSoundFile(real_soundfile):
        """Writes half a file, then is interrupted."""

        def write(self, data):
            super().write(data[: len(data) // 2])
            raise KeyboardInterrupt

    monkeypatch.setattr(audio.sf, "SoundFile", BrokenSoundFile)
    with pytest.raises(KeyboardInterrupt):
        nst.save(path, harmonic_tone(0.1), 22050)
    assert path.read_bytes() == b"previous contents"
    assert os.listdir(tmp_path) == ["out.wav"]


def test_save_rejects_unknown_extension(tmp_path):
    with pytest.raises(ParameterError, match="extension"):
        nst.save(tmp_path / "out.xyz", harmonic_tone(0.1), 22050)


@pytest.mark.parametrize("make,message", [
    (lambda d: str(d / "missing.wav"), "no such file"),
    (lambda d: str(d), "directory"),
    (lambda d: _write_bytes(d / "text.wav", b"this is not audio at all"), "not a readable audio file"),
    (lambda d: _write_audio(d / "empty.wav", np.zeros((0,), np.float32)), "empty"),
    (lambda d: _write_audio(d / "silent.wav", np.zeros(1000, np.float32)), "silent"),
    (lambda d: _write_audio(d / "nan.wav", np.array([0.1, np.nan, 0.2] * 100, np.float32), "FLOAT"), "NaN"),
    (lambda d: _write_audio(d / "inf.wav", np.array([0.1, np.inf, 0.2] * 100, np.float32), "FLOAT"), "infinite"),
])
def test_load_bad_files(tmp_path, make, message):
    with pytest.raises(AudioError, match=message):
        nst.load(make(tmp_path))


def test_a_url_where_a_local_file_is_wanted_says_where_urls_work(tmp_path):
    with pytest.raises(AudioError, match=r"^s3://bucket/a.wav: no such file \(URLs work in `nstaudio batch`"):
        nst.load("s3://bucket/a.wav")
    with pytest.raises(OutputError, match=r"URLs work in `nstaudio batch`"):
        nst.save("s3://bucket/out.wav", harmonic_tone(0.1), 22050)
    with pytest.raises(AudioError, match=r"^missing.wav: no such file$"):  # a plain path: no hint
        nst.load("missing.wav")


def _write_bytes(path, data):
    path.write_bytes(data)
    return str(path)


def _write_audio(path, y, subtype="PCM_16"):
    sf.write(path, y, 22050, subtype=subtype)
    return str(path)


def test_match_loudness_matches_rms_and_never_clips():
    ref = harmonic_tone(0.5)[np.newaxis]
    y = 5 * harmonic_tone(0.5, f0=330)[np.newaxis]
    out = audio.match_loudness(y, ref, mode="rms")
    np.testing.assert_allclose(np.sqrt(np.mean(out**2)), np.sqrt(np.mean(ref**2)), rtol=1e-4)
    loud_ref = np.clip(ref * 10, -1, 1)
    spiky = np.zeros_like(ref)
    spiky[0, ::1000] = 1.0
    assert np.max(np.abs(audio.match_loudness(spiky, loud_ref, mode="rms"))) <= 0.99 + 1e-6


def test_match_loudness_in_lufs_matches_integrated_loudness_under_a_true_peak_ceiling():
    sr = 22050
    ref = np.stack([harmonic_tone(3.0, sr), harmonic_tone(3.0, sr, f0=330.0, seed=1)]) * np.float32(0.3)
    y = np.stack([harmonic_tone(3.0, sr, f0=500.0, seed=2)] * 2) * np.float32(0.05)
    out = audio.match_loudness(y, ref, sr, mode="lufs")
    assert abs(audio.integrated_loudness(out, sr) - audio.integrated_loudness(ref, sr)) < 0.05
    # a quiet spiky signal brought to a loud reference stops at -1 dBTP, which a sample peak can miss
    spiky = np.zeros((1, 3 * sr), np.float32)
    spiky[0, 100::3000] = 0.01
    spiky[0, 101::3000] = -0.01
    loud = np.clip(ref[:1] * 4, -1, 1)
    limited = audio.match_loudness(spiky, loud, sr, mode="lufs")
    assert audio.true_peak(limited) <= 10 ** (-1 / 20) * (1 + 1e-5)
    assert audio.true_peak(limited) > np.max(np.abs(limited))  # inter-sample peaks counted


def test_lufs_falls_back_to_rms_for_a_clip_shorter_than_a_gating_block():
    sr = 22050
    ref, y = harmonic_tone(0.3, sr)[np.newaxis], 0.1 * harmonic_tone(0.3, sr, f0=330.0)[np.newaxis]
    assert audio.integrated_loudness(ref, sr) is None
    np.testing.assert_array_equal(audio.match_loudness(y, ref, sr, mode="lufs"), audio.match_loudness(y, ref))


def test_the_true_peak_in_blocks_is_the_whole_signals():
    y = np.random.default_rng(0).standard_normal((2, 5000)).astype(np.float32)
    whole = float(np.max(np.abs(scipy.signal.resample_poly(y.astype(np.float64), 4, 1, axis=-1))))
    assert audio.true_peak(y, block=257) == pytest.approx(max(whole, float(np.abs(y).max())), rel=1e-6)


def test_same_file(tmp_path):
    a = tmp_path / "a.wav"
    a.write_bytes(b"x")
    assert audio.same_file(a, tmp_path / "." / "a.wav")
    assert not audio.same_file(a, tmp_path / "b.wav")
