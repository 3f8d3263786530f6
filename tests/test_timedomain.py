"""The `timedomain` method: adjoint pairs, the analytic gradient back to the samples, the limiter, a run."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from test_gradients import assert_gradient, finite_difference

from nstaudio.errors import ParameterError
from nstaudio.features import random_filters
from nstaudio.kernels import cpu, numpy_backend as ref
from nstaudio.methods.timedomain import (
    Framing,
    TimeDomainObjective,
    _rfft_adjoint,
    soft_limit,
    stacked_features,
    timedomain,
)

from conftest import harmonic_tone


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 80), frame=st.integers(4, 24), hop=st.integers(1, 24), seed=st.integers(0, 100))
def test_framing_and_overlap_add_are_adjoint(n, frame, hop, seed):
    """<A y, f> == <y, A^T f>: overlap-add of windowed frames is the adjoint of framing."""
    hop = min(hop, frame)
    rng = np.random.default_rng(seed)
    framing = Framing(n, frame, hop, np.float64)
    y = rng.standard_normal((2, n))
    frames = framing(y)
    f = rng.standard_normal(frames.shape)
    assert frames.shape == (2, framing.frames, frame)
    np.testing.assert_allclose(np.sum(frames * f), np.sum(y * framing.adjoint(f)), rtol=1e-10, atol=1e-10)
    if hop <= frame // 2:  # the hops timedomain() allows: every sample gets window weight, so a gradient
        assert np.all(framing.adjoint(np.ones_like(frames)) > 0)


@pytest.mark.parametrize("frame", [8, 9])
def test_real_fft_adjoint(frame):
    rng = np.random.default_rng(frame)
    x = rng.standard_normal((2, 3, frame))
    spec = np.fft.rfft(x, axis=-1).transpose(0, 2, 1)
    dR, dI = rng.standard_normal(spec.shape), rng.standard_normal(spec.shape)
    lhs = np.sum(spec.real * dR) + np.sum(spec.imag * dI)
    np.testing.assert_allclose(lhs, np.sum(x * _rfft_adjoint(dR, dI, frame)), rtol=1e-10)


problem = st.fixed_dictionaries({
    "B": st.integers(1, 2), "n": st.integers(24, 48), "frame": st.sampled_from([8, 11, 16]),
    "hop": st.integers(2, 6), "N": st.integers(1, 5), "K": st.integers(1, 3),
    "styles": st.lists(st.integers(16, 40), min_size=1, max_size=2), "alpha": st.sampled_from([0.0, 0.3]),
    "backend": st.sampled_from([ref, cpu]), "seed": st.integers(0, 1000),
})


@settings(max_examples=25, deadline=None)
@given(p=problem)
def test_gradient_back_to_the_samples(p):
    """Through ReLU, the conv, the magnitude, the DFT and the framing, against central differences."""
    rng = np.random.default_rng(p["seed"])
    C3 = 3 * (p["frame"] // 2 + 1)
    W = random_filters(p["N"], C3, p["K"], seed=p["seed"], dtype=np.float64)
    content = rng.standard_normal((p["B"], p["n"]))
    styles = [rng.standard_normal(n) for n in p["styles"]]
    obj = TimeDomainObjective(p["backend"], W, content, styles, frame=p["frame"], hop=p["hop"], alpha=p["alpha"],
                              style_weights=list(rng.random(len(styles)) + 0.1), dtype=np.float64)
    y = rng.standard_normal(content.shape)
    loss, grad = obj(y)
    assert np.isfinite(loss) and grad.shape == y.shape
    assert_gradient(grad, finite_difference(lambda v: obj(v)[0], y))


@settings(max_examples=25, deadline=None)
@given(p=problem, temporal=st.sampled_from([0.0, 0.5, 40.0]), spectral=st.sampled_from([0.0, 0.7, 30.0]))
def test_envelope_gradients_back_to_the_samples(p, temporal, spectral):
    """The envelope terms' own value and gradient (with them less without them), against central differences."""
    rng = np.random.default_rng(p["seed"])
    # Small filters: ``terms`` is the difference of two losses, and at full-size filters their
    # Gram term reaches ~1e4, whose rounding leaves ~1e-16 * 1e4 / 1e-6 = 1e-6 of noise in each
    # central difference. The envelope terms do not depend on W; the Gram term scales as W^4.
    W = 0.01 * random_filters(p["N"], 3 * (p["frame"] // 2 + 1), p["K"], seed=p["seed"], dtype=np.float64)
    content = rng.standard_normal((p["B"], p["n"]))
    styles = [rng.standard_normal(n) for n in p["styles"]]
    settings = dict(frame=p["frame"], hop=p["hop"], alpha=p["alpha"], dtype=np.float64)
    plain = TimeDomainObjective(p["backend"], W, content, styles, **settings)
    both = TimeDomainObjective(p["backend"], W, content, styles, temporal_weight=temporal, spectral_weight=spectral,
                               **settings)
    terms = lambda v: both(v)[0] - plain(v)[0]  # noqa: E731
    y = rng.standard_normal(content.shape)
    value = terms(y)
    assert value == pytest.approx(both.last_parts["temporal"] + both.last_parts["spectral"], rel=1e-6, abs=1e-9)
    assert (value > 0) == (temporal > 0 or spectral > 0)
    assert_gradient(both(y)[1] - plain(y)[1], finite_difference(terms, y))


def test_silence_has_a_finite_gradient():
    W = random_filters(3, 3 * 9, 2, seed=0, dtype=np.float64)
    rng = np.random.default_rng(0)
    obj = TimeDomainObjective(ref, W, rng.standard_normal((1, 40)), [rng.standard_normal(30)], frame=16, hop=4,
                              dtype=np.float64)
    loss, grad = obj(np.zeros((1, 40)))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))


