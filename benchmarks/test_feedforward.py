"""Case 5: the feedforward method: training a style model, then one-pass stylization against torch.

Needs a training corpus, ``python scripts/make_corpus.py build/corpus`` (or point
``NSTAUDIO_CORPUS`` at a directory of recordings), and a loss network: the shipped one, or
``build/lossnet.npz`` / ``NSTAUDIO_LOSSNET`` (``scripts/make_lossnet.py ... -o build/lossnet.npz``);
skipped with that reason otherwise. ``NSTAUDIO_STYLE_MODEL`` names an already trained style model
(for the bundled violin) to time stylization without training one first.
"""

import os
import time

import numpy as np
import pytest

import nstaudio as nst
from audio_fixtures import SR, clip, log_spectrogram
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
    """Gram style loss on the `optimize` method's random-filter features: content vs stylized output."""
    from nstaudio.kernels import get_backend
    from nstaudio.methods.optimize import initial_state
    from nstaudio.objective import StyleTransferObjective

    content = clip("content", SECONDS)
    start = time.perf_counter()
    y = nst.stylize(content, sr=SR, model=style_model)
    seconds = time.perf_counter() - start
    X_content, X_output, X_style = (log_spectrogram(a) for a in (content, y, clip("style", 4)))
    W, _ = initial_state((1, *X_content.shape), n_filters=4096, width=11, init="noise", seed=0)
    objective = StyleTransferObjective(get_backend("cpu"), W, None, [X_style], alpha=0.0, shape=(1, *X_content.shape))

    def style_loss(X):
        return objective.style_loss(objective.features(X))[0]

    before, after = style_loss(X_content), style_loss(X_output)
    report(f"5. style loss (random-filter Gram) of the stylized {SECONDS} s vs the content", seconds, None,
           f"{before:.4g} -> {after:.4g} ({after / before - 1:+.0%})")
    assert after < 0.8 * before


def test_one_pass_speed(torch, report, style_model):
    from torch_reference import torch_feedforward, torch_network

    from nstaudio.methods.feedforward import feedforward

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
