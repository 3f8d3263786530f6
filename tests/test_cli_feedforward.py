"""The feedforward commands: train-lossnet, train-style, run --model, and their user mistakes."""

import os

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

import nstaudio as nst
from nstaudio.cli.main import main

from conftest import harmonic_tone

TINY_NET = ["--steps", "6", "--batch-size", "2", "--crop", "16", "--checkpoint-every", "4"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ff")
    corpus = root / "corpus"
    (corpus / "speech").mkdir(parents=True)
    for i, f0 in enumerate((150.0, 220.0)):
        sf.write(corpus / f"tone{i}.wav", harmonic_tone(1.0, 22050, f0=f0, seed=i), 22050)
    sf.write(corpus / "speech" / "low.flac", harmonic_tone(1.0, 16000, f0=90.0), 16000)
    style = root / "style.wav"
    sf.write(style, harmonic_tone(1.0, 44100, f0=700.0, seed=3), 44100)
    content = root / "content.wav"
    sf.write(content, np.stack([harmonic_tone(0.8, 44100), harmonic_tone(0.8, 44100, f0=330.0)]).T, 44100,
             subtype="PCM_24")
    lossnet = root / "lossnet.npz"
    result = invoke("train-lossnet", corpus, "-o", lossnet, "--channels", "8,8,4,4", "--n-fft", "256", "--hop", "64",
                    *TINY_NET)
    assert result.exit_code == 0, result.output
    model = root / "style.npz"
    result = invoke("train-style", style, corpus, "--lossnet", lossnet, "-o", model, *TINY_NET)
    assert result.exit_code == 0, result.output
    return root, corpus, style, content, lossnet, model


def test_train_and_run_with_a_model(setup):
    root, corpus, style, content, lossnet, model = setup
    out = root / "out.flac"
    result = invoke("run", content, "--model", model, "-o", out)
    assert result.exit_code == 0, result.output
    assert "one pass of style.npz" in result.output
    y, sr = sf.read(out)
    assert sr == 44100 and y.shape == (int(0.8 * 44100), 2) and sf.info(out).subtype == "PCM_24"
    result = invoke("run", content, "--model", model, "--method", "feedforward", "-q", "-o", root / "out2.wav")
    assert result.exit_code == 0 and result.output == ""


def test_train_style_uses_the_shipped_loss_network_by_default(setup, tmp_path):
    import nstaudio as nst

    root, corpus, style, content, lossnet, model = setup
    out = tmp_path / "m.npz"
    result = invoke("train-style", style, corpus, "-o", out, "--steps", "1", "--batch-size", "2", "--crop", "16", "-q")
    assert result.exit_code == 0, result.output
    trained = nst.load_model(out, kind="style")
    assert trained.arch == nst.default_lossnet().arch and trained.spectrogram_settings == (22050, 2048, 512)


def test_help_of_the_training_commands():
    for command, options in (("train-lossnet", ["--steps", "--channels", "--n-fft", "--resume", "--output"]),
                             ("train-style", ["--lossnet", "--alpha", "--beta", "--resume", "--checkpoint-every"])):
        result = invoke(command, "--help")
        assert result.exit_code == 0
        for option in options:
            assert option in result.output
    assert "--model" in invoke("run", "--help").output


def test_resume_from_the_command_line(setup, tmp_path):
    import nstaudio as nst
    from nstaudio.nn.checkpoint import load_checkpoint

    root, corpus, style, content, lossnet, model = setup
    out, whole = tmp_path / "net.npz", tmp_path / "whole.npz"
    settings = ["--channels", "4,4,4,4", "--n-fft", "128", "--hop", "32", "--batch-size", "2", "--crop", "16",
                "--checkpoint-every", "2", "--steps", "8"]
    assert invoke("train-lossnet", corpus, "-o", whole, *settings).exit_code == 0
    result = invoke("train-lossnet", corpus, "-o", whole, *settings, "--resume")
    assert result.exit_code == 2 and "nothing to resume" in result.output

    def interrupt(step, steps, loss):  # as Ctrl-C after the checkpoint at step 4 would
        if step == 5:
            raise KeyboardInterrupt

    clips, rates, _ = nst.load_corpus(corpus)
    with pytest.raises(KeyboardInterrupt):
        nst.train_lossnet(clips, rates, steps=8, channels=(4, 4, 4, 4), n_fft=128, hop_length=32, batch_size=2,
                          crop=16, checkpoint=out, checkpoint_every=2, callback=interrupt)
    result = invoke("train-lossnet", corpus, "-o", out, *settings)
    assert result.exit_code == 2 and "unfinished training run (step 4 of 8)" in result.output
    result = invoke("train-lossnet", corpus, "-o", out, *settings, "--resume")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(load_checkpoint(out).params["enc0"]["W"], load_checkpoint(whole).params["enc0"]["W"])


@pytest.mark.parametrize("case", ["model_and_style", "no_style", "feedforward_without_model", "lossnet_as_model",
                                  "missing_model", "output_is_model", "n_fft_conflict", "missing_corpus",
                                  "empty_corpus", "output_is_style", "bad_channels", "bad_lossnet", "bad_steps",
                                  "corrupt_corpus_file", "model_with_optimize", "short_corpus_clip",
                                  "unusable_device"])
def test_mistakes_get_one_clear_line(setup, tmp_path, case):
    root, corpus, style, content, lossnet, model = setup
    if case == "unusable_device" and "cuda" in nst.available_backends():
        pytest.skip("this machine can train on cuda")
    out = tmp_path / "out.wav"
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.wav").write_bytes(b"RIFF....WAVEjunk")
    short = tmp_path / "short"
    short.mkdir()
    sf.write(short / "long.wav", harmonic_tone(2.0, 22050), 22050)
    sf.write(short / "blip.wav", harmonic_tone(0.02, 22050), 22050)
    args, message = {
        "model_and_style": (["run", content, style, "--model", model, "-o", out], "not both"),
        "no_style": (["run", content, "-o", out], "missing STYLE"),
        "feedforward_without_model": (["run", content, style, "--method", "feedforward", "-o", out], "needs --model"),
        "lossnet_as_model": (["run", content, "--model", lossnet, "-o", out], "not a style model"),
        "missing_model": (["run", content, "--model", tmp_path / "nope.npz", "-o", out], "no such checkpoint"),
        "output_is_model": (["run", content, "--model", model, "-o", model], "is one of the inputs"),
        "n_fft_conflict": (["run", content, "--model", model, "--n-fft", "512", "-o", out], "differs from the model"),
        "missing_corpus": (["train-style", style, tmp_path / "nope", "--lossnet", lossnet, "-o", tmp_path / "m.npz"],
                           "no such directory"),
        "empty_corpus": (["train-lossnet", empty, "-o", tmp_path / "m.npz"], "no audio files"),
        "output_is_style": (["train-style", style, corpus, "--lossnet", lossnet, "-o", style], "is one of the inputs"),
        "bad_channels": (["train-lossnet", corpus, "-o", tmp_path / "m.npz", "--channels", "8,x"], "--channels"),
        "bad_lossnet": (["train-style", style, corpus, "--lossnet", model, "-o", tmp_path / "m.npz"],
                        "not a loss network"),
        "bad_steps": (["train-lossnet", corpus, "-o", tmp_path / "m.npz", "--steps", "0"], "steps"),
        "corrupt_corpus_file": (["train-lossnet", broken, "-o", tmp_path / "m.npz"], "x.wav: not a readable audio"),
        "model_with_optimize": (["run", content, "--model", model, "--method", "optimize", "-o", out],
                                "not by optimize"),
        "short_corpus_clip": (["train-lossnet", short, "-o", tmp_path / "m.npz"], "blip.wav is too short"),
        "unusable_device": (["train-style", style, corpus, "--lossnet", lossnet, "--device", "cuda", "-o",
                             tmp_path / "m.npz"], "device 'cuda' is unavailable"),
    }[case]
    before = {p: p.read_bytes() for p in (style, model, lossnet)}
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and not (tmp_path / "m.npz").exists()
    assert all(p.read_bytes() == data for p, data in before.items())  # inputs untouched
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".") or name.endswith(".tmp")]
