"""Case 5: the feedforward method: training a style model, then one-pass stylization against torch.

Needs a training corpus, ``python scripts/make_corpus.py build/corpus`` (or point
``NSTAUDIO_CORPUS`` at a directory of recordings), skipped with that reason otherwise; the loss
network is ``build/lossnet.npz`` / ``NSTAUDIO_LOSSNET`` where present, else the shipped one.
``NSTAUDIO_STYLE_MODEL`` names an already trained style model (for the bundled violin) to time
stylization without training one first.
"""

import os
import time

import numpy as np
import pytest

import nstaudio as nst

from audio_fixtures import SR, clip, log_spectrogram, recording
from conftest import alternate

BUILD = os.path.join(os.path.dirname(__file__), os.pardir, "build")
CORPUS = os.environ.get("NSTAUDIO_CORPUS", os.path.join(BUILD, "corpus"))
LOSSNET = os.environ.get("NSTAUDIO_LOSSNET", os.path.join(BUILD, "lossnet.npz"))
SECONDS = 10


@pytest.fixture(scope="module")
def style_model(report):
    """A style model for the bundled violin, trained with the defaults on the corpus (timed)."""
    if os.environ.get("NSTAUDIO_STYLE_MODEL"):
        return nst.load_model(os.environ["NSTAUDIO_STYLE_MODEL"], kind="style")
    if not os.path.isdir(CORPUS):
        pytest.skip(f"no training corpus at {CORPUS}: run scripts/make_corpus.py build/corpus or set NSTAUDIO_CORPUS")
    try:
        lossnet = nst.load_model(LOSSNET, kind="lossnet") if os.path.exists(LOSSNET) else nst.default_lossnet()
    except nst.NstAudioError as exc:
        pytest.skip(str(exc))
    clips, rates, paths = nst.load_corpus(CORPUS, sr=SR)
    minutes = sum(c.shape[1] for c in clips) / SR / 60
    start = time.perf_counter()
    model = nst.train_style(clip("style", 4), clips, SR, lossnet=lossnet)
    seconds = time.perf_counter() - start
    report(f"5. train a style model, defaults ({model.meta['steps']} steps, {len(paths)} clips, {minutes:.0f} min)",
           seconds, None, f"final training loss {model.meta['final_loss']:.4g}; target < 600 s")
    return model


def test_stylized_output_takes_the_style(report, style_model):
    """Gram style loss on the `optimize` method's random-filter features: content vs stylized output.

    Measured on 10 s of the bundled piano, and of speech and drums where those recordings are at
    hand (``NSTAUDIO_AUDIO_DIR``), each against the bundled violin. A log1p magnitude depends on
    the level and timbre does not, so content and output are each measured at the loudness that
    brings them closest to the style (a grid of gains from -36 dB to +36 dB around peak 1; the
    style at the level the networks are trained at); the plain measure (content as recorded,
    output at the content's loudness) is reported beside it.
    """
    from nstaudio.kernels import get_backend
    from nstaudio.methods.optimize import initial_state
    from nstaudio.models import TRAINING_PEAK
    from nstaudio.objective import StyleTransferObjective

    style = clip("style", 4)
    X_style = log_spectrogram(style * np.float32(TRAINING_PEAK / np.max(np.abs(style))))
    gains = 2.0 ** (np.arange(-12, 13) / 2)
    contents = {"piano": clip("content", SECONDS), "speech": recording("speech_espeak.wav", SECONDS),
                "drums": recording("drums.wav", SECONDS)}
    for name, content in contents.items():
        if content is None:
            continue  # speech and drums where the recordings are at hand (audio_fixtures.AUDIO_DIR)
        start = time.perf_counter()
        y, info = nst.stylize(content, sr=SR, model=style_model, return_info=True)
        seconds = time.perf_counter() - start
        frames = log_spectrogram(content).shape[1]
        W, _ = initial_state((1, X_style.shape[0], frames), n_filters=4096, width=11, init="noise", seed=0)
        objective = StyleTransferObjective(get_backend("cpu"), W, None, [X_style], alpha=0.0,
                                           shape=(1, X_style.shape[0], frames))

        def style_loss(a):
            return objective.style_loss(objective.features(log_spectrogram(a)))[0]

        def best_gain_style_loss(a):
            a = a / np.max(np.abs(a))
            return min(style_loss(a * np.float32(g)) for g in gains)

        before, after = best_gain_style_loss(content), best_gain_style_loss(y)
        plain_before, plain_after = style_loss(content), style_loss(y)
        report(f"5. style loss (random-filter Gram) of 10 s of {name} stylized as violin, vs the content", seconds,
               None, f"{before:.4g} -> {after:.4g} ({after / before - 1:+.0%}) at each one's best loudness; plain "
                     f"{plain_before:.4g} -> {plain_after:.4g} ({plain_after / plain_before - 1:+.0%}); Griffin-Lim "
                     f"{info.phase_convergence_db:.1f} dB")
        assert after < 0.5 * before, name


def test_one_pass_speed(torch, report, style_model):
    from nstaudio.methods.feedforward import feedforward

    from torch_reference import torch_feedforward, torch_network

    content = clip("content", SECONDS)
    X = log_spectrogram(content)[None]
    net = torch_network(*style_model.triple)

    def torch_pass():
        with torch.no_grad():
            T = X.shape[2]
            padded = torch.nn.functional.pad(torch.as_tensor(X), (0, (-T) % 16), mode="replicate")
            return np.maximum(net(padded)[:, :, :T].numpy(), 0)

    t_ours, t_torch, ours, theirs = alternate(lambda: feedforward(X, style_model.triple), torch_pass, repeats=5)
    interior = slice(64, -64)  # the edges differ by design: nstaudio pads chunks by repeating the edge frames
    error = np.max(np.abs(ours[..., interior] - theirs[..., interior])) / np.max(np.abs(theirs))
    report(f"5. feedforward network pass, {SECONDS} s (T={X.shape[2]})", t_ours, t_torch,
           f"max relative difference {error:.1e}")
    assert error < 1e-4

    t_ours, t_torch, y, y_torch = alternate(lambda: nst.stylize(content, sr=SR, model=style_model),
                                            lambda: torch_feedforward(content, net), repeats=5)
    report(f"5. stylize {SECONDS} s with a style model (STFT, network, 32 Griffin-Lim iterations)", t_ours, t_torch,
           f"{SECONDS / t_ours:.0f}x real time (target 20x)")
    assert y.shape == y_torch.shape == content.shape
