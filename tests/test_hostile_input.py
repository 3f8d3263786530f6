"""Hostile files and parameters (issue 14): one line and exit 2 before any work, or a valid output; never a crash.

Each test stands for a class of defect found by a hostile user: encoder crashes, errors found
only after the computation, unvalidated parameters, non-finite results written, untrusted
headers, signals during the write, and click's multi-line usage errors.
"""

import os
import signal
import struct
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

import nstaudio as nst
from nstaudio import audio, files, jobs, limits, optimizers
from nstaudio.cli import main as cli
from nstaudio.errors import AudioError, NumericalError, OutputError, ParameterError

from conftest import harmonic_tone

FAST = ["--n-fft", "512", "--filters", "16", "--iterations", "3", "--phase-iters", "2"]


def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    """Exit status 2, exactly one line on stderr that starts with "Error:", no traceback or warning text."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output and "Warning" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the CLI ever starts stylizing: its checks must come first."""
    def stylize(*args, **kwargs):
        raise AssertionError("stylize ran although the output could never be written")
    monkeypatch.setattr(jobs, "stylize", stylize)  # what the CLI's job calls


@pytest.fixture
def clips(wav_files):
    return wav_files("content.wav", harmonic_tone(1.0)), wav_files("style.wav", harmonic_tone(1.0, f0=330, seed=3))


def listing(directory):
    return sorted(os.listdir(directory))


# --- 1. encoders that crash on large writes or unsupported settings -------------------------------

