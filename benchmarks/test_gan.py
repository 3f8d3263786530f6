"""Case 7: the gan method (MelGAN-VC): a training step beside torch, stylizing speed, mel inversion, seams.

- One training step (the generator's and the critic's losses and gradients) against the same
  networks and losses in torch autograd (``torch_gan.py``), default architecture, batch 16.
- Stylizing 10 s: the generator costs the same trained or not, so a freshly initialised model
  is timed (features, generator, mel inversion and Griffin-Lim).
- Mel to linear power on true spectrograms of ../shared/audio: mel-spectral and linear
  spectral convergence after 0, 10 and 50 steps of :func:`nstaudio.mel.mel_to_power`.
- What the style domain's own recordings (``build/violin`` or ``NSTAUDIO_GAN_STYLE_DIR``) score
  as outputs of each content on the quality measures: what a generator whose output could not
  be told from the style domain would score (the measure compares with one violin clip).
- With a trained model (``build/gan-models/violin.npz`` or ``NSTAUDIO_GAN_MODEL``; the README
  says how to train one): the seam at window borders, crossfaded against MelGAN-VC's plain
  concatenation, and the quality measures on the pairs with a violin style.
The section "gan" of RESULTS.md holds the last whole run of this module.
"""

import datetime
import os
import time

import numpy as np
import pytest

import nstaudio as nst
from nstaudio import audio, mel, quality, spectral
from nstaudio.models import TRAINING_PEAK, Network
from nstaudio.nn import gan_features, melgan
from nstaudio.nn.melgan import GanArchitecture
from nstaudio.nn.trainers.gan import GanWeights, critic_loss, generator_loss

from audio_fixtures import AUDIO_DIR
from conftest import alternate, machine_description, module_ran_whole, write_section

BUILD = os.path.join(os.path.dirname(__file__), os.pardir, "build")
MODEL = os.environ.get("NSTAUDIO_GAN_MODEL", os.path.join(BUILD, "gan-models", "violin.npz"))
STYLE_DIR = os.environ.get("NSTAUDIO_GAN_STYLE_DIR", os.path.join(BUILD, "violin"))
VIOLIN_PAIRS = ["piano.wav", "drums.wav", "speech_festival.wav", "piano_stereo_44k.wav"]
_lines = []


@pytest.fixture(scope="module", autouse=True)
def section(request):
    yield
    if module_ran_whole(request) and _lines:
        write_section("gan", f"Machine: {machine_description()}. Date: {datetime.date.today()}. Written by "
                      "benchmarks/test_gan.py.",
                      "\n".join(_lines))


def _fresh_networks(seed=0):
    arch = GanArchitecture()
    rng = np.random.default_rng(seed)
    params, state = {}, {}
    for net in arch.networks():
        p, s = net.init_params(rng)
        params.update(p)
        state.update(s)
    return arch, params, state


def _relative(ours, theirs):
    return float(np.linalg.norm(ours - theirs) / max(np.linalg.norm(theirs), 1e-30))


def test_training_step_against_torch(torch, report):
    import torch_gan

    arch, params, state = _fresh_networks()
    nets = arch.networks()
    rng = np.random.default_rng(1)
    a, b = (rng.uniform(-1, 1, (16, arch.n_mels, 3 * arch.frames)).astype(np.float32) for _ in range(2))
    weights = GanWeights()
    tree = torch_gan.leaves(params)
    reference = torch_gan.TorchGan(tree, state)
    ta, tb = torch.as_tensor(a), torch.as_tensor(b)
    gen_layers = nets[0].layer_names() + nets[1].layer_names()

    def ours():  # one step that trains all three networks, the critic on the generator's output of this batch
        parts, g, fake = generator_loss(nets, params, state, a, b, weights)
        value, c = critic_loss(nets, params, state, a, b, fake)
        return parts["total"], value, g, c

    def theirs():
        total, fake = torch_gan.generator_losses(reference, ta, tb, arch.frames, weights)
        g = torch_gan.grads_of(total, tree, gen_layers)
        value = torch_gan.critic_loss(reference, ta, tb, arch.frames, fake.detach())
        c = torch_gan.grads_of(value, tree, nets[2].layer_names())
        return total.item(), value.item(), g, c

    t_ours, t_torch, (total, value, g, c), (t_total, t_value, tg, tc) = alternate(ours, theirs, repeats=3)
    assert total == pytest.approx(t_total, rel=1e-3) and value == pytest.approx(t_value, rel=1e-3, abs=1e-5)
    # per network, all its gradients as one vector: some are exactly zero in exact arithmetic (the
    # siamese bias cancels in TraVeL's differences), and their rounding residue has no relative size
    worst = max(_relative(*(np.concatenate([tree_[layer][name].ravel() for layer in expected for name in expected[layer]])
                            for tree_ in (grads, expected)))
                for grads, expected in ((g, tg), (c, tc)))
    assert worst < 1e-3
    report("7. gan training step (generator + critic losses and gradients, batch 16)", t_ours, t_torch,
           f"losses to 1e-3, gradients to {worst:.1e} (relative norm, worse network)")
    t_ours, t_torch, _, _ = alternate(lambda: critic_loss(nets, params, state, a, b),
                                      lambda: torch_gan.grads_of(torch_gan.critic_loss(reference, ta, tb, arch.frames),
                                                                 tree, nets[2].layer_names()), repeats=3)
    report("7. gan critic-only step (batch 16)", t_ours, t_torch, "as above")