def test_backends_agree():
    rng = np.random.default_rng(3)
    W = random_filters(16, 3 * 33, 3, seed=1)
    content, style = rng.standard_normal((2, 600)).astype(np.float32), rng.standard_normal(500).astype(np.float32)
    y = rng.standard_normal((2, 600)).astype(np.float32)
    results = [TimeDomainObjective(b, W, content, [style], frame=64, hop=16)(y) for b in (ref, cpu)]
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-4)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-3, atol=1e-3 * np.max(np.abs(results[0][1])))


def test_soft_limit_never_clips_and_leaves_quiet_samples_alone():
    y = np.linspace(-5, 5, 10001)
    out = soft_limit(y)
    assert np.all(np.abs(out) <= 0.99)
    quiet = np.abs(y) <= 0.9
    np.testing.assert_array_equal(out[quiet], y[quiet])
    assert np.all(np.diff(out) >= 0) and np.all(np.diff(out[np.abs(y) < 2]) > 0)  # monotonic: no fold-over
    np.testing.assert_allclose(soft_limit(np.array([0.9 + 1e-7])), [0.9 + 1e-7], atol=1e-9)  # continuous


def test_stacked_features_are_real_imag_and_magnitude():
    y = harmonic_tone(0.1)[None].astype(np.float64)
    framing = Framing(y.shape[1], 64, 16, np.float64)
    Z, (R, I, M) = stacked_features(y, framing)
    np.testing.assert_allclose(M, np.abs(R + 1j * I))
    assert Z.shape == (1, 3 * 33, framing.frames)


def test_a_run_lowers_the_loss_and_keeps_the_shape():
    content = np.stack([harmonic_tone(0.3, f0=220.0), harmonic_tone(0.3, f0=330.0)])
    style = harmonic_tone(0.4, f0=500.0, seed=3)
    seen = []
    y, info = timedomain(content, [style], iterations=15, n_filters=32, frame=256, hop=64, tolerance=0,
                         device="cpu", callback=lambda i, loss: seen.append(loss))
    assert y.shape == content.shape and y.dtype == np.float32 and np.all(np.isfinite(y))
    assert np.max(np.abs(y)) < 1
    assert info["loss"] < 0.5 * info["initial_loss"] and len(seen) == info["iterations"]
    again, _ = timedomain(content, [style], iterations=3, n_filters=32, frame=256, hop=64, tolerance=0, device="cpu")
    same, _ = timedomain(content, [style], iterations=3, n_filters=32, frame=256, hop=64, tolerance=0, device="cpu")
    np.testing.assert_array_equal(again, same)  # same seed, same output
    with pytest.raises(ParameterError, match="hop"):
        timedomain(content, [style], iterations=1, n_filters=4, frame=256, hop=200)
    with pytest.raises(ParameterError, match="fewer than one 256-sample frame"):
        timedomain(content, [style[:100]], iterations=1, n_filters=4, frame=256, hop=64)


def test_stylize_timedomain_keeps_rate_length_and_channels():
    import nstaudio as nst

    content = np.stack([harmonic_tone(0.5, 44100), harmonic_tone(0.5, 44100, f0=330.0)])
    style = harmonic_tone(0.6, 16000, f0=600.0, seed=2)
    y, info = nst.stylize(content, style, 44100, style_sr=16000, method="timedomain", n_fft=256, n_filters=16,
                          iterations=4, return_info=True)
    assert y.shape == content.shape and np.all(np.isfinite(y)) and np.max(np.abs(y)) < 1
    assert info.method == "timedomain" and info.iterations >= 1 and np.isnan(info.phase_convergence_db)
    with pytest.raises(ParameterError, match="does not apply to the timedomain"):
        nst.stylize(content, style, 44100, method="timedomain", optimizer="plbfgs")
    with pytest.raises(ParameterError, match="reconstructs no phase"):
        nst.stylize(content, style, 44100, method="timedomain", phase_iters=10)
    with pytest.raises(ParameterError, match="n_fft/2 = 128 for timedomain"):
        nst.stylize(content, style, 44100, method="timedomain", n_fft=256, hop_length=200)
    with pytest.raises(nst.AudioError, match="style is too short"):
        nst.stylize(content, style[:100], 44100, style_sr=16000, method="timedomain", n_fft=256)


def test_cli_timedomain(tmp_path, wav_files):
    from click.testing import CliRunner

    from nstaudio.cli.main import main

    content = wav_files("content.wav", harmonic_tone(0.5))
    style = wav_files("style.wav", harmonic_tone(0.6, f0=500.0, seed=1))
    out = tmp_path / "out.wav"
    result = CliRunner().invoke(main, ["run", content, style, "--method", "timedomain", "--n-fft", "256",
                                       "--filters", "8", "--iterations", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "phase" not in result.output.split("wrote")[-1]
    assert out.exists()
    result = CliRunner().invoke(main, ["run", content, "--method", "timedomain", "-o", str(out)])
    assert result.exit_code == 2 and "missing STYLE" in result.output
