"""nstaudio batch: items from files, directories and manifests; the results file; real Dask clusters.

The cluster tests start real local clusters of two worker processes on tiny clips and
settings: outputs equal ``nstaudio run``'s, a corrupt file fails alone, a batch killed
midway and run again does every item exactly once, and an item whose worker is killed
is retried by Dask.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

import nstaudio as nst
from nstaudio.batching import LEDGER_NAME
from nstaudio.batching.cluster import NANNY_UNSET, connect, local_size
from nstaudio.batching.items import collect
from nstaudio.batching.ledger import Ledger, read_entries
from nstaudio.cli import main as cli
from nstaudio.errors import ParameterError

from conftest import SR, harmonic_tone

dask = pytest.importorskip("dask", reason="nstaudio batch needs the distributed extra")
distributed = pytest.importorskip("distributed", reason="nstaudio batch needs the distributed extra "
                                                        "(pip install '.[distributed]'; CI installs it)")
from nstaudio.batching.worker import thread_share  # noqa: E402 (needs distributed)

# Small enough for CI's two cores, large enough that an item runs for a while (tol 0: every iteration).
TINY = ["--filters", "16", "--width", "3", "--n-fft", "256", "--iterations", "40", "--tol", "0", "--phase-iters", "4"]
TINY_API = dict(n_filters=16, width=3, n_fft=256, iterations=40, tolerance=0.0, phase_iters=4)


def write(path, y, sr=SR, subtype="PCM_16"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, np.asarray(y).T, sr, subtype=subtype)
    return path


@pytest.fixture
def corpus(tmp_path):
    """songs/ with two mono clips (one in a subfolder, FLAC), a stereo 44.1 kHz clip and a corrupt file; a style."""
    songs = tmp_path / "songs"
    write(str(songs / "a.wav"), harmonic_tone(0.8, seed=1))
    write(str(songs / "sub" / "b.flac"), harmonic_tone(0.7, f0=262, seed=2))
    stereo = np.stack([harmonic_tone(0.6, sr=44100, seed=3), harmonic_tone(0.6, sr=44100, f0=330, seed=4)])
    write(str(songs / "st.wav"), stereo, sr=44100, subtype="FLOAT")
    (songs / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    style = write(str(tmp_path / "style.wav"), harmonic_tone(1.0, f0=330, seed=9))
    return tmp_path, str(songs), style


# --- items and the results file (no cluster) ---------------------------------------------------------

def test_items_keep_relative_paths_and_leave_the_output_directory_out(corpus):
    tmp, songs, style = corpus
    outdir = os.path.join(songs, "out")  # inside the input directory: its outputs are not inputs next time
    write(os.path.join(outdir, "old.wav"), harmonic_tone(0.5))
    items = collect([songs], outdir, styles=[style], options={"seed": 3})
    assert [item.key for item in items] == ["a.wav", "bad.wav", "st.wav", os.path.join("sub", "b.flac")]
    assert items[3].output == os.path.join(outdir, "sub", "b.flac")
    assert all(item.styles == (style,) and item.options == {"seed": 3} for item in items)


def test_manifest_rows_name_their_styles_outputs_and_settings(corpus):
    tmp, songs, style = corpus
    manifest = tmp / "list.csv"
    manifest.write_text("content,Style,output,alpha,filters,tol,style-weights,seed\n"
                        "songs/a.wav,style.wav;songs/sub/b.flac,x/one.wav,0.5,8,,1;3,\n"
                        "songs/st.wav,,,,,0.01,,7\n"
                        ",,,,,,,\n")
    a, st = collect([str(manifest)], str(tmp / "out"), styles=[style], options={"seed": 1, "tolerance": 0.0})
    assert a.styles == (str(tmp / "style.wav"), str(tmp / "songs/sub/b.flac"))
    assert a.key == os.path.join("x", "one.wav")
    assert a.options == {"seed": 1, "tolerance": 0.0, "alpha": 0.5, "n_filters": 8, "style_weights": [1.0, 3.0]}
    assert st.styles == (style,) and st.key == os.path.join("songs", "st.wav")
    assert st.options == {"seed": 7, "tolerance": 0.01}


@pytest.mark.parametrize("text, message", [
    ("content,alhpa\na.wav,1\n", "unknown column 'alhpa'"),
    ("style\nx.wav\n", "no 'content' column"),
    ("content,alpha\na.wav,lots\n", "line 2: alpha: expected a number, got 'lots'"),
    ("content,iterations\na.wav,2.5\n", "line 2: iterations: expected an integer"),
    ("content,output\na.wav,../escape.wav\n", "outside the output directory"),
    ("content,output\na.wav,same.wav\nb.wav,same.wav\n", "would both be written to"),
    ("", "empty manifest"),
])
def test_a_malformed_manifest_is_refused_before_any_work(tmp_path, text, message):
    manifest = tmp_path / "m.csv"
    manifest.write_text(text)
    style = write(str(tmp_path / "s.wav"), harmonic_tone(0.5))
    with pytest.raises(ParameterError, match=message):
        collect([str(manifest)], str(tmp_path / "out"), styles=[style])


def test_an_output_that_is_an_input_or_an_item_without_style_is_refused(corpus):
    tmp, songs, style = corpus
    with pytest.raises(ParameterError, match="is the input directory"):
        collect([songs], songs, styles=[style])
    with pytest.raises(ParameterError, match="is one of the inputs"):
        collect([os.path.join(songs, "a.wav")], songs, styles=[style])
    with pytest.raises(ParameterError, match="no style files and no --model"):
        collect([songs], str(tmp / "out"))
    with pytest.raises(ParameterError, match="no such file or directory"):
        collect([str(tmp / "nowhere")], str(tmp / "out"), styles=[style])


def test_results_file_skips_only_what_is_done_with_the_same_settings(corpus):
    tmp, songs, style = corpus
    outdir = str(tmp / "out")
    a, b = collect([os.path.join(songs, "a.wav"), os.path.join(songs, "st.wav")], outdir, styles=[style])
    with Ledger(outdir) as ledger:
        with pytest.raises(ParameterError, match="another nstaudio batch"):
            Ledger(outdir)
        write(a.output, harmonic_tone(0.1))
        ledger.append({"key": a.key, "status": "done", "settings": a.settings,
                       "output_bytes": os.path.getsize(a.output)})
        ledger.append({"key": b.key, "status": "failed", "settings": b.settings})
    with open(os.path.join(outdir, LEDGER_NAME), "a") as f:
        f.write('{"key": "st.wav", "status": "do')  # a line torn by a kill
    with Ledger(outdir) as ledger:
        assert ledger.finished(a, a.settings) is not None and ledger.finished(b, b.settings) is None
        changed = collect([os.path.join(songs, "a.wav")], outdir, styles=[style], options={"seed": 1})[0]
        assert ledger.finished(changed, changed.settings) is None  # other settings
        ledger.append({"key": "later", "status": "failed"})
    assert [entry["key"] for entry in read_entries(outdir)[-1:]] == ["later"]  # on a line of its own
    with open(a.output, "ab") as f:
        f.write(b"\0")  # the output changed since
    with Ledger(outdir) as ledger:
        assert ledger.finished(a, a.settings) is None


# --- real clusters -------------------------------------------------------------------------------------

def run_cli(args, env=None):
    return subprocess.run([sys.executable, "-m", "nstaudio", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_batch_outputs_equal_run_outputs_and_a_corrupt_file_fails_alone(corpus):
    tmp, songs, style = corpus
    outdir = str(tmp / "out")
    result = run_cli(["batch", songs, style, "-o", outdir, "--workers", "2", "--seed", "4", *TINY])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith("failed: ") and "bad.wav" in line and "not a readable audio file" in line
               for line in lines), result.stderr
    assert "3 done, 0 skipped, 1 failed" in lines[-1]
    records = {entry["key"]: entry for entry in read_entries(outdir)}
    assert records["bad.wav"]["status"] == "failed" and not records["bad.wav"]["internal"]

    # `nstaudio run` with the same settings, at its default threads (the workers run on their share)
    for key in ("a.wav", os.path.join("sub", "b.flac"), "st.wav"):
        expected = str(tmp / f"run-{os.path.basename(key)}")
        single = run_cli(["run", os.path.join(songs, key), style, "-o", expected, "--seed", "4", "--json", "-q",
                          *TINY])
        assert single.returncode == 0, single.stderr
        summary = json.loads(single.stdout)
        batch_out, batch_sr = sf.read(os.path.join(outdir, key), dtype="float32")
        run_out, run_sr = sf.read(expected, dtype="float32")
        assert batch_sr == run_sr and sf.info(os.path.join(outdir, key)).subtype == sf.info(expected).subtype
        np.testing.assert_array_equal(batch_out, run_out)
        assert records[key]["status"] == "done" and records[key]["settings"] == summary["settings"]
        assert records[key]["loss"] == summary["loss"] and records[key]["iterations"] == summary["iterations"]

    # the same settings spelled out (alpha is the default's): nothing is done again
    rerun = run_cli(["batch", songs, style, "-o", outdir, "--workers", "2", "--seed", "4", "--alpha", "0.01", *TINY])
    assert rerun.returncode == 2 and "0 done, 3 skipped, 1 failed" in rerun.stderr
    assert not [name for _, _, names in os.walk(outdir) for name in names if name.startswith(".nstaudio-")]


def test_a_style_setting_of_the_method_reaches_the_shared_analysis(corpus):
    """--network expected: the one analysis the items share is made for it (the analysis settings
    come from the method's style_settings, not a hand-kept list)."""
    tmp, songs, style = corpus
    outdir = str(tmp / "out")
    os.remove(os.path.join(songs, "bad.wav"))
    result = run_cli(["batch", songs, style, "-o", outdir, "--workers", "1", "--network", "expected", *TINY])
    assert result.returncode == 0, result.stderr
    assert "3 done, 0 skipped, 0 failed" in result.stderr  # before: "the style analysis does not fit"
    assert {entry["status"] for entry in read_entries(outdir)} == {"done"}


HOLD_PRELOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hold_item.py")
HOLD_CONFIG = {"distributed.worker.preload": [HOLD_PRELOAD]}


def hold_first_item(monkeypatch, tmp_path):
    """Workers started from here on hold the first item to start inside its run (``hold_item.py``).

    Returns
    -------
    (environment, read): the variables that give a subprocess's workers the hold, and a function
    that waits for the held item's record (its task key, content and worker process id).
    """
    directory = tmp_path / "hold"
    directory.mkdir()
    environment = {"NSTAUDIO_TEST_HOLD": str(directory), "DASK_DISTRIBUTED__WORKER__PRELOAD": repr([HOLD_PRELOAD])}
    for name, value in environment.items():  # (a local cluster started here takes the preload from HOLD_CONFIG)
        monkeypatch.setenv(name, value)

    def read(alive=lambda: True, timeout=120):
        deadline = time.monotonic() + timeout
        while not (directory / "held").exists():
            assert alive(), "the batch ended with no item held"
            assert time.monotonic() < deadline, "no item was held"
            time.sleep(0.05)
        return json.loads((directory / "held").read_text())
    return environment, read


def test_a_killed_batch_run_again_does_every_item_exactly_once(tmp_path, monkeypatch):
    """The first item to start is held inside its run; the batch is killed once the other five are
    recorded, with that one mid-item; the rerun does only that one."""
    songs = tmp_path / "songs"
    for i in range(6):
        write(str(songs / f"c{i}.wav"), harmonic_tone(1.0, f0=200 + 20 * i, seed=i))
    style = write(str(tmp_path / "style.wav"), harmonic_tone(1.0, f0=330, seed=9))
    outdir = str(tmp_path / "out")
    args = [sys.executable, "-m", "nstaudio", "batch", str(songs), style, "-o", outdir, "--workers", "2", "-q", *TINY]
    environment, held = hold_first_item(monkeypatch, tmp_path)
    first = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        victim = os.path.relpath(held(alive=lambda: first.poll() is None)["content"], songs)
        deadline = time.monotonic() + 120
        ledger = os.path.join(outdir, LEDGER_NAME)
        while first.poll() is None and not (
                os.path.exists(ledger) and sum(e["status"] == "done" for e in read_entries(outdir)) == 5):
            assert time.monotonic() < deadline, "the other items did not finish"
            time.sleep(0.05)
        assert first.poll() is None, f"the batch ended with an item held: {first.stderr.read()}"
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the batch and its workers, one item mid-run
        first.wait()
    before = read_entries(outdir)
    assert {entry["key"] for entry in before if entry["status"] == "done"} == {f"c{i}.wav" for i in range(6)} - {victim}

    for name in environment:
        monkeypatch.delenv(name)
    second = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert [(entry["key"], entry["status"]) for entry in read_entries(outdir)[len(before):]] == [(victim, "done")]
    done = [entry["key"] for entry in read_entries(outdir) if entry["status"] == "done"]
    assert sorted(done) == [f"c{i}.wav" for i in range(6)]  # each exactly once, over both runs
    assert sorted(os.listdir(outdir)) == [f"c{i}.wav" for i in range(6)] + [LEDGER_NAME]  # no temporary files
    for i in range(6):
        y, sr = sf.read(os.path.join(outdir, f"c{i}.wav"))
        assert sr == SR and len(y) == SR and np.all(np.isfinite(y))


def test_an_item_whose_worker_dies_is_retried_and_the_batch_completes(tmp_path, monkeypatch):
    """The first item to start is held inside its run and its worker killed there: Dask runs it
    again on a live worker, and every item is done once."""
    songs = tmp_path / "songs"
    for i in range(3):
        write(str(songs / f"c{i}.wav"), harmonic_tone(1.0, f0=200 + 30 * i, seed=i))
    style = write(str(tmp_path / "style.wav"), harmonic_tone(1.0, f0=330, seed=9))
    outdir = str(tmp_path / "out")
    _, held = hold_first_item(monkeypatch, tmp_path)
    with dask.config.set({**NANNY_UNSET, **HOLD_CONFIG}):  # (a nanny would set NANNY_UNSET's in this process too)
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                           memory_limit=0)
    with cluster, distributed.Client(cluster) as client:
        pids = set(client.run(os.getpid).values())
        result = {}
        runner = threading.Thread(target=lambda: result.setdefault("records", nst.batch(
            [str(songs)], [style], outdir=outdir, scheduler=cluster.scheduler_address, **TINY_API)))
        runner.start()
        victim = held(alive=runner.is_alive)
        assert victim["pid"] in pids
        os.kill(victim["pid"], signal.SIGKILL)  # mid-item: the held item cannot have finished
        runner.join(timeout=240)
        assert not runner.is_alive()
        starts = [t for t in cluster.scheduler.transition_log if str(t[0]) == victim["key"] and t[2] == "processing"]
        assert len(starts) >= 2  # Dask ran it again, on a live worker
    records = result["records"]
    assert [r["status"] for r in records] == ["done"] * 3, records
    assert sorted(entry["key"] for entry in read_entries(outdir)) == ["c0.wav", "c1.wav", "c2.wav"]


