"""The gan method end to end: train_gan, its model file, stylize with it, and the train-gan command."""

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

import nstaudio as nst
from nstaudio.cli.main import main
from nstaudio.methods import REGISTRY
from nstaudio.nn import melgan
from nstaudio.nn.gan_features import apply_generator, crossfade_windows
from nstaudio.nn.melgan import GanArchitecture

from conftest import harmonic_tone

SMALL = GanArchitecture(n_mels=16, frames=8, channels=4, critic_channels=4, embedding=3)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _domains():
    content = [harmonic_tone(1.5, 16000, f0=f0, seed=i) for i, f0 in enumerate((150.0, 300.0))]
    style = [harmonic_tone(1.5, 22050, f0=900.0, seed=5)]
    return content, style


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("gan") / "model.npz"
    content, style = _domains()
    nst.train_gan(content, style, 16000, style_sr=22050, steps=5, batch_size=2, arch=SMALL, checkpoint=path,
                  checkpoint_every=2)
    return path


def test_a_model_file_stylizes_with_its_own_method(model_file):
    model = nst.load_model(model_file)
    assert model.kind == "gan" and model.arch == SMALL
    assert model.spectrogram_settings == (melgan.SR, melgan.N_FFT, melgan.HOP_LENGTH)
    assert REGISTRY.resolve(None, model).name == "gan"
    content = np.stack([harmonic_tone(1.0, 44100), harmonic_tone(1.0, 44100, f0=330.0)])
    y, info = nst.stylize(content, None, 44100, model=model, return_info=True)
    assert y.shape == content.shape and np.all(np.isfinite(y)) and info.method == "gan"
    with pytest.raises(nst.ParameterError, match="style model.*got a gan model"):
        nst.stylize(content, None, 44100, model=model, method="feedforward")


def test_resumed_training_equals_an_uninterrupted_run(tmp_path):
    content, style = _domains()
    kwargs = dict(style_sr=22050, steps=9, batch_size=2, arch=SMALL, checkpoint_every=4)
    whole = nst.train_gan(content, style, 16000, **kwargs)
    path = tmp_path / "run.npz"
    with pytest.raises(KeyboardInterrupt):
        def stop(step, steps, losses):
            if step == 6:  # the file holds step 4: a generator step comes next
                raise KeyboardInterrupt
        nst.train_gan(content, style, 16000, checkpoint=path, callback=stop, **kwargs)
    with pytest.raises(nst.CheckpointError, match="unfinished"):
        nst.load_model(path)
    resumed = nst.train_gan(content, style, 16000, checkpoint=path, resume=True, **kwargs)
    for layer, values in whole.params.items():
        for name, a in values.items():
            np.testing.assert_array_equal(resumed.params[layer][name], a)
    assert resumed.meta["final_loss"] == whole.meta["final_loss"]


def test_a_model_of_other_spectrogram_settings_trains_stylizes_and_resumes_only_with_them(tmp_path):
    content, style = _domains()
    settings = dict(sr_work=8000, n_fft=512, hop_length=128)
    path = tmp_path / "m.npz"
    with pytest.raises(KeyboardInterrupt):
        def stop(step, steps, losses):
            if step == 2:
                raise KeyboardInterrupt
        nst.train_gan(content, style, 16000, style_sr=22050, steps=3, batch_size=2, arch=SMALL, checkpoint=path,
                      checkpoint_every=1, callback=stop, **settings)
    with pytest.raises(nst.CheckpointError, match="other settings.*hop_length"):
        nst.train_gan(content, style, 16000, style_sr=22050, steps=3, batch_size=2, arch=SMALL, checkpoint=path,
                      resume=True, **dict(settings, hop_length=64))
    nst.train_gan(content, style, 16000, style_sr=22050, steps=3, batch_size=2, arch=SMALL, checkpoint=path,
                  resume=True, **settings)
    model = nst.load_model(path)
    assert model.spectrogram_settings == (8000, 512, 128)
    y = nst.stylize(content[0], None, 16000, model=model)
    assert y.shape == content[0].shape and np.all(np.isfinite(y))
    # the model works below 4 kHz: nothing comes back above it
    power = np.abs(np.fft.rfft(y)) ** 2
    above = np.fft.rfftfreq(y.shape[0], 1 / 16000) > 4500
    assert power[above].sum() < 1e-3 * power.sum()
    for bad, message in [(dict(n_fft=8), "n_fft"), (dict(hop_length=2000), "hop_length"), (dict(sr_work=10), "sr_work")]:
        with pytest.raises(nst.ParameterError, match=message):
            nst.check_train_gan(**bad)