def _fresh_model():
    arch, params, state = _fresh_networks(2)
    meta = {"kind": "gan", "sr": melgan.SR, "n_fft": melgan.N_FFT, "hop_length": melgan.HOP_LENGTH}
    return Network(arch, params, state, meta)


@pytest.mark.parametrize("name", ["piano.wav", "piano_stereo_44k.wav"])
def test_stylize_ten_seconds(report, name):
    y, sr = nst.load(os.path.join(AUDIO_DIR, name))
    content = np.tile(y, (1, -(-10 * sr // y.shape[1])))[:, :10 * sr]
    model = _fresh_model()
    nst.stylize(content, None, sr, model=model)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        out = nst.stylize(content, None, sr, model=model)
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    assert out.shape == content.shape
    what = f"{content.shape[0]} ch at {sr} Hz"
    report(f"7. gan stylize 10 s, {what} ({10 / seconds:.0f}x real time)", seconds, None,
           "target: 20x real time (0.5 s)")
    _lines.append(f"- Stylizing 10 s, {what} (resampling, features, generator, mel inversion and "
                  f"Griffin-Lim at the method's defaults): {seconds:.2f} s, {10 / seconds:.0f}x real time.")


def test_mel_inversion():
    basis = gan_features.mel_basis(melgan.SR, melgan.N_FFT, GanArchitecture().n_mels)
    rows = ["", "Mel bands back to linear power (:func:`nstaudio.mel.mel_to_power`) on true spectrograms "
            "(features at 16 kHz, through the [-1, 1] scaling and back); convergence in dB:", "",
            "| recording | steps | mel-spectral | linear magnitude | seconds per 10 s |", "|---|---:|---:|---:|---:|"]
    for name in ("piano.wav", "violin.wav", "speech_festival.wav", "drums.wav"):
        y, sr = nst.load(os.path.join(AUDIO_DIR, name), sr=melgan.SR, mono=True)
        magnitude = np.abs(spectral.stft(y[0], n_fft=melgan.N_FFT, hop_length=melgan.HOP_LENGTH))
        unit = gan_features.features(magnitude, basis, melgan.N_FFT)
        target = mel.unit_to_power(unit)
        for steps in (0, 10, 30, 50):
            start = time.perf_counter()
            rebuilt = gan_features.magnitude_from_features(unit, basis, melgan.N_FFT, n_iter=steps)
            seconds = (time.perf_counter() - start) * 10 * melgan.SR / y.shape[1]
            power = (rebuilt.astype(np.float64) / gan_features.magnitude_scale(melgan.N_FFT)) ** 2
            mel_db = mel.mel_convergence(target, power, basis)
            linear_db = spectral.spectral_convergence(magnitude, rebuilt)
            rows.append(f"| {name} | {steps} | {mel_db:.1f} | {linear_db:.1f} | {seconds:.2f} |")
            if steps == 0:
                start_db = mel_db
            else:  # the iterations fit the bands, well beyond the start (each bin's band mean)
                assert mel_db < start_db - 20, (name, steps, mel_db, start_db)
    _lines.extend(rows)


def _trained_model():
    if not os.path.exists(MODEL):
        pytest.skip(f"no trained gan model at {MODEL}: train one (README, `nstaudio train-gan`) or set "
                    "NSTAUDIO_GAN_MODEL")
    return nst.load_model(MODEL, kind="gan")


def test_what_the_style_domain_itself_scores():
    """Each clip of the style domain, cut to the content's length, measured as if it were the output."""
    if not os.path.isdir(STYLE_DIR):
        pytest.skip(f"no style domain at {STYLE_DIR}: make it (README, scripts/make_corpus.py) or set "
                    "NSTAUDIO_GAN_STYLE_DIR")
    style, style_sr = nst.load(os.path.join(AUDIO_DIR, "violin.wav"))
    clips = [nst.load(path) for path in audio.corpus_files(STYLE_DIR)]
    rows = ["", f"The style domain's own recordings ({len(clips)} clips of {os.path.basename(os.path.normpath(STYLE_DIR))}, "
            "each cut to the content's length and measured as its output against violin.wav): what a generator "
            "whose output could not be told from the style domain would score:", "",
            "| content | clips | style: median | min | max | band means, median | covariance, median |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for name in VIOLIN_PAIRS:
        y, sr = nst.load(os.path.join(AUDIO_DIR, name))
        scores = []
        for clip_, clip_sr in clips:
            out = audio.to_mono(nst.resample(clip_, orig_sr=clip_sr, target_sr=sr))
            if out.shape[1] < y.shape[1]:
                continue
            out = np.repeat(out[:, :y.shape[1]], y.shape[0], axis=0)  # as many channels as the content
            moved, parts = quality.style_movement(out, y, style, sr, style_sr=style_sr, return_parts=True)
            scores.append((moved, parts["means"], parts["covariance"]))
        scores = np.array(scores)
        median = np.median(scores, axis=0)
        rows.append(f"| {name} | {len(scores)} | {median[0]:.2f} | {scores[:, 0].min():.2f} | "
                    f"{scores[:, 0].max():.2f} | {median[1]:.2f} | {median[2]:.2f} |")
        # the style domain is the style's timbre by this measure: its clips move toward it from every content
        assert median[0] > 0, (name, median)
    _lines.extend(rows)


def _seam(unit, window, hop):
    """Mean frame-to-frame change at window borders over the mean change everywhere (1: no seam)."""
    change = np.linalg.norm(np.diff(unit, axis=-1), axis=-2).mean(axis=0)  # (T - 1,): frame t-1 -> t
    borders = np.arange(hop, unit.shape[-1], hop) - 1
    return float(change[borders].mean() / change.mean())


def test_seams_and_quality_with_a_trained_model():
    model = _trained_model()
    sr_model, n_fft, hop_length = model.spectrogram_settings
    basis = gan_features.mel_basis(sr_model, n_fft, model.arch.n_mels)
    rows = ["", f"With the trained model {os.path.basename(MODEL)} ({model.meta['steps']} steps; {sr_model} Hz, "
            f"n_fft {n_fft}, hop {hop_length}):", "",
            "| content | seam, concatenated | seam, crossfaded | input's own | mel inversion (dB) | style | content "
            "| seconds |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    style, style_sr = nst.load(os.path.join(AUDIO_DIR, "violin.wav"))
    window = model.arch.frames
    for name in VIOLIN_PAIRS:
        y, sr = nst.load(os.path.join(AUDIO_DIR, name))
        mono = nst.resample(y.mean(axis=0), orig_sr=sr, target_sr=sr_model)
        magnitude = np.abs(spectral.stft(mono, n_fft=n_fft, hop_length=hop_length))
        unit = gan_features.features(magnitude * (TRAINING_PEAK / np.abs(mono).max()), basis, n_fft)[None]
        glued = gan_features.apply_generator(model.arch, model.params, model.state, unit, crossfade=False)
        blended = gan_features.apply_generator(model.arch, model.params, model.state, unit)
        start = time.perf_counter()
        out = nst.stylize(y, None, sr, model=model)
        seconds = time.perf_counter() - start
        moved = quality.style_movement(out, y, style, sr, style_sr=style_sr)
        kept = quality.content_preservation(out, y, sr)
        seams = _seam(glued, window, window), _seam(blended, window, window // 2), _seam(unit, window, window)
        said = mel.unit_to_power(blended)  # the generator's mel bands, and the linear power the method makes of them
        inverted = mel.mel_to_power(said, basis, n_iter=gan_features.MEL_INVERSION_ITERS)
        rows.append(f"| {name} | {seams[0]:.2f} | {seams[1]:.2f} | {seams[2]:.2f} | "
                    f"{mel.mel_convergence(said, inverted, basis):.1f} | {moved:.2f} | {kept:.2f} | {seconds:.2f} |")
        # the crossfade's claim: borders change the output no more than its other frames (within 25 %),
        # and less than gluing windows end to end does
        assert seams[1] < min(1.25, seams[0]), seams
    rows += ["", "Seam: mean frame-to-frame change of the generator's output at window borders over its mean "
             "change everywhere (1: borders like any other frame); for the crossfade, at every half window. "
             "The input's own: the same of the content's features at the concatenation borders. Mel inversion: "
             "mel-spectral convergence of the linear power the method makes of the generator's bands."]
    _lines.extend(rows)
