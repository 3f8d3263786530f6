"""The command line: help, info, demo, a real run, and one clear line for every user mistake."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from nstaudio.cli.main import main

from conftest import harmonic_tone

FAST = ["--n-fft", "512", "--filters", "32", "--iterations", "3", "--phase-iters", "5"]


@pytest.fixture
def files(wav_files):
    content = wav_files("content.wav", np.stack([harmonic_tone(1.0, 44100), harmonic_tone(1.0, 44100, f0=330)]),
                        44100, "PCM_24")
    style = wav_files("style.wav", harmonic_tone(1.0, 16000, f0=440, seed=2), 16000)
    return content, style


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_help_lists_commands_and_options():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("run", "demo", "info"):
        assert command in result.output
    run_help = invoke("run", "--help").output
    for option in ("--alpha", "--iterations", "--filters", "--width", "--n-fft", "--hop", "--sr", "--optimizer",
                   "--init", "--phase-iters", "--phase-init", "--seed", "--style-weights", "--device", "--quiet",
                   "--plot", "--tol", "--tol-window", "--network"):
        assert option in run_help


def test_info_lists_backends():
    result = invoke("info")
    assert result.exit_code == 0 and "backends: cpu" in result.output and "numpy" in result.output


def test_run_keeps_rate_channels_length_and_format(files, tmp_path):
    content, style = files
    out = tmp_path / "out.wav"
    result = invoke("run", content, style, "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (44100, 2, 44100, "PCM_24")
    assert "wrote" in result.output and "loss" in result.output
    assert sorted(os.listdir(tmp_path)) == ["content.wav", "out.wav", "style.wav"]


def test_run_default_output_name(files, tmp_path, monkeypatch):
    content, style = files
    monkeypatch.chdir(tmp_path)
    result = invoke("run", content, style, "-q", *FAST)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "content-stylized.wav").exists() and result.output == ""


def test_run_several_styles_with_weights(files, tmp_path, wav_files):
    content, style = files
    other = wav_files("other.wav", harmonic_tone(0.8, 22050, f0=150, seed=5))
    out = tmp_path / "out.flac"
    result = invoke("run", content, style, other, "--style-weights", "2,1", "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    assert sf.info(out).format == "FLAC"


def test_run_with_the_expected_network(files, tmp_path):
    content, style = files
    out = tmp_path / "out.wav"
    result = invoke("run", content, style, "-o", out, "--network", "expected", *FAST)
    assert result.exit_code == 0, result.output
    assert sf.info(out).channels == 2 and np.all(np.isfinite(sf.read(out)[0]))


def test_run_with_the_warm_start_shows_its_progress(files, tmp_path):
    content, style = files
    out = tmp_path / "out.wav"
    result = invoke("run", content, style, "-o", out, "--init", "expected", *FAST)
    assert result.exit_code == 0, result.output
    assert result.output.index("warm start") < result.output.index("optimizing") < result.output.index("phase")


def test_plot(files, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib (the plot extra) is not installed")
    content, style = files
    result = invoke("run", content, style, "-o", tmp_path / "o.wav", "--plot", tmp_path / "s.png", *FAST)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def _bad_inputs(tmp, content, style):
    (tmp / "text.wav").write_text("not audio")
    sf.write(tmp / "empty.wav", np.zeros(0, np.float32), 22050)
    sf.write(tmp / "silent.wav", np.zeros(22050, np.float32), 22050)
    sf.write(tmp / "nan.wav", np.full(22050, np.nan, np.float32), 22050, subtype="FLOAT")
    sf.write(tmp / "tiny.wav", harmonic_tone(0.01), 22050)
    out = str(tmp / "out.wav")
    return {
        "missing file": ([str(tmp / "nope.wav"), style, "-o", out], "no such file"),
        "not audio": ([str(tmp / "text.wav"), style, "-o", out], "not a readable audio file"),
        "empty": ([content, str(tmp / "empty.wav"), "-o", out], "empty"),
        "silent": ([str(tmp / "silent.wav"), style, "-o", out], "silent"),
        "nan": ([content, str(tmp / "nan.wav"), "-o", out], "NaN"),
        "n_fft < 16": ([content, style, "-o", out, "--n-fft", "8"], "n_fft"),
        "hop > n_fft": ([content, style, "-o", out, "--n-fft", "512", "--hop", "1024"], "hop_length"),
        "filters = 0": ([content, style, "-o", out, "--filters", "0"], "n_filters"),
        "iterations < 0": ([content, style, "-o", out, "--iterations", "-1"], "iterations"),
        "style shorter than a frame": ([content, str(tmp / "tiny.wav"), "-o", out], "style is too short"),
        "output is the content": ([content, style, "-o", content], "is one of the inputs"),
        "output is the style": ([content, style, "-o", style], "is one of the inputs"),
        "plot is an input": ([content, style, "-o", out, "--plot", content], "is one of the inputs"),
        "unknown output format": ([content, style, "-o", str(tmp / "out.xyz")], "extension"),
        "missing output dir": ([content, style, "-o", str(tmp / "no" / "out.wav")], "does not exist"),
        "bad weights": ([content, style, "-o", out, "--style-weights", "a,b"], "comma-separated"),
        "wrong weight count": ([content, style, "-o", out, "--style-weights", "1,2"], "style_weights"),
        "bad device": ([content, style, "-o", out, "--device", "tpu"], "device"),
        "negative tolerance": ([content, style, "-o", out, "--tol", "-1"], "tolerance"),
        "zero tolerance window": ([content, style, "-o", out, "--tol-window", "0"], "tolerance_window"),
        "unknown network": ([content, style, "-o", out, "--network", "infinite"], "--network"),
        "network for timedomain": ([content, style, "-o", out, "--method", "timedomain", "--network", "expected"],
                                   "network does not apply"),
    }


CASES = ["missing file", "not audio", "empty", "silent", "nan", "n_fft < 16", "hop > n_fft", "filters = 0",
         "iterations < 0", "style shorter than a frame", "output is the content", "output is the style", "plot is an input",
         "unknown output format", "missing output dir", "bad weights", "wrong weight count", "bad device",
         "negative tolerance", "zero tolerance window", "unknown network", "network for timedomain"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_clear_line(files, tmp_path, case):
    content, style = files
    before = {p: open(p, "rb").read() for p in files}
    args, message = _bad_inputs(tmp_path, content, style)[case]
    result = CliRunner().invoke(main, ["run", *args, "--iterations", "1"] if case != "iterations < 0"
                                else ["run", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "out.wav").exists()
    assert {p: open(p, "rb").read() for p in files} == before  # inputs untouched


def _command():
    """The installed console script beside this Python, else ``python -m nstaudio``."""
    script = os.path.join(os.path.dirname(sys.executable), "nstaudio")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "nstaudio"]


def test_subprocess_error_is_one_line_on_stderr(tmp_path):
    # cwd outside the checkout: the source tree itself is not the installed package layout
    proc = subprocess.run([*_command(), "run", str(tmp_path / "a.wav"), str(tmp_path / "b.wav")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and "no such file" in proc.stderr


def test_subprocess_demo(tmp_path):
    out = tmp_path / "demo.wav"
    proc = subprocess.run([sys.executable, "-m", "nstaudio", "demo", "-o", str(out), *FAST],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = sf.info(out)
    assert info.samplerate == 22050 and info.channels == 1 and abs(info.duration - 4.0) < 1e-3
    assert "wrote" in proc.stderr
