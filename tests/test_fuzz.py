"""Fuzzing (issue 14): mutated audio files and random option values through ``load`` and the CLI.

Every case must end in a valid output or exit status 2 with one line on stderr, in bounded
memory, with no traceback, no warning text, no modified input and no file left behind (a
case that hangs fails its test at pytest-timeout's limit; how long a case takes is not a
test's business). CI runs a fixed, derandomised set of examples (about half a minute); for a
longer, random hunt set ``NSTAUDIO_FUZZ_EXAMPLES``, e.g. ``NSTAUDIO_FUZZ_EXAMPLES=2000 pytest
tests/test_fuzz.py``. (Model files are fuzzed in ``test_checkpoint_hostile.py``.)
"""

import hashlib
import io
import os
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

import nstaudio as nst
from nstaudio.cli.main import main
from nstaudio.errors import AudioError

from conftest import harmonic_tone

EXAMPLES = int(os.environ.get("NSTAUDIO_FUZZ_EXAMPLES", "0"))


def fuzz_settings(ci_examples):
    """Derandomised ``ci_examples`` by default; ``NSTAUDIO_FUZZ_EXAMPLES`` random ones on demand."""
    return settings(max_examples=EXAMPLES or ci_examples, derandomize=not EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


def encoded(fmt, subtype=None, seconds=0.3, channels=1):
    """Bytes of a short real-sounding recording in ``fmt``."""
    y = np.stack([harmonic_tone(seconds, f0=220 * (c + 1), seed=c) for c in range(channels)], axis=1)
    buffer = io.BytesIO()
    sf.write(buffer, y, 22050, format=fmt, subtype=subtype)
    return buffer.getvalue()


SEEDS = {
    "wav": encoded("WAV", "PCM_16"),
    "wav-float-stereo": encoded("WAV", "FLOAT", channels=2),
    "flac": encoded("FLAC"),
    "ogg": encoded("OGG"),
}


@st.composite
def mutated(draw):
    """A seed file's bytes with flipped bytes, overwritten runs, insertions and a truncation."""
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "overwrite", "insert", "delete"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":  # header fields are 2 or 4 bytes: write extreme values there
            data[at:at + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\xff\xff\xff\x7f",
                                                    b"\x01\x00\x00\x00"]))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[at:at + draw(st.integers(1, 64))]
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return name, bytes(data)


def one_line(message):
    return "\n" not in str(message).strip()


@fuzz_settings(150)
@given(case=mutated())
def test_load_survives_mutated_files(tmp_path, case):
    name, data = case
    path = tmp_path / f"fuzzed.{name.split('-')[0]}"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        y, sr = nst.load(path)
    except AudioError as exc:
        assert one_line(exc), exc
    else:
        assert y.dtype == np.float32 and y.ndim == 2 and y.size and np.all(np.isfinite(y))
        assert 1000 <= sr <= 768_000
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 32 * 2**20, f"{peak / 2**20:.0f} MB to load a {len(data)}-byte file"
    assert path.read_bytes() == data


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def check_cli_outcome(result, workdir, inputs, outputs):
    """Exit 0 with valid outputs, or exit 2 with one line; inputs untouched, nothing else left behind."""
    assert "Traceback" not in result.output and "Warning" not in result.output, result.output
    if result.exit_code == 0:
        for path in outputs:
            info = sf.info(workdir / path) if path.endswith((".wav", ".flac", ".ogg")) else None
            assert info is None or info.frames > 0
    else:
        assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    expected = set(inputs) | (set(outputs) if result.exit_code == 0 else set())
    assert set(os.listdir(workdir)) == expected
    for name, sha in inputs.items():
        assert sha is None or digest(workdir / name) == sha, f"{name} was modified"


FAST = ["--n-fft", "256", "--filters", "8", "--iterations", "2", "--phase-iters", "2", "-q"]


@pytest.fixture
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@fuzz_settings(25)
@given(case=mutated())
def test_cli_survives_mutated_content(workdir, case):
    name, data = case
    for leftover in os.listdir(workdir):
        os.unlink(workdir / leftover)
    content = f"content.{name.split('-')[0]}"
    (workdir / content).write_bytes(data)
    sf.write(workdir / "style.wav", harmonic_tone(1.0, f0=330), 22050)
    inputs = {p: digest(workdir / p) for p in (content, "style.wav")}
    result = CliRunner().invoke(main, ["run", str(workdir / content), str(workdir / "style.wav"),
                                       "-o", str(workdir / "out.wav"), *FAST])
    check_cli_outcome(result, workdir, inputs, ["out.wav"])


INT_OPTIONS = ["--iterations", "--tol-window", "--filters", "--width", "--n-fft", "--hop", "--sr", "--phase-iters",
               "--seed"]
FLOAT_OPTIONS = ["--alpha", "--tol", "--learning-rate"]
CHOICE_OPTIONS = ["--optimizer", "--init", "--phase-init", "--device"]