def test_model_items_share_one_model_and_a_bad_model_fails_its_items_alone(corpus):
    tmp, songs, style = corpus
    runner = CliRunner()
    tiny = ["--steps", "4", "--batch-size", "2", "--crop", "16", "--checkpoint-every", "4", "-q"]
    lossnet, model = tmp / "lossnet.npz", tmp / "style.npz"
    corpus_dir = tmp / "corpus"  # the readable clips (train-lossnet refuses a corpus with a corrupt file)
    write(str(corpus_dir / "a.wav"), harmonic_tone(0.8, seed=1))
    write(str(corpus_dir / "b.wav"), harmonic_tone(0.7, f0=262, seed=2))
    assert runner.invoke(cli.main, ["train-lossnet", str(corpus_dir), "-o", str(lossnet), "--channels", "8,8,4,4",
                                    "--n-fft", "256", "--hop", "64", *tiny]).exit_code == 0
    assert runner.invoke(cli.main, ["train-style", style, str(corpus_dir), "--lossnet", str(lossnet), "-o",
                                    str(model), *tiny]).exit_code == 0
    (tmp / "broken.npz").write_bytes(b"PK\x03\x04 not a model")
    manifest = tmp / "jobs.csv"
    manifest.write_text("content,model,style,output\n"
                        "songs/a.wav,style.npz,,m1.wav\n"
                        "songs/st.wav,style.npz,,m2.wav\n"
                        "songs/a.wav,broken.npz,,m3.wav\n"
                        "songs/a.wav,,style.wav,m4.wav\n")
    outdir = str(tmp / "out")
    records = nst.batch([str(manifest)], outdir=outdir, workers=2, **TINY_API)
    assert [r["status"] for r in records] == ["done", "done", "failed", "done"]
    assert [r["method"] for r in records] == ["feedforward", "feedforward", None, "optimize"]
    assert "broken.npz" in records[2]["error"] and not records[2]["internal"]
    network = nst.load_model(str(model))
    y, sr = nst.load(os.path.join(songs, "a.wav"))
    expected = nst.stylize(y, sr=sr, model=network, phase_iters=4)  # at this process's threads
    got, _ = nst.load(os.path.join(outdir, "m1.wav"))
    np.testing.assert_allclose(got, expected, atol=2 / 32768)  # through 16-bit PCM