def test_training_refuses_clips_too_short_for_a_crop():
    content, style = _domains()
    with pytest.raises(nst.AudioError, match="every style recording is shorter than the 24-frame"):
        nst.train_gan(content, [style[0][:4000]], 16000, style_sr=22050, steps=1, arch=SMALL)
    with pytest.raises(nst.ParameterError, match="critic_steps"):
        nst.check_train_gan(critic_steps=-1)


def test_crossfade_weights_sum_to_one_and_windows_cover_every_frame():
    for length, window in ((5, 8), (50, 24), (24, 24)):
        starts, weight = crossfade_windows(length, window)
        total = np.zeros(starts[-1] + window)
        for s in starts:
            total[s:s + window] += weight
        front = window // 2
        np.testing.assert_allclose(total[front:front + length], 1.0, atol=1e-12)


def test_a_window_longer_than_the_clip_and_plain_concatenation_keep_the_length(model_file):
    model = nst.load_model(model_file)
    unit = np.random.default_rng(0).uniform(-1, 1, (2, SMALL.n_mels, 13)).astype(np.float32)
    for crossfade in (True, False):
        out = apply_generator(model.arch, model.params, model.state, unit, crossfade=crossfade)
        assert out.shape == unit.shape and np.all(np.abs(out) <= 1)
    # each item is stylized on its own
    one = apply_generator(model.arch, model.params, model.state, unit[:1])
    np.testing.assert_allclose(one, apply_generator(model.arch, model.params, model.state, unit)[:1], atol=1e-6)


def test_train_gan_command_and_run_with_its_model(tmp_path):
    content_dir, style_dir = tmp_path / "content", tmp_path / "style"
    content_dir.mkdir()
    style_dir.mkdir()
    content, style = _domains()
    for i, y in enumerate(content):
        sf.write(content_dir / f"c{i}.wav", y, 16000)
    sf.write(style_dir / "s.flac", style[0], 22050)
    model = tmp_path / "m.npz"
    result = invoke("train-gan", content_dir, style_dir, "-o", model, "--steps", "2", "--batch-size", "1", "--sr",
                    "12000", "--n-fft", "1024", "--hop", "160", "--identity-warmup", "1")
    assert result.exit_code == 0, result.output
    assert "gan 192 mel bands after 2 steps" in result.output and "critic" in result.output
    trained = nst.load_model(model)
    assert trained.spectrogram_settings == (12000, 1024, 160) and trained.meta["settings"]["identity_warmup"] == 1
    out = tmp_path / "out.wav"
    result = invoke("run", content_dir / "c0.wav", "--model", model, "-o", out)
    assert result.exit_code == 0, result.output
    assert sf.read(out)[0].shape == content[0].shape
    # the user's mistakes: one line, exit 2
    for args, message in [
        (("run", content_dir / "c0.wav", "--method", "gan", "-o", tmp_path / "x.wav"), "needs --model"),
        (("run", content_dir / "c0.wav", "--model", model, "--method", "optimize"), "methods that run models"),
        (("train-gan", content_dir, tmp_path / "nowhere", "-o", tmp_path / "n.npz"), "nowhere"),
        (("train-gan", content_dir, style_dir, "-o", content_dir / "c0.wav"), "c0.wav"),
        (("train-gan", content_dir, style_dir, "-o", model, "--resume"), "nothing to resume"),
        (("train-gan", content_dir, style_dir, "-o", tmp_path / "n.npz", "--hop", "0"), "hop_length"),
        (("train-gan", content_dir, style_dir, "-o", tmp_path / "n.npz", "--steps", "3", "--identity-warmup", "3"),
         "identity_warmup"),
    ]:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_forged_model_files_are_refused(model_file, tmp_path):
    import json

    from nstaudio.nn.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(model_file)
    assert ckpt.history.shape == (5, 4)
    unknown = tmp_path / "network.npz"
    with np.load(model_file) as npz:
        arrays = {key: npz[key] for key in npz.files}
    header = json.loads(arrays["header"].tobytes())
    arrays["header"] = np.frombuffer(json.dumps(dict(header, network="transformer")).encode(), dtype=np.uint8)
    np.savez(unknown, **arrays)
    mislabelled = tmp_path / "kind.npz"
    save_checkpoint(mislabelled, ckpt.arch, ckpt.params, ckpt.state, meta=dict(ckpt.meta, kind="style"))
    history = tmp_path / "history.npz"
    save_checkpoint(history, ckpt.arch, ckpt.params, ckpt.state, meta=ckpt.meta, history=ckpt.history[:, :3])
    for path, message in ((unknown, "a network nstaudio does not know"), (mislabelled, "holding another network"),
                          (history, "history has shape")):
        with pytest.raises(nst.CheckpointError, match=message) as info:
            nst.load_model(path)
        assert len(str(info.value).splitlines()) == 1