def test_long_stereo_ogg_is_written_in_blocks(tmp_path):
    """48 s of stereo 44.1 kHz in one write crashed libsndfile's Vorbis encoder (run in a child: a crash is a fail)."""
    code = textwrap.dedent(f"""
        import numpy as np, nstaudio as nst
        t = np.arange(48 * 44100) / 44100
        y = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)]).astype(np.float32) * 0.3
        nst.save({str(tmp_path / 'long.ogg')!r}, y, 44100)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    info = sf.info(tmp_path / "long.ogg")
    assert (info.frames, info.channels, info.samplerate) == (48 * 44100, 2, 44100)
    assert listing(tmp_path) == ["long.ogg"]


@pytest.mark.parametrize("name, sr, channels, fragment", [
    ("out.ogg", 250_000, 2, "at most 255 channels at 200000 Hz"),   # libvorbis crashes, so nstaudio refuses
    ("out.ogg", 44100, 300, "at most 255 channels"),
    ("out.mp3", 96_000, 1, "cannot write"),                          # libsndfile refuses
    ("out.mp3", 44100, 3, "cannot write"),
    ("out.flac", 44100, 9, "cannot write"),
    ("out.htk", 44100, 1, "reads back as"),                          # written, but wrong when read back
    ("out.raw", 44100, 1, "could not be read back"),
])
def test_outputs_libsndfile_cannot_write_are_refused_up_front(tmp_path, name, sr, channels, fragment):
    with pytest.raises(ParameterError, match=fragment):
        audio.check_output(tmp_path / name, sr=sr, channels=channels)
    assert listing(tmp_path) == []


def test_save_checks_the_file_it_wrote(tmp_path, monkeypatch):
    """A written file whose frame count reads back wrong is never renamed over the target."""
    real_info = audio.sf.info

    class Short:
        def __init__(self, info):
            self.frames, self.channels, self.samplerate = info.frames - 1, info.channels, info.samplerate

    monkeypatch.setattr(audio.sf, "info", lambda path: Short(real_info(path)))
    with pytest.raises(ParameterError, match="reads back as"):
        nst.save(tmp_path / "out.wav", harmonic_tone(0.2), 22050)
    assert listing(tmp_path) == []


def test_save_refuses_non_finite_audio(tmp_path):
    y = harmonic_tone(0.2)
    y[10] = np.nan
    with pytest.raises(AudioError, match="NaN or infinite"):
        nst.save(tmp_path / "out.wav", y, 22050)
    assert listing(tmp_path) == []


# --- 2. output errors found before any work, as one line ------------------------------------------

def test_unwritable_directory_fails_before_work(clips, tmp_path, monkeypatch, no_work):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    result = invoke("run", *clips, "-o", tmp_path / "out.wav", *FAST)
    assert_one_line_error(result, "Permission denied")


@pytest.mark.parametrize("output, fragment", [
    ("x" * 300 + ".wav", "longer than"),
    ("missing/out.wav", "does not exist"),
    ("out.raw", "could not be read back"),
    ("out.xyz", "cannot tell the audio format"),
    ("sub", "is a directory"),
])
def test_bad_output_paths_fail_before_work(clips, tmp_path, no_work, output, fragment):
    (tmp_path / "sub.wav").mkdir()
    target = tmp_path / (output if output != "sub" else "sub.wav")
    result = invoke("run", *clips, "-o", target, *FAST)
    assert_one_line_error(result, fragment)
    assert listing(tmp_path) == ["content.wav", "style.wav", "sub.wav"]


def test_format_that_cannot_hold_the_content_fails_before_work(wav_files, tmp_path, no_work):
    content = wav_files("content.wav", np.stack([harmonic_tone(0.5, 96000, f0=f) for f in (220, 330, 440)]), 96000)
    style = wav_files("style.wav", harmonic_tone(1.0))
    assert_one_line_error(invoke("run", content, style, "-o", tmp_path / "out.mp3", *FAST), "MP3")
    assert listing(tmp_path) == ["content.wav", "style.wav"]


def test_plot_path_problems_fail_before_work(clips, tmp_path, no_work):
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    out = tmp_path / "out.wav"
    assert_one_line_error(invoke("run", *clips, "-o", out, "--plot", tmp_path / "p.wav", *FAST), "image format")
    assert_one_line_error(invoke("run", *clips, "-o", out, "--plot", out, *FAST), "is one of the inputs")
    assert listing(tmp_path) == ["content.wav", "style.wav"]


# --- 3. parameters out of range -----------------------------------------------------------------

@pytest.mark.parametrize("option, value, fragment", [
    ("--seed", "-1", "seed must be >= 0"),
    ("--seed", str(2**70), "seed must be <="),
    ("--alpha", "1e20", "alpha must be <="),
    ("--alpha", "1e300", "alpha must be <="),
    ("--alpha", "nan", "alpha must be finite"),
    ("--alpha", "-1", "alpha must be >="),
    ("--learning-rate", "1e9", "learning_rate must be <="),
    ("--learning-rate", "0", "learning_rate must be >"),
    ("--style-weights", "nan", "style_weights must be finite"),
    ("--style-weights", "1,2", "2 values for 1 styles"),
    ("--sr", "10", "sr_work must be >="),
])
def test_absurd_parameters_are_one_line(clips, tmp_path, option, value, fragment):
    result = invoke("run", *clips, "-o", tmp_path / "out.wav", *FAST, option, value)
    assert_one_line_error(result, fragment)
    assert listing(tmp_path) == ["content.wav", "style.wav"]


def test_api_validates_seed_and_rates():
    y = harmonic_tone(1.0)
    with pytest.raises(ParameterError, match="seed"):
        nst.stylize(y, y, 22050, seed=-1, n_filters=8, iterations=1)
    with pytest.raises(ParameterError, match="outside the rates"):
        nst.stylize(y, y, 1, n_filters=8, iterations=1)
    with pytest.raises(ParameterError, match="outside the rates"):
        nst.stylize(y, y, 22050, style_sr=10**9, n_filters=8, iterations=1)


def test_settings_that_cannot_fit_in_memory_are_refused(monkeypatch):
    monkeypatch.setattr(limits, "machine_memory", lambda: 100 * 2**20)
    y = harmonic_tone(1.0)
    with pytest.raises(ParameterError, match="need at least"):
        nst.stylize(y, y, 22050, n_filters=4096, iterations=1)


def test_huge_style_weights_do_not_overflow():
    from nstaudio.objective import normalised_weights

    assert normalised_weights([1e308, 1e308], 2) == [0.5, 0.5]


# --- 4. non-finite results are errors, never files ----------------------------------------------

def test_diverging_adam_writes_nothing(clips, tmp_path):
    out = tmp_path / "out.wav"
    # Adam moves a value by up to its learning rate a step: at the largest one, 10, past float32's expm1
    # overflow (88.7) within 20 steps on every seed tried (at 9 only on some: the bits of the path decided)
    result = invoke("run", *clips, "-o", out, *FAST, "--optimizer", "adam", "--learning-rate", "10",
                    "--iterations", "20", "-q")
    assert_one_line_error(result, "diverged")
    assert listing(tmp_path) == ["content.wav", "style.wav"]


@pytest.mark.parametrize("minimise", ["adam", "lbfgs"])
def test_optimizers_stop_on_a_non_finite_loss(minimise):
    calls = []

    def fun(x):
        calls.append(1)
        loss = float(np.sum(x * x)) if len(calls) < 3 else float("inf")
        return loss, 2 * x

    x0 = np.ones((2, 3), np.float32)
    with pytest.raises(NumericalError):
        getattr(optimizers, minimise)(fun, x0, iterations=10, lower=None)


def test_projected_lbfgs_rejects_overflowing_trials_and_a_non_finite_start():
    """Its line search never accepts a non-finite trial point; a start that is already non-finite is an error."""
    def overflowing(x):
        loss = float(np.sum((x - 3.0) ** 2))
        return (loss if np.all(x < 10) else float("inf")), 2 * (x - 3.0)

    x, info = optimizers.projected_lbfgs(overflowing, np.zeros(4, np.float32), iterations=20)
    assert np.isfinite(info["loss"]) and np.allclose(x, 3.0, atol=1e-3)
    with pytest.raises(NumericalError):
        optimizers.projected_lbfgs(lambda x: (float("nan"), x), np.zeros(4, np.float32), iterations=5)


def test_diverging_training_is_an_error_that_keeps_the_last_checkpoint():
    from nstaudio.nn.training import train_loop

    saved = []
    params = {"layer": {"w": np.ones(3, np.float32)}}

    def step_fn(rng, step):
        loss = float("nan") if len(saved) == 2 and rng.random() >= 0 else 1.0
        return loss, {"layer": {"w": np.full(3, 0.1, np.float32)}}

    with pytest.raises(NumericalError, match="training diverged at step 5 .*checkpoint of step 4 is kept"):
        train_loop(step_fn, params, {}, np.random.default_rng(0), nst.kernels.get_backend("numpy"), steps=10,
                   learning_rate=1e-3, weight_decay=0.0, resume=None, callback=None,
                   checkpoint=saved.append, checkpoint_every=2)


# --- 6. untrusted audio headers -------------------------------------------------------------------

def forge_rate(path, rate):
    """Overwrite the sample rate (and byte rate) in a PCM_16 mono WAV header."""
    data = bytearray(open(path, "rb").read())
    data[24:28] = struct.pack("<I", rate % 2**32)
    data[28:32] = struct.pack("<I", (rate * 2) % 2**32)
    open(path, "wb").write(bytes(data))


@pytest.mark.parametrize("rate", [1_000_000_007, 1, 999])
def test_implausible_sample_rates_are_refused(wav_files, tmp_path, rate, no_work):
    path = wav_files("forged.wav", harmonic_tone(0.5))
    forge_rate(path, rate)
    with pytest.raises(AudioError, match="outside the rates"):
        nst.load(path)
    style = wav_files("style.wav", harmonic_tone(1.0))
    assert_one_line_error(invoke("run", path, style, "-o", tmp_path / "out.wav", *FAST), "outside the rates")


def test_resampling_coprime_rates_keeps_memory_small():
    y = harmonic_tone(0.5, 44101)
    tracemalloc.start()
    out = audio.resample(y, orig_sr=44101, target_sr=22050)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out.shape == (-(-len(y) * 22050 // 44101),)
    assert peak < 20 * 2**20  # the filter of the exact ratio 22050/44101 alone would take 7 MB; its data 50 x more
    up, down = audio.polyphase_ratio(767_999, 22050)
    cent = 2 ** (1 / 1200) - 1
    assert max(up, down) <= audio.MAX_POLYPHASE and abs(up / down / (22050 / 767_999) - 1) < 0.01 * cent


def test_audio_beyond_the_memory_limit_is_refused_before_decoding(wav_files, monkeypatch):
    path = wav_files("long.wav", harmonic_tone(5.0))
    monkeypatch.setattr(limits, "audio_memory_limit", lambda: 100_000)
    tracemalloc.start()
    with pytest.raises(AudioError, match="more than this machine can work on"):
        nst.load(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**20


def streamed_flac(path, y, sr):
    """A FLAC whose header gives no length (total samples 0), as a streaming encoder writes it."""
    sf.write(path, y, sr, format="FLAC")
    data = bytearray(open(path, "rb").read())
    streaminfo = 8  # after "fLaC" and the metadata block header; its bits 108..143 are the total samples
    data[streaminfo + 13] &= 0xF0
    data[streaminfo + 14:streaminfo + 18] = bytes(4)
    open(path, "wb").write(bytes(data))
    return path


def test_a_header_without_a_length_is_one_clear_error(tmp_path):
    """libsndfile reports such a file as 2**63 - 1 frames (reading it all at once asked for exabytes)."""
    path = streamed_flac(tmp_path / "stream.flac", harmonic_tone(1.0), 22050)
    assert sf.info(path).frames == audio.UNKNOWN_LENGTH
    with pytest.raises(AudioError, match="not a readable audio file"):
        nst.load(path)


def cut_short(path, keep):
    """Keep the first ``keep`` of a file's bytes, as a partial download or copy leaves it."""
    data = open(path, "rb").read()
    open(path, "wb").write(data[:int(len(data) * keep)])
    return path


@pytest.mark.parametrize("fmt", ["WAV", "AIFF", "AU", "W64", "RF64"])
def test_a_file_cut_short_is_refused_before_work(tmp_path, wav_files, fmt, no_work):
    """libsndfile reads the audio that is there and only logs the cut: refuse it, do not stylize a part."""
    path = str(tmp_path / f"cut.{fmt.lower()}")
    sf.write(path, harmonic_tone(2.0), 22050, format=fmt)
    whole = nst.load(path)[0]
    cut_short(path, 0.4)
    assert 0 < sf.info(path).frames < whole.shape[1]  # libsndfile alone would read the part
    with pytest.raises(AudioError, match="is cut short"):
        nst.load(path)
    with pytest.raises(AudioError, match="is cut short"):
        audio.check_audio_file(path)
    style = wav_files("style.wav", harmonic_tone(1.0))
    assert_one_line_error(invoke("run", path, style, "-o", tmp_path / "out.wav", *FAST), "is cut short")
    assert_one_line_error(invoke("run", style, path, "-o", tmp_path / "out.wav", *FAST), "is cut short")
    assert not os.path.exists(tmp_path / "out.wav")


def test_a_file_cut_by_a_few_bytes_is_refused(tmp_path):
    path = str(tmp_path / "cut.wav")
    sf.write(path, harmonic_tone(1.0), 22050)
    cut_short(path, 0.999)
    with pytest.raises(AudioError, match="is cut short"):
        nst.load(path)


def test_a_wav_streamed_to_a_pipe_is_read_whole(tmp_path):
    """A writer that cannot seek back leaves "unknown" sizes in the header: that is no cut."""
    y = harmonic_tone(1.0)
    path = str(tmp_path / "piped.wav")
    sf.write(path, y, 22050, subtype="FLOAT")
    data = bytearray(open(path, "rb").read())
    chunk = data.find(b"data")
    data[4:8] = data[chunk + 4:chunk + 8] = struct.pack("<I", 0xFFFFFFFF)
    open(path, "wb").write(bytes(data))
    np.testing.assert_array_equal(nst.load(path)[0][0], y.astype(np.float32))


class UnderstatingFile:
    """A decoder whose header claims fewer frames than it goes on to decode."""

    samplerate, channels, frames = 22050, 2, 10

    def __init__(self, total):
        self.left = total

    def read(self, n, dtype, always_2d):
        n = min(n, self.left)
        self.left -= n
        return np.full((n, self.channels), 0.1, dtype=dtype)


def test_frames_are_counted_as_they_are_decoded(monkeypatch):
    """A header may understate the length: the memory limit holds for the frames really decoded."""
    assert audio._read_blocks(UnderstatingFile(100_000), "x.wav").shape == (2, 100_000)
    monkeypatch.setattr(limits, "audio_memory_limit", lambda: 1_000_000)
    with pytest.raises(AudioError, match="holds more than"):
        audio._read_blocks(UnderstatingFile(10**9), "x.wav")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    with pytest.raises(AudioError, match="not a regular file"):
        nst.load(fifo)


# --- 7. signals during the write ------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_during_the_final_write_leaves_nothing(clips, tmp_path, tmp_path_factory, signum):
    """The CLI child kills itself in the middle of writing the output: exit 128+signal, no temp file, no output."""
    out = tmp_path / "out.wav"
    code = textwrap.dedent(f"""
        import os, sys, time
        from nstaudio import audio
        from nstaudio.cli.main import main
        real = audio._write_verified
        def interrupted(tmp, y, *args):
            if y.shape[1] > audio.PROBE_FRAMES:  # the real write, not the up-front probe
                real(tmp, y[:, :1000], *args)
                os.kill(os.getpid(), {int(signum)})
                time.sleep(30)
            return real(tmp, y, *args)
        audio._write_verified = interrupted
        main({["run", *clips, "-o", str(out), *FAST, "-q"]!r})
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path_factory.mktemp("cwd"))  # a directory of its own
    assert run.returncode == 128 + signum, run.stderr
    assert listing(tmp_path) == ["content.wav", "style.wav"]


def test_temporary_files_are_recognisable(tmp_path):
    with files.atomic_path(tmp_path / "out.wav") as tmp:
        assert os.path.basename(tmp).startswith(files.TEMP_PREFIX) and tmp.endswith(".wav")
        open(tmp, "wb").write(b"x")
    assert listing(tmp_path) == ["out.wav"]


# --- 8. smaller ones ------------------------------------------------------------------------------

def test_crop_that_is_no_multiple_of_16_is_refused_before_reading(tmp_path, wav_files):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    sf.write(corpus / "a.wav", harmonic_tone(3.0), 22050)
    result = invoke("train-lossnet", corpus, "-o", tmp_path / "l.npz", "--crop", "17", "--steps", "1")
    assert_one_line_error(result, "crop must be a multiple of 16", "use 16 or 32")
    assert "reading" not in result.output
    with pytest.raises(ParameterError, match="multiple of 16"):
        nst.train_lossnet([harmonic_tone(3.0)], 22050, crop=17, steps=1)


@pytest.mark.parametrize("args, fragment", [
    (["run"], "Missing argument"),
    (["run", "a.wav", "b.wav", "--no-such-option"], "No such option"),
    (["run", "a.wav", "b.wav", "--seed", "x"], "not a valid integer"),
    (["run", "a.wav", "b.wav", "--optimizer", "sgd"], "--optimizer"),
    (["no-such-command"], "No such command"),
])
def test_click_usage_errors_are_one_line(args, fragment):
    assert_one_line_error(invoke(*args), fragment)


def test_unwritable_training_output_fails_before_reading(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    sf.write(corpus / "a.wav", harmonic_tone(3.0), 22050)
    result = invoke("train-lossnet", corpus, "-o", tmp_path / "missing" / "l.npz", "--steps", "1")
    assert_one_line_error(result, "does not exist")
    assert "reading" not in result.output


def test_output_error_is_an_oserror_too():
    assert issubclass(OutputError, OSError)


def test_a_full_disk_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    """OS errors inside an atomic write (ENOSPC, EFBIG) become OutputError; audio's system errors too."""
    import errno

    with pytest.raises(OutputError, match="No space left"):
        with files.atomic_path(tmp_path / "model.npz"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    real = audio.sf.SoundFile

    class FullDisk(real):
        def write(self, data):
            error = audio.sf.LibsndfileError(audio._SF_ERR_SYSTEM, "System error")
            raise error

    monkeypatch.setattr(audio.sf, "SoundFile", FullDisk)
    with pytest.raises(OutputError, match="disk full"):
        nst.save(tmp_path / "out.wav", harmonic_tone(0.2), 22050)
    assert listing(tmp_path) == []


def test_training_refuses_overflowing_gradients_before_they_reach_a_checkpoint():
    from nstaudio.nn.training import train_loop

    saved = []
    params = {"layer": {"w": np.ones(3, np.float32)}}

    def step_fn(rng, step):
        grad = np.full(3, np.inf if len(saved) == 1 else 0.1, np.float32)
        return 1.0, {"layer": {"w": grad}}

    with pytest.raises(NumericalError, match="step 3 .*checkpoint of step 2 is kept"):
        train_loop(step_fn, params, {}, np.random.default_rng(0), nst.kernels.get_backend("numpy"), steps=10,
                   learning_rate=1e-3, weight_decay=0.0, resume=None, callback=None,
                   checkpoint=saved.append, checkpoint_every=2)
    assert len(saved) == 1 and np.all(np.isfinite(saved[0].params["layer"]["w"])) and np.all(np.isfinite(params["layer"]["w"]))


def test_a_file_is_never_taken_for_a_transposed_array(tmp_path):
    """A short multichannel file is what it says: too short, not (samples, channels)."""
    path = tmp_path / "short.wav"
    sf.write(path, np.full((8, 3), 0.1, np.float32), 22050)
    y, _ = nst.load(path)
    assert y.shape == (3, 8)
