"""Case 8: ``nstaudio batch`` against a shell loop of ``nstaudio run`` (issue 17).

20 clips of 5 s (real recordings from ../shared/audio, or the bundled piano, each started at
another offset) with one violin style, the default method and settings: the loop pays
Python's start-up, numba's cache loading, the random filters and the style's Gram targets
once per file; the batch once per worker (the analysis once in all), with one
single-threaded worker process per core. Both run as the commands a user types, one after
the other on an otherwise idle machine; the outputs are checked, never the speed.

With a style model (``NSTAUDIO_STYLE_MODEL`` or ``build/style-models/violin.npz``; the README
says how to train one) the same for the ``feedforward`` method, and where its time goes.
The section "batch" of RESULTS.md holds the last whole run of this module.
"""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

import nstaudio as nst
from nstaudio.batching.cluster import connect, local_size
from nstaudio.batching.ledger import read_entries

from audio_fixtures import AUDIO_DIR, SR, clip, recording
from conftest import machine_description, module_ran_whole, write_section

pytest.importorskip("distributed", reason="nstaudio batch needs Dask: pip install '.[bench,distributed]'")

FILES = 20
SECONDS = 5
RECORDINGS = ["piano.wav", "drums.wav", "speech_espeak.wav", "speech_festival.wav", "violin.wav"]
BUILD = os.path.join(os.path.dirname(__file__), os.pardir, "build")
STYLE_MODEL = os.environ.get("NSTAUDIO_STYLE_MODEL", os.path.join(BUILD, "style-models", "violin.npz"))
_lines = []