def test_run_json_prints_the_record_of_a_run_and_of_a_failure(corpus):
    tmp, songs, style = corpus
    runner = CliRunner()
    out = str(tmp / "one.wav")
    result = runner.invoke(cli.main, ["run", os.path.join(songs, "a.wav"), style, "-o", out, "--json", "-q", *TINY])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["status"] == "done" and record["output"] == out and record["method"] == "optimize"
    assert record["output_bytes"] == os.path.getsize(out) and record["iterations"] > 0 and record["loss"] > 0
    failed = runner.invoke(cli.main, ["run", os.path.join(songs, "bad.wav"), style, "-o", out, "--json", *TINY])
    assert failed.exit_code == 2
    record = json.loads(failed.stdout)
    assert record["status"] == "failed" and "not a readable audio file" in record["error"]
    assert failed.stderr.strip().startswith("Error: ") and len(failed.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--style", "s.wav", "--model", "m.npz"], "give --style files or --model, not both"),
    ([], "no style files and no --model"),
    (["--scheduler", "tcp://127.0.0.1:1", "--workers", "2", "--style", "{style}"], "size a local cluster"),
    (["--style", "{tmp}/missing.wav"], "missing.wav: no such file"),
    (["{tmp}"], "the last PATH is the style, but"),
    (["{style}", "--n-fft", "8"], "n_fft must be >= 16"),
    (["{style}", "--style-weights", "1,2"], "style_weights has 2 values for 1 styles"),
    (["{style}", "--method", "feedforward"], "needs a model"),
    (["--model", "{tmp}/nothing.npz"], "nothing.npz"),
])
def test_batch_usage_mistakes_get_one_line_before_any_work(corpus, args, message):
    tmp, songs, style = corpus
    args = [arg.format(tmp=tmp, style=style) for arg in args]
    result = CliRunner().invoke(cli.main, ["batch", songs, *args, "-o", str(tmp / "out")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert not os.path.exists(tmp / "out")  # nothing started


def test_local_workers_get_their_thread_share_and_glibcs_adaptive_malloc(monkeypatch):
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_")
    for name in names:  # as in a fresh `nstaudio batch` (a Dask cluster started here before sets them here)
        monkeypatch.delenv(name, raising=False)
    before = {name: os.environ.get(name) for name in names}
    def environment_and_share():
        return {name: os.environ.get(name) for name in names}, thread_share()

    with connect(workers=2) as client:
        seen = [client.submit(environment_and_share, workers=[address], pure=False).result()
                for address in client.scheduler_info(n_workers=-1)["workers"]]
    share = local_size(2, 1)[2]  # the machine's cores over 2 task slots
    assert seen == [({"OMP_NUM_THREADS": str(share), "OPENBLAS_NUM_THREADS": str(share),
                      "MKL_NUM_THREADS": str(share), "MALLOC_TRIM_THRESHOLD_": None}, share)] * 2
    assert {name: os.environ.get(name) for name in names} == before  # this process keeps its own


def test_a_local_cluster_prints_nothing_when_another_holds_dasks_port():
    """Dask's scheduler serves HTTP on port 8787 even without a dashboard, and warns (on the batch's
    stderr) when another cluster holds it: the local cluster takes a free port instead."""
    holder = socket.socket()
    try:
        holder.bind(("0.0.0.0", 8787))  # (if it is taken already, someone else holds it: the same case)
        holder.listen()
    except OSError:
        pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with connect(workers=1) as client:
                assert client.submit(lambda: 1, pure=False).result() == 1
    finally:
        holder.close()


def test_batch_without_dask_says_how_to_install_it(monkeypatch, corpus):
    tmp, songs, style = corpus
    monkeypatch.setitem(sys.modules, "distributed", None)
    result = CliRunner().invoke(cli.main, ["batch", songs, style, "-o", str(tmp / "out")])
    assert result.exit_code == 2
    assert "pip install 'nstaudio[distributed]'" in result.output
    assert not os.path.exists(tmp / "out")
