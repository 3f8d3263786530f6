"""End to end: the `optimize` method and `stylize` on short real and synthetic audio."""

import numpy as np
import pytest

import nstaudio as nst
from nstaudio.errors import AudioError, BackendError, ParameterError
from nstaudio.objective import StyleTransferObjective

from conftest import SR, harmonic_tone

SMALL = dict(n_fft=512, n_filters=128, phase_iters=30)


def log_spec(y):
    return np.log1p(np.abs(nst.stft(y, n_fft=512)))


@pytest.fixture(scope="module")
def short_pair(example_audio):
    content, style, sr = example_audio
    return content[: sr * 3 // 2], style[: sr * 3 // 2], sr


@pytest.mark.parametrize("optimizer,iterations", [("lbfgs", 60), ("plbfgs", 60), ("adam", 100)])
def test_output_moves_toward_the_style(short_pair, optimizer, iterations):
    content, style, sr = short_pair
    y, info = nst.stylize(content, style, sr, iterations=iterations, optimizer=optimizer, return_info=True, **SMALL)
    assert y.shape == content.shape and y.dtype == np.float32 and np.all(np.isfinite(y))
    assert info.style_loss <= info.initial_style_loss / 10, (info.initial_style_loss, info.style_loss)
    # Re-analysed from the waveform, with the same random net but no content term, the output
    # is closer to the style than the content was.
    W = nst.random_filters(128, 257, 11, seed=np.random.default_rng(0).integers(2**63))
    Xc = log_spec(content)
    judge = StyleTransferObjective(nst.get_backend("cpu"), W, None, [log_spec(style)], alpha=0,
                                   shape=(1,) + Xc.shape)
    assert judge(log_spec(y)[None])[0] < 0.6 * judge(Xc[None])[0]


def test_variants_style_only_and_content_init(short_pair):
    content, style, sr = short_pair
    _, style_only = nst.stylize(content, style, sr, alpha=0, iterations=20, return_info=True, **SMALL)
    assert style_only.content_loss == 0 and style_only.style_loss < style_only.initial_style_loss
    _, from_content = nst.stylize(content, style, sr, init="content", width=3, iterations=20, return_info=True,
                                  **SMALL)
    assert from_content.loss < from_content.initial_loss


def test_several_styles_with_weights(short_pair):
    content, style, sr = short_pair
    noise = np.random.default_rng(0).standard_normal(sr).astype(np.float32) * 0.1
    _, info = nst.stylize(content, [style, noise], sr, style_weights=[3, 1], iterations=10, return_info=True,
                          **SMALL)
    assert info.loss < info.initial_loss
    with pytest.raises(ParameterError, match="style_weights"):
        nst.stylize(content, [style, noise], sr, style_weights=[1], iterations=1, **SMALL)


def test_multichannel_other_rates_keep_shape_rate_and_length():
    content = np.stack([harmonic_tone(1.0, 44100), harmonic_tone(1.0, 44100, f0=330)])
    style = harmonic_tone(1.2, 16000, f0=440, seed=3)
    y = nst.stylize(content, style, 44100, style_sr=16000, iterations=5, **SMALL)
    assert y.shape == content.shape
    # the content's integrated loudness (the default match_loudness, "lufs"), under the -1 dBTP ceiling
    assert nst.audio.true_peak(y) <= 10 ** (-1 / 20) * (1 + 1e-5)
    assert abs(nst.audio.integrated_loudness(y, 44100) - nst.audio.integrated_loudness(content, 44100)) < 0.05
    # both channels are stylized, not copied from each other
    assert not np.allclose(y[0], y[1])


def test_same_seed_same_output_and_backends_agree(short_pair):
    content, style, sr = short_pair
    content, style = content[: sr // 2], style[: sr // 2]
    opts = dict(iterations=3, n_fft=256, n_filters=16, phase_iters=0, match_loudness=False)
    a, ia = nst.stylize(content, style, sr, device="cpu", return_info=True, **opts)
    b = nst.stylize(content, style, sr, device="cpu", **opts)
    c, ic = nst.stylize(content, style, sr, device="numpy", return_info=True, **opts)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(ia.loss, ic.loss, rtol=1e-4)
    np.testing.assert_allclose(a, c, atol=1e-3 * np.max(np.abs(c)))


def test_callback_reports_both_stages(short_pair):
    content, style, sr = short_pair
    seen = []
    nst.stylize(content, style, sr, iterations=3, callback=lambda *a: seen.append(a), **SMALL)
    stages = [s[0] for s in seen]
    assert stages.count("phase") == 30 and 1 <= stages.count("optimize") <= 3
    assert all(total in (3, 30) for _, _, total, _ in seen)


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(n_fft=8), ParameterError, "n_fft"),
    (dict(hop_length=1024), ParameterError, "hop_length"),
    (dict(n_filters=0), ParameterError, "n_filters"),
    (dict(iterations=-1), ParameterError, "iterations"),
    (dict(alpha=-1.0), ParameterError, "alpha"),
    (dict(alpha=float("nan")), ParameterError, "alpha"),
    (dict(width=0), ParameterError, "width"),
    (dict(optimizer="sgd"), ParameterError, "optimizer"),
    (dict(device="tpu"), ParameterError, "device"),
    (dict(sr_work=10), ParameterError, "sr_work"),
])
def test_bad_parameters(tone, kwargs, error, message):
    with pytest.raises(error, match=message):
        nst.stylize(tone, tone, SR, **{**SMALL, "iterations": 1, **kwargs})


@pytest.mark.parametrize("content,style,message", [
    (np.zeros(SR, np.float32), harmonic_tone(), "silent"),
    (harmonic_tone(), np.zeros(0, np.float32), "empty"),
    (np.full(SR, np.nan, np.float32), harmonic_tone(), "NaN"),
    (harmonic_tone(), harmonic_tone(0.01), "style is too short"),
    (harmonic_tone(0.01), harmonic_tone(), "content is too short"),
])
def test_bad_audio(content, style, message):
    with pytest.raises(AudioError, match=message):
        nst.stylize(content, style, SR, **{**SMALL, "iterations": 1})


def test_cuda_request_without_gpu(tone):
    if "cuda" in nst.available_backends():
        pytest.skip("a usable CUDA backend is present")
    with pytest.raises(BackendError):
        nst.stylize(tone, tone, SR, device="cuda", **{**SMALL, "iterations": 1})


@pytest.mark.parametrize("optimizer", ["plbfgs", "lbfgs", "adam"])
def test_optimize_runs_unbounded_and_takes_a_log_magnitude_below_zero_as_silence(monkeypatch, optimizer):
    """The log spectrogram is optimized without a bound (as the papers'); what goes below 0 becomes magnitude 0."""
    from nstaudio import spectral
    from nstaudio.methods.optimize import optimize

    content = harmonic_tone(1.0)
    content[len(content) // 2:] = 0  # silence, where the style term pulls the log magnitude below 0
    style = harmonic_tone(1.0, f0=330, seed=2)
    settings = dict(n_filters=128, iterations=30, optimizer=optimizer, device="cpu")
    X, _ = optimize(log_spec(content)[None].astype(np.float32), [log_spec(style).astype(np.float32)], **settings)
    assert X.min() < -0.1

    handed = []
    griffin_lim = spectral.griffin_lim
    monkeypatch.setattr(spectral, "griffin_lim", lambda S, **kw: handed.append(S.copy()) or griffin_lim(S, **kw))
    y = nst.stylize(content, style, SR, n_fft=512, phase_iters=4, **settings)
    assert len(handed) == 1 and handed[0].min() == 0 and np.all(np.isfinite(y))
