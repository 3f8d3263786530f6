"""`nstaudio.Stream` against the issue's real-time targets (issue 18).

- Latency at the model's defaults, and what each part costs.
- Processing time per block for block sizes 256 to 4096 at 44.1 kHz stereo: the worst block
  (while the stream starts, and once it runs), the 99th percentile, the mean and the blocks over
  the target, as a share of the block's duration (the real-time factor), with BLAS on one thread
  as a live run holds it; beside it, how often this machine stalls a fixed piece of work.
- Quality: the streamed output's spectral convergence against the model's own magnitudes for
  the same input (the recording, then silence), beside offline fast Griffin-Lim (32 iterations)
  on the same magnitudes; how much the output changes with the block size (a seam at block
  borders would show there); real-time PGHI alone on the true spectrograms of real recordings, at
  the model's overlap (4) and at 8.

Needs a style model (``NSTAUDIO_STYLE_MODEL`` or ``build/style-models/violin.npz``), skipped
with that reason otherwise; a causal one (``NSTAUDIO_CAUSAL_MODEL`` or
``build/style-models/violin-causal.npz``, from ``train-style --causal --stride 1``) and a gan
model (``NSTAUDIO_GAN_MODEL`` or ``build/gan-models/violin.npz``) are measured beside it where
they are there. The section "stream" of RESULTS.md holds the last whole run.
"""

import contextlib
import os
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import nstaudio as nst
from nstaudio.methods.feedforward import feedforward
from nstaudio.methods.gan import gan as gan_method
from nstaudio.models import TRAINING_PEAK
from nstaudio.spectral import spectral_convergence
from nstaudio.streaming import Stream
from nstaudio.streaming.phase import PhaseSynthesis

from audio_fixtures import clip, recording
from conftest import machine_description, module_ran_whole, write_section

BUILD = os.path.join(os.path.dirname(__file__), os.pardir, "build")
STYLE_MODEL = os.environ.get("NSTAUDIO_STYLE_MODEL", os.path.join(BUILD, "style-models", "violin.npz"))
CAUSAL_MODEL = os.environ.get("NSTAUDIO_CAUSAL_MODEL", os.path.join(BUILD, "style-models", "violin-causal.npz"))
GAN_MODEL = os.environ.get("NSTAUDIO_GAN_MODEL", os.path.join(BUILD, "gan-models", "violin.npz"))
RATE, SECONDS = 44100, 12.0
_lines = []


@pytest.fixture(scope="module", autouse=True)
def section(request):
    yield
    if module_ran_whole(request) and _lines:
        write_section("stream", f"Machine: {machine_description()}. Date: {time.strftime('%Y-%m-%d')}. Written by "
                      "benchmarks/test_stream.py.", "\n".join(_lines))


@pytest.fixture(scope="module")
def models():
    """The style models to stream, by name: the default one, and the causal one where it is there."""
    if not os.path.isfile(STYLE_MODEL):
        pytest.skip(f"no style model at {STYLE_MODEL}: train one (README, the feedforward method) or set "
                    "NSTAUDIO_STYLE_MODEL")
    found = {os.path.basename(STYLE_MODEL): nst.load_model(STYLE_MODEL, kind="style")}
    if os.path.isfile(CAUSAL_MODEL):
        found[os.path.basename(CAUSAL_MODEL)] = nst.load_model(CAUSAL_MODEL, kind="style")
    if os.path.isfile(GAN_MODEL):
        found[f"gan {os.path.basename(GAN_MODEL)}"] = nst.load_model(GAN_MODEL, kind="gan")
    return found


def magnitudes(model, log_magnitude):
    """What the model makes of log1p STFT magnitudes, offline: STFT magnitudes."""
    if model.kind == "gan":
        return gan_method(np.expm1(log_magnitude), model)
    return np.expm1(feedforward(log_magnitude, model.triple))


def describe(model):
    arch = model.arch
    if model.kind == "gan":
        return f"{arch.n_mels} mel bands, windows of {arch.frames} frames"
    return (f"channels {arch.channels}, width {arch.width}, stride {arch.stride}"
            + (", causal" if arch.causal else ""))


def stereo(seconds, sr):
    """Real stereo audio: the bundled piano left, the violin right, at ``sr``."""
    pair = np.stack([clip("content", seconds), clip("style", seconds)])
    return nst.resample(pair, orig_sr=22050, target_sr=sr) * np.float32(0.9)


def recordings(seconds):
    """Real recordings by name, mono at 22.05 kHz: the bundled piano and violin, and the shared speech and drums
    where they are at hand."""
    found = {"piano (bundled)": clip("content", seconds), "violin (bundled)": clip("style", seconds)}
    for name, filename in (("speech", "speech_festival.wav"), ("drums", "drums.wav")):
        y = recording(filename, seconds)
        if y is not None:
            found[name] = y
    return found