def test_forged_spectral_norms_settings_and_resumes_are_refused(model_file, tmp_path):
    from nstaudio.nn.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(model_file)
    zero = {layer: dict(values) for layer, values in ckpt.state.items()}
    zero["sn_gen.enc0"]["u"] = np.zeros_like(zero["sn_gen.enc0"]["u"])
    cases = [(dict(state=zero), "sn_gen.enc0: u has norm 0"),
             (dict(meta=dict(ckpt.meta, sr=8000, n_fft=16, hop_length=17)), "hop_length is 17, not an integer from 1 to 16")]
    for i, (change, message) in enumerate(cases):
        path = tmp_path / f"forged{i}.npz"
        parts = {"state": ckpt.state, "meta": ckpt.meta, **change}
        save_checkpoint(path, ckpt.arch, ckpt.params, parts["state"], meta=parts["meta"])
        with pytest.raises(nst.CheckpointError, match=message):
            nst.load_model(path)
    # an unfinished run of another kind is refused before any audio is read
    run = tmp_path / "run.npz"
    content, style = _domains()
    with pytest.raises(KeyboardInterrupt):
        def stop(step, steps, losses):
            if step == 2:
                raise KeyboardInterrupt
        nst.train_gan(content, style, 16000, style_sr=22050, steps=4, batch_size=2, arch=SMALL, checkpoint=run,
                      checkpoint_every=1, callback=stop)
    with pytest.raises(nst.CheckpointError, match="trains a gan model, not a loss network"):
        nst.check_train_lossnet(checkpoint=run, resume=True)


def test_a_clip_too_long_for_this_machine_is_refused_before_any_work(model_file, monkeypatch):
    from nstaudio import limits

    monkeypatch.setattr(limits, "machine_memory", lambda: 10**6)
    with pytest.raises(nst.ParameterError, match="need at least"):
        nst.stylize(harmonic_tone(2.0, 16000), None, 16000, model=nst.load_model(model_file))


def test_two_threads_stylize_with_one_model_as_one_thread_does(model_file):
    from concurrent.futures import ThreadPoolExecutor

    model = nst.load_model(model_file)
    clips = [harmonic_tone(1.0, 16000, f0=f0, seed=i) for i, f0 in enumerate((200.0, 410.0))]
    serial = [nst.stylize(y, None, 16000, model=model) for y in clips]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda y: nst.stylize(y, None, 16000, model=model), clips))
    for a, b in zip(serial, together):
        np.testing.assert_array_equal(a, b)
