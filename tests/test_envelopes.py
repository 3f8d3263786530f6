"""Verma & Smith's envelope terms through stylize and the CLI (their gradients: tests/test_gradients.py)."""

import numpy as np
import pytest
from click.testing import CliRunner

import nstaudio as nst
from nstaudio.cli.main import main
from nstaudio.errors import ParameterError

from conftest import SR, harmonic_tone

FAST = dict(iterations=4, n_filters=16, phase_iters=2, device="cpu", tolerance=0)


def test_the_temporal_envelope_pulls_the_output_s_dynamics_to_the_content_s():
    content, style = harmonic_tone(1.0), harmonic_tone(1.0, f0=330, seed=1)
    X = np.log1p(np.abs(nst.stft(content)))[None]
    S = np.log1p(np.abs(nst.stft(style)))
    settings = dict(iterations=30, n_filters=32, tolerance=0, device="cpu")
    Y_plain, plain = nst.optimize(X, [S], **settings)
    Y, held = nst.optimize(X, [S], temporal_weight=100.0, **settings)
    assert held["temporal_loss"] > 0 and plain["temporal_loss"] == 0
    envelope_error = lambda Z: np.linalg.norm(Z[0].mean(axis=0) - X[0].mean(axis=0))  # noqa: E731
    assert envelope_error(Y) < 0.5 * envelope_error(Y_plain)


def test_stylize_and_the_cli_take_both_weights(tmp_path):
    content, style = harmonic_tone(1.0), harmonic_tone(1.0, f0=330)
    y, info = nst.stylize(content, style, SR, temporal_weight=1.0, spectral_weight=2.0, return_info=True, **FAST)
    assert np.all(np.isfinite(y)) and np.isfinite(info.loss)
    for name, clip in (("c.wav", content), ("s.wav", style)):
        nst.save(tmp_path / name, clip, SR)
    result = CliRunner().invoke(main, [
        "run", str(tmp_path / "c.wav"), str(tmp_path / "s.wav"), "-o", str(tmp_path / "o.wav"), "--iterations", "3",
        "--filters", "16", "--phase-iters", "2", "--temporal-weight", "0.5", "--spectral-weight", "0.5", "--quiet"])
    assert result.exit_code == 0, result.output


def test_timedomain_takes_both_weights_and_the_temporal_one_holds_the_dynamics(tmp_path):
    """The envelopes on the log1p magnitudes of the waveform's frames: a quiet-loud content keeps its dynamics."""
    content = harmonic_tone(1.0) * np.resize(np.repeat([0.05, 1.0], SR // 4), SR).astype(np.float32)
    style = harmonic_tone(1.0, f0=330, seed=1)
    settings = dict(method="timedomain", iterations=60, n_filters=16, tolerance=0, device="cpu", alpha=0.0,
                    return_info=True, match_loudness=False)
    plain, plain_info = nst.stylize(content, style, SR, **settings)
    held, held_info = nst.stylize(content, style, SR, temporal_weight=1e3, spectral_weight=1.0, **settings)
    assert np.all(np.isfinite(held)) and held_info.loss > 0 and np.isfinite(plain_info.loss)
    envelope = lambda y: np.log1p(np.abs(nst.stft(y[0] if y.ndim > 1 else y))).mean(axis=0)  # noqa: E731
    error = lambda y: np.linalg.norm(envelope(y) - envelope(content))  # noqa: E731
    # the log-domain term pulls slowly against the Gram term's scale: measured 0.61 -> 0.41 here
    assert error(held) < 0.75 * error(plain)
    for name, clip in (("c.wav", content), ("s.wav", style)):
        nst.save(tmp_path / name, clip, SR)
    result = CliRunner().invoke(main, [
        "run", str(tmp_path / "c.wav"), str(tmp_path / "s.wav"), "-o", str(tmp_path / "o.wav"), "--method",
        "timedomain", "--iterations", "2", "--filters", "8", "--temporal-weight", "0.5", "--spectral-weight", "0.5",
        "--quiet"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("given, message", [
    (dict(method="feedforward", temporal_weight=1.0), "temporal_weight does not apply to the feedforward method"),
    (dict(temporal_weight=-1.0), "temporal_weight"),
    (dict(spectral_weight=float("nan")), "spectral_weight"),
    (dict(spectral_weight=1e9), "spectral_weight"),
])
def test_what_is_refused(given, message):
    content = harmonic_tone(0.5)
    with pytest.raises(ParameterError, match=message):
        nst.stylize(content, content, SR, **{**FAST, **given})