# Values beyond every option's limit are refused; within the limits only cheap ones are drawn,
# so each valid run stays a fraction of a second.
ABSURD_NUMBERS = st.one_of(
    st.integers(max_value=0), st.integers(min_value=10**8), st.sampled_from([2**64, 10**400]),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "-1e-400", "1e-300", "0x10", "1_000", "", " ", "1,5", "five"]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
)
CHEAP_INTS = {"--iterations": [0, 1, 3], "--tol-window": [1, 5], "--filters": [1, 3], "--width": [1, 2],
              "--n-fft": [16, 64, 200], "--hop": [1, 16, 64], "--sr": [1000, 8000, 44100], "--phase-iters": [0, 1],
              "--seed": [0, 7, 2**64 - 1]}
CHEAP_FLOATS = {"--alpha": [0, 1e-300, 0.5, 1e6], "--tol": [0, 1e-9, 1], "--learning-rate": [1e-300, 0.1, 10]}


CHOICES = ["plbfgs", "lbfgs", "adam", "noise", "content", "random", "cpu", "numpy", "cuda", "auto"]
TEXT_OPTIONS = {"--style-weights", "--channels"}


@st.composite
def option_values(draw, cheap_values):
    """One to three of the options in ``cheap_values``, each with an absurd value or a cheap valid one."""
    chosen = {}
    for _ in range(draw(st.integers(1, 3))):
        option = draw(st.sampled_from(sorted(cheap_values)))
        if option in CHOICE_OPTIONS:
            value = draw(st.one_of(st.sampled_from(CHOICES), st.text(max_size=6)))
        elif option in TEXT_OPTIONS:
            value = draw(st.one_of(st.text(max_size=12), st.sampled_from(cheap_values[option]),
                                   st.lists(st.one_of(st.floats(allow_nan=True), st.integers()), min_size=1,
                                            max_size=5).map(lambda xs: ",".join(map(str, xs)))))
        else:
            value = draw(st.one_of(ABSURD_NUMBERS, st.sampled_from(cheap_values[option])))
        chosen[option] = str(value)
    return [token for option, value in chosen.items() for token in (option, value)]


RUN_OPTIONS = {**CHEAP_INTS, **CHEAP_FLOATS, **{option: [] for option in CHOICE_OPTIONS},
               "--style-weights": ["1", "0.5"]}


@fuzz_settings(60)
@given(options=option_values(RUN_OPTIONS))
def test_cli_survives_random_option_values(workdir, options):
    for leftover in os.listdir(workdir):
        os.unlink(workdir / leftover)
    sf.write(workdir / "content.wav", harmonic_tone(0.6), 22050)
    sf.write(workdir / "style.wav", harmonic_tone(0.6, f0=330), 22050)
    inputs = {p: digest(workdir / p) for p in ("content.wav", "style.wav")}
    result = CliRunner().invoke(main, ["run", str(workdir / "content.wav"), str(workdir / "style.wav"),
                                       "-o", str(workdir / "out.wav"), *FAST, *options])
    check_cli_outcome(result, workdir, inputs, ["out.wav"])


TRAIN_FAST = ["--channels", "4,4,4,4", "--n-fft", "64", "--hop", "16", "--crop", "16", "--batch-size", "2",
              "--steps", "2", "--device", "cpu", "-q"]
TRAIN_OPTIONS = {"--steps": [1, 3], "--n-fft": [16, 64], "--hop": [1, 16], "--sr": [1000, 8000],
                 "--batch-size": [1, 3], "--crop": [16, 32], "--learning-rate": [1e-300, 0.01, 1],
                 "--weight-decay": [0, 0.5, 1], "--seed": [0, 2**64 - 1], "--checkpoint-every": [1, 2],
                 "--device": [], "--channels": ["1,1,1,1", "4,3,2,1"]}


@fuzz_settings(30)
@given(options=option_values(TRAIN_OPTIONS))
def test_training_cli_survives_random_option_values(workdir, options):
    for leftover in os.listdir(workdir):
        if os.path.isfile(workdir / leftover):
            os.unlink(workdir / leftover)
    (workdir / "corpus").mkdir(exist_ok=True)
    sf.write(workdir / "corpus" / "a.wav", harmonic_tone(1.5), 22050)
    inputs = {"corpus": None}
    result = CliRunner().invoke(main, ["train-lossnet", str(workdir / "corpus"), "-o", str(workdir / "net.npz"),
                                       *TRAIN_FAST, *options])
    check_cli_outcome(result, workdir, inputs, ["net.npz"])
    if result.exit_code == 0:
        nst.load_model(workdir / "net.npz", kind="lossnet")


@fuzz_settings(30)
@given(name=st.text(min_size=1, max_size=300))
def test_cli_survives_random_output_names(workdir, name):
    for leftover in os.listdir(workdir):
        if leftover not in ("content.wav", "style.wav"):
            os.unlink(workdir / leftover) if os.path.isfile(workdir / leftover) else None
    sf.write(workdir / "content.wav", harmonic_tone(0.6), 22050)
    sf.write(workdir / "style.wav", harmonic_tone(0.6, f0=330), 22050)
    inputs = {p: digest(workdir / p) for p in ("content.wav", "style.wav")}
    target = os.path.basename(name.replace("\x00", "")) or "x"
    result = CliRunner().invoke(main, ["run", str(workdir / "content.wav"), str(workdir / "style.wav"),
                                       "-o", str(workdir / (target + ".wav")), *FAST])
    check_cli_outcome(result, workdir, inputs, [target + ".wav"])