@pytest.fixture(scope="module", autouse=True)
def section(request):
    yield
    if module_ran_whole(request) and _lines:
        workers, _, share = local_size()
        write_section("batch", f"Machine: {machine_description()}. Date: {time.strftime('%Y-%m-%d')}. The batch "
                      f"ran on a local cluster of {workers} worker processes, {share} thread(s) each; the loop's "
                      "runs use every core. Written by benchmarks/test_batch.py.", "\n".join(_lines))


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    """``(clips_dir, style_path)``: FILES mono clips of SECONDS s at 22.05 kHz, and the violin style."""
    root = tmp_path_factory.mktemp("batch")
    clips = root / "clips"
    clips.mkdir()
    sources = [y for y in (recording(name, SECONDS * 2) for name in RECORDINGS) if y is not None]
    if not sources:
        sources = [clip("content", SECONDS * 2)]
    n = SECONDS * SR
    for i in range(FILES):
        source = sources[i % len(sources)]
        start = (i // len(sources)) * int(0.37 * SR)  # another stretch of the (tiled) recording each time round
        sf.write(clips / f"clip{i:02d}.wav", source[start:start + n], SR, subtype="PCM_16")
    style = os.path.join(AUDIO_DIR, "violin.wav")
    if not os.path.isfile(style):
        style = str(root / "violin.wav")
        sf.write(style, clip("style", 6), SR, subtype="PCM_16")
    return str(clips), style


def nstaudio_command(*args):
    return [sys.executable, "-m", "nstaudio", *args]


def shell_loop(clips, outdir, style_args):
    """Seconds for `nstaudio run` once per clip, one after the other (what a shell loop does)."""
    os.makedirs(outdir)
    started = time.perf_counter()
    for name in sorted(os.listdir(clips)):
        subprocess.run(nstaudio_command("run", os.path.join(clips, name), *style_args, "-o",
                                        os.path.join(outdir, name), "-q"), check=True)
    return time.perf_counter() - started


def batch_command(clips, outdir, style_args):
    started = time.perf_counter()
    subprocess.run(nstaudio_command("batch", clips, *style_args, "-o", outdir, "-q"), check=True)
    return time.perf_counter() - started


def check_outputs(clips, *outdirs):
    for name in os.listdir(clips):
        for outdir in outdirs:
            y, sr = sf.read(os.path.join(outdir, name))
            assert sr == SR and len(y) == SECONDS * SR and np.all(np.isfinite(y)) and np.max(np.abs(y)) > 0


def describe(method, loop_s, batch_s, entries):
    items = [entry["seconds"] for entry in entries]
    iterations = [entry["iterations"] for entry in entries if entry["iterations"]]
    _lines.append(
        f"| {method} | {FILES} x {SECONDS} s | {loop_s:.1f} s ({FILES / loop_s * 60:.1f} files/min) | "
        f"{batch_s:.1f} s ({FILES / batch_s * 60:.1f} files/min) | {loop_s / batch_s:.2f}x | "
        f"{np.mean(items):.2f} s{f', {np.mean(iterations):.0f} iterations' if iterations else ''} |")


def test_batch_against_a_shell_loop(workload, tmp_path):
    clips, style = workload
    loop_s = shell_loop(clips, str(tmp_path / "loop"), [style])
    batch_s = batch_command(clips, str(tmp_path / "batch"), ["--style", style])
    check_outputs(clips, str(tmp_path / "loop"), str(tmp_path / "batch"))
    entries = read_entries(str(tmp_path / "batch"))
    assert len(entries) == FILES and all(entry["status"] == "done" for entry in entries)
    _lines.append("| method | clips | shell loop of `nstaudio run` | `nstaudio batch` | throughput | "
                  "batch: one item (on one core) |")
    _lines.append("|---|---|---|---|---:|---|")
    describe("optimize (defaults)", loop_s, batch_s, entries)


def test_feedforward_batch_and_where_its_time_goes(workload, tmp_path):
    if not os.path.isfile(STYLE_MODEL):
        pytest.skip(f"no style model at {STYLE_MODEL}: train one (README, the feedforward method) or set "
                    "NSTAUDIO_STYLE_MODEL")
    clips, _ = workload
    loop_s = shell_loop(clips, str(tmp_path / "loop"), ["--model", STYLE_MODEL])
    batch_s = batch_command(clips, str(tmp_path / "batch"), ["--model", STYLE_MODEL])
    check_outputs(clips, str(tmp_path / "loop"), str(tmp_path / "batch"))
    entries = read_entries(str(tmp_path / "batch"))
    assert len(entries) == FILES and all(entry["status"] == "done" for entry in entries)
    describe("feedforward", loop_s, batch_s, entries)

    # Where the time goes: the cluster's start, and one item's steps in this process (warm).
    started = time.perf_counter()
    with connect() as client:
        client.run(lambda: None)
    cluster_s = time.perf_counter() - started
    model = nst.load_model(STYLE_MODEL, kind="style")
    path = os.path.join(clips, sorted(os.listdir(clips))[0])
    steps = {}
    for _ in range(2):  # the second, warm
        t0 = time.perf_counter()
        y, sr, info = nst.load(path, return_info=True)
        t1 = time.perf_counter()
        out, run = nst.stylize(y, sr=sr, model=model, return_info=True)
        t2 = time.perf_counter()
        nst.save(str(tmp_path / "one.wav"), out, sr, subtype=info.subtype)
        t3 = time.perf_counter()
        steps = dict(read=t1 - t0, stylize=t2 - t1, write=t3 - t2)
    startup = subprocess.run([sys.executable, "-c", "import time; t = time.perf_counter(); import nstaudio.cli.main; "
                              "print(time.perf_counter() - t)"], capture_output=True, text=True, check=True)
    _lines.append("")
    _lines.append(f"Feedforward, where the time goes: a local cluster starts in {cluster_s:.1f} s (once a batch); "
                  f"importing nstaudio takes {float(startup.stdout):.2f} s (once a `run`, once a worker); one "
                  f"5 s item, warm: read {steps['read'] * 1000:.0f} ms, stylize {steps['stylize'] * 1000:.0f} ms "
                  "(network, then 32 Griffin-Lim iterations from the content's phase), "
                  f"write {steps['write'] * 1000:.0f} ms.")