def run_stream(stream, x):
    """Output of ``x`` (channels, n) through ``stream`` (zero-padded to whole blocks), the tail included."""
    block = stream.block_size
    n = -(-x.shape[1] // block) * block
    padded = np.zeros((x.shape[0], n), np.float32)
    padded[:, :x.shape[1]] = x
    return np.concatenate([stream.process(padded[:, i:i + block]) for i in range(0, n, block)] + [stream.flush()],
                          axis=1)


def test_latency(models):
    _lines.append("Latency and its parts, in ms (target: at most 150 ms at the model's settings; the style models': "
                  "22050 Hz, n_fft 2048, hop 512; the gan model's: its own):")
    _lines.append("")
    _lines.append("| model | stream | total | window | network look-ahead | phase | spread | "
                  "resampling | alignment |")
    _lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, model in models.items():
        sr_model = model.spectrogram_settings[0]
        settings = [(sr_model, {}), (RATE, {}), (48000, {}), (RATE, dict(phase_iters=0))]
        if getattr(model.arch, "causal", False):
            settings += [(RATE, dict(lookahead=1)), (RATE, dict(phase_frames=3))]
        else:
            settings += [(RATE, dict(lookahead=0))]
        if model.kind == "gan":
            settings += [(RATE, dict(spread=1))]
        for sr, options in settings:
            stream = Stream(model, channels=2, block_size=256, sr=sr, **options)
            parts = stream.latency_parts
            assert sum(parts.values()) == stream.latency
            ms = {key: 1000 * value / sr for key, value in parts.items()}
            label = (f"{sr} Hz, " + (", ".join(f"{k} {v}" for k, v in options.items()) or "defaults")
                     + f" (PGHI look-ahead {stream.lookahead}, {stream.phase_iters} RTISI-LA passes over "
                     f"{stream._synthesis.refine} open frames, spread over {stream.spread} "
                     + ("hop)" if stream.spread == 1 else "hops)"))
            _lines.append(f"| {name} ({describe(model)}) | {label} | {1000 * stream.latency / sr:.1f} | "
                          f"{ms['window']:.1f} | {ms['network']:.1f} | {ms['phase']:.1f} | {ms['spread']:.1f} | "
                          f"{ms['resampling']:.2f} | {ms['alignment']:.2f} |")


def test_block_times(models):
    x = stereo(SECONDS, RATE)
    _lines.append("")
    _lines.append(f"Processing time per block, {RATE} Hz stereo, {SECONDS:.0f} s of real audio, one thread, BLAS on "
                  "one thread as a live run holds it (`nstaudio stream --live`; the gan model also with BLAS's "
                  "own threads), as a share of the block's duration (target: at most 0.25 for every block); "
                  "'while starting': the blocks until the first input is heard:")
    _lines.append("")
    _lines.append("| model | block | worst, while starting | worst, running | 99th percentile | mean | blocks over 0.25 |")
    _lines.append("|---|---:|---:|---:|---:|---:|---:|")
    runs = [(name, model, block, True) for name, model in models.items() for block in (256, 512, 1024, 2048, 4096)]
    runs += [(name, model, block, False) for name, model in models.items() if model.kind == "gan" for block in (256, 512)]
    for name, model, block, one_blas_thread in runs:
        with threadpool_limits(1, user_api="blas") if one_blas_thread else contextlib.nullcontext():
            stream = Stream(model, channels=2, block_size=block, sr=RATE)
            times = []
            for start in range(0, x.shape[1] - block + 1, block):
                began = time.perf_counter()
                out = stream.process(x[:, start:start + block])
                times.append(time.perf_counter() - began)
                assert out.shape == (2, block)
        share = np.array(times) / (block / RATE)
        starting = -(-stream.latency // block) + 1
        label = "defaults" if one_blas_thread else "defaults, BLAS's own threads"
        _lines.append(f"| {name}, {label} | {block} | {share[:starting].max():.3f} | "
                      f"{share[starting:].max():.3f} | {np.percentile(share[starting:], 99):.3f} | "
                      f"{share[starting:].mean():.3f} | {np.sum(share > 0.25)} of {len(share)} |")
    _lines.append("")
    _lines.append(machine_stalls())


def machine_stalls(seconds=7.0):
    """How often this machine stalls a fixed piece of work, in the same run: a one-thread product of a
    gan generator's size (some 0.2 ms), repeated. A block's worst time is at the mercy of these."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((256, 1152), np.float32), rng.standard_normal((1152, 24), np.float32)
    times = []
    with threadpool_limits(1, user_api="blas"):
        ended = time.perf_counter() + seconds
        while time.perf_counter() < ended:
            began = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - began)
    ms = 1000 * np.array(times[100:])
    return (f"The machine's own stalls, measured after the table in the same run: a fixed one-thread product "
            f"(median {np.median(ms):.3f} ms) repeated {len(ms)} times took over 5 times its median "
            f"{np.sum(ms > 5 * np.median(ms))} times, over 1 ms {np.sum(ms > 1.0)} times, {ms.max():.2f} ms at "
            "the longest. A piece of a stream's work stalled so in a block of 256 samples (5.8 ms) puts the block "
            "over 0.25.")


def test_quality_against_offline_griffin_lim(models):
    _lines.append("")
    _lines.append("Spectral convergence (dB) against the model's magnitudes for the same input, the recording and "
                  "the silence a stream sees after it (lower is better; "
                  "target: the stream within 3 dB of offline fast Griffin-Lim, 32 iterations), and how much the "
                  "output of blocks of 1000 samples differs from that of blocks of 256:")
    _lines.append("")
    _lines.append("| model | content | stream, PGHI alone | the model's defaults | 2 RTISI-LA passes, n_fft/hop - 1 "
                  "frames | 4 passes | offline FGLA 32, random start | offline FGLA 32, content's phase | "
                  "block 256 vs 1000 |")
    _lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for model_name, model in models.items():
        sr_model, n_fft, hop = model.spectrogram_settings
        quality_rows(model_name, model, sr_model, n_fft, hop)
    _lines.append("")
    _lines.append("The last column: the RMS of the difference between the outputs of the two block sizes (with the "
                  "model's defaults), over the output's RMS.")


def quality_rows(model_name, model, sr_model, n_fft, hop):
    for name, y in recordings(8.0).items():
        y = nst.resample(y, orig_sr=22050, target_sr=sr_model)  # the streams run at the model's rate
        x = (y / np.max(np.abs(y)))[np.newaxis].astype(np.float32)  # peaks at full scale, as Stream assumes
        gain = np.float32(TRAINING_PEAK)
        # The model's magnitudes for the input a stream sees: the recording, then silence. (Offline, the
        # network pads the end with copies of the last frame, as if the recording went on: its last
        # frames, the network's look-ahead of them (1.4 s for the default style model), differ.) The
        # recording's own frames are the first of these (the STFT pads its end with zeros).
        followed = np.concatenate([x, np.zeros((1, 4 * sr_model), np.float32)], axis=1)
        spec_followed = nst.stft(followed * gain, n_fft=n_fft, hop_length=hop)
        spec = spec_followed[..., :1 + x.shape[1] // hop]
        magnitude = magnitudes(model, np.log1p(np.abs(spec_followed)))[..., :spec.shape[-1]]
        scores, outputs = [], {}
        frames = n_fft // hop - 1
        for label, settings in (("pghi", dict(phase_iters=0)), ("defaults", {}),
                                ("2", dict(phase_iters=2, phase_frames=frames)),
                                ("4", dict(phase_iters=4, phase_frames=frames))):
            stream = Stream(model, block_size=256, **settings)
            outputs[label] = run_stream(stream, x)[:, stream.latency:stream.latency + x.shape[1]] * gain
            scores.append(spectral_convergence(magnitude, nst.stft(outputs[label], n_fft=n_fft, hop_length=hop)))
        for init in ("random", "content"):
            rebuilt = nst.griffin_lim(magnitude, n_iter=32, hop_length=hop, n_fft=n_fft, init=init, content=spec,
                                      length=x.shape[1], seed=0)
            scores.append(spectral_convergence(magnitude, nst.stft(rebuilt, n_fft=n_fft, hop_length=hop)))
        stream = Stream(model, block_size=1000)  # the model's defaults, in other blocks
        other = run_stream(stream, x)[:, stream.latency:stream.latency + x.shape[1]] * gain
        same = outputs["defaults"]
        seam = np.sqrt(np.mean((other - same) ** 2) / np.mean(same ** 2))
        _lines.append(f"| {model_name} | {name} | " + " | ".join(f"{s:.2f}" for s in scores)
                      + f" | {20 * np.log10(max(seam, 1e-12)):.0f} dB |")


def test_real_time_pghi_on_true_spectrograms():
    _lines.append("")
    _lines.append("Phase from the true magnitudes of real recordings alone (no network), spectral convergence in "
                  "dB (target: real-time PGHI better than -15 dB at the model's overlap, or say what it needs):")
    _lines.append("")
    _lines.append("| recording | overlap | real-time PGHI, look-ahead 1 | look-ahead 0 | offline PGHI (whole "
                  "spectrogram) |")
    _lines.append("|---|---:|---:|---:|---:|")
    n_fft = 2048
    for name, y in recordings(8.0).items():
        x = y[np.newaxis].astype(np.float32)
        for overlap in (4, 8):
            hop = n_fft // overlap
            magnitude = np.abs(nst.stft(x, n_fft=n_fft, hop_length=hop))
            scores = []
            for lookahead in (1, 0):
                synthesis = PhaseSynthesis(n_fft=n_fft, hop_length=hop, batch=1, lookahead=lookahead,
                                           backend=nst.get_backend("cpu"))
                out = synthesis.process(magnitude)
                frames = nst.stft(out, n_fft=n_fft, hop_length=hop).shape[-1] - 1 - n_fft // hop
                rebuilt = nst.stft(out, n_fft=n_fft, hop_length=hop)[..., :frames]
                scores.append(spectral_convergence(magnitude[..., :frames], rebuilt))
            phase = nst.pghi(magnitude, n_fft=n_fft, hop_length=hop, seed=0)
            offline = nst.istft(magnitude * np.exp(1j * phase), hop_length=hop, length=x.shape[1])
            scores.append(spectral_convergence(magnitude, nst.stft(offline, n_fft=n_fft, hop_length=hop)))
            _lines.append(f"| {name} | {overlap} | " + " | ".join(f"{s:.2f}" for s in scores) + " |")
