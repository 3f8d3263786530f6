"""Batches on shared storage: paths that are fsspec URLs (``nstaudio.storage``).

``memory://`` stands in for an object store (no local path, no rename, no appending; shared
by the threads of one process, so its batches run on an in-process cluster) and ``file://``
for storage that worker processes share. Outputs must equal those of the same batch on local
paths, reruns skip what is done, and every storage mistake is one line before any work.
"""

import importlib.util
import os
import posixpath
import sys
import uuid

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

import nstaudio as nst
from nstaudio import limits, storage
from nstaudio.batching import LEDGER_NAME
from nstaudio.batching.items import collect
from nstaudio.batching.ledger import read_entries
from nstaudio.cli import main as cli
from nstaudio.errors import AudioError, OutputError, ParameterError

from conftest import SR, harmonic_tone

fsspec = pytest.importorskip("fsspec", reason="URLs need fsspec (the distributed extra installs it)")
distributed = pytest.importorskip("distributed", reason="nstaudio batch needs the distributed extra")

TINY = dict(n_filters=16, width=3, n_fft=256, iterations=10, tolerance=0.0, phase_iters=4, seed=4)
TINY_CLI = ["--filters", "16", "--width", "3", "--n-fft", "256", "--iterations", "10", "--tol", "0",
            "--phase-iters", "4", "--seed", "4"]


def wav_bytes(y, sr=SR, fmt="WAV", subtype="PCM_16"):
    import io

    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(y).T, sr, format=fmt, subtype=subtype)
    return buffer.getvalue()


@pytest.fixture
def bucket():
    """A fresh memory:// folder holding songs/ (a WAV, a FLAC in a subfolder, a corrupt file) and style.wav."""
    root = f"memory://nstaudio-test-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("memory")
    files = {"songs/a.wav": wav_bytes(harmonic_tone(0.8, seed=1)),
             "songs/sub/b.flac": wav_bytes(harmonic_tone(0.7, f0=262, seed=2), fmt="FLAC"),
             "songs/bad.wav": b"RIFF\x00\x00\x00\x00WAVEjunk",
             "style.wav": wav_bytes(harmonic_tone(1.0, f0=330, seed=9))}
    for name, data in files.items():
        fs.pipe_file(f"{root}/{name}", data)
    yield root, fs
    fs.rm(root, recursive=True)


def mirror(root, fs, local):
    """Copy the memory:// folder ``root`` to the local directory ``local``."""
    for path in fs.find(root):
        target = os.path.join(local, posixpath.relpath(path, fs._strip_protocol(root)))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(fs.cat_file(path))


# --- storage ---------------------------------------------------------------------------------------

def test_urls_are_told_from_local_paths():
    assert storage.is_url("s3://bucket/a.wav") and storage.is_url("file:///tmp/a.wav")
    assert storage.is_url("memory://x") and storage.is_url("gcs+x://y")
    for local in ("a.wav", "/tmp/a.wav", "dir:with/colon.wav", "C:\\music\\a.wav", "://x", "1x://y"):
        assert not storage.is_url(local)


def test_writes_replace_whole_and_leave_no_temporary_file(bucket):
    root, fs = bucket
    target = f"{root}/out/records.jsonl"
    storage.write_bytes(target, b"one\n")
    storage.write_bytes(target, b"one\ntwo\n")
    assert storage.read_bytes(target) == b"one\ntwo\n" and storage.size(target) == 8
    assert [os.path.basename(p) for p in fs.find(f"{root}/out")] == ["records.jsonl"]
    before = storage.identity(target)
    storage.write_bytes(target, b"one\nTWO\n")  # the same size, other contents: another identity
    assert storage.identity(target)[:2] == before[:2] and storage.identity(target) != before
    assert storage.size(f"{root}/nothing") is None and storage.identity(f"{root}/nothing")[1:] == [None, None]


def test_a_failed_upload_names_the_url_and_leaves_nothing(bucket, tmp_path, monkeypatch):
    root, fs = bucket
    local = tmp_path / "x.wav"
    local.write_bytes(b"data")

    def refuse(self, path1, path2, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(type(fs), "mv", refuse)
    with pytest.raises(OutputError, match=rf"^{root}/out/x.wav: cannot write it \(Permission denied\)$"):
        storage.upload(str(local), f"{root}/out/x.wav")
    assert not fs.exists(f"{root}/out/x.wav") and not fs.find(f"{root}/out")


def test_a_copy_is_refused_before_it_is_made_when_no_audio_could_be_that_large(bucket, tmp_path, monkeypatch):
    root, fs = bucket
    monkeypatch.setattr(limits, "audio_memory_limit", lambda: 1000)  # a file over 2000 bytes is too large
    with pytest.raises(AudioError, match=r"style.wav: .* more than any audio this machine can work on"):
        with storage.local_copy(f"{root}/style.wav", str(tmp_path)):
            pass
    assert os.listdir(tmp_path) == []
    with pytest.raises(AudioError, match=rf"^{root}/missing.wav: no such file$"):
        with storage.local_copy(f"{root}/missing.wav", str(tmp_path)):
            pass


def test_errors_about_a_copy_name_the_url(bucket, tmp_path):
    root, _ = bucket
    with pytest.raises(AudioError, match=rf"^{root}/songs/bad.wav: not a readable audio file"):
        with storage.local_copy(f"{root}/songs/bad.wav", str(tmp_path)) as local:
            nst.load(local)


def test_missing_fsspec_or_storage_package_or_an_unknown_scheme_is_one_line(monkeypatch):
    with pytest.raises(ParameterError, match="not a URL that fsspec can open"):
        storage.filesystem("nosuchscheme://bucket/a.wav")
    if importlib.util.find_spec("s3fs") is None:
        with pytest.raises(ParameterError, match=r"^s3://bucket/a.wav: .*s3fs"):
            storage.filesystem("s3://bucket/a.wav")
    monkeypatch.setitem(sys.modules, "fsspec", None)
    with pytest.raises(ParameterError, match=r"need fsspec: pip install 'nstaudio\[distributed\]'"):
        storage.filesystem("s3://bucket/a.wav")


# --- items at URLs -----------------------------------------------------------------------------------

def test_items_from_a_url_directory_and_a_url_manifest(bucket):
    root, fs = bucket
    items = collect([f"{root}/songs"], f"{root}/out", styles=[f"{root}/style.wav"])
    assert [item.key for item in items] == ["a.wav", "bad.wav", os.path.join("sub", "b.flac")]
    assert [item.output for item in items] == [f"{root}/out/a.wav", f"{root}/out/bad.wav", f"{root}/out/sub/b.flac"]
    assert all(item.styles == (f"{root}/style.wav",) for item in items)
    fs.pipe_file(f"{root}/list.csv", b"content,style,alpha\nsongs/a.wav,style.wav,0.5\nsongs/sub/b.flac,,\n")
    a, b = collect([f"{root}/list.csv"], "/tmp/local-out", styles=[f"{root}/songs/a.wav"])
    assert a.content == f"{root}/songs/a.wav" and a.styles == (f"{root}/style.wav",) and a.options == {"alpha": 0.5}
    assert a.output == "/tmp/local-out/songs/a.wav" and b.styles == (f"{root}/songs/a.wav",)
    assert b.key == os.path.join("songs", "sub", "b.flac")


def test_url_outputs_that_are_inputs_and_bad_url_styles_are_refused_before_any_work(bucket):
    root, _ = bucket
    with pytest.raises(ParameterError, match="is the input directory"):
        collect([f"{root}/songs"], f"{root}/songs", styles=[f"{root}/style.wav"])
    with pytest.raises(ParameterError, match="is one of the inputs"):
        collect([f"{root}/songs/a.wav"], f"{root}/songs", styles=[f"{root}/style.wav"])
    with pytest.raises(AudioError, match=r"bad.wav: not a readable audio file"):
        collect([f"{root}/songs/a.wav"], f"{root}/out", styles=[f"{root}/songs/bad.wav"])
    with pytest.raises(ParameterError, match=r"nothing.wav: no such file or directory"):
        collect([f"{root}/nothing.wav"], f"{root}/out", styles=[f"{root}/style.wav"])


# --- whole batches -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def in_process_cluster():
    """One single-threaded worker in this process: it sees this process's memory:// store."""
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
    with cluster:
        yield cluster.scheduler_address


def test_a_batch_on_an_object_store_equals_the_same_batch_on_local_files(bucket, tmp_path, in_process_cluster):
    root, fs = bucket
    mirror(root, fs, str(tmp_path / "local"))
    local = nst.batch([str(tmp_path / "local" / "songs")], [str(tmp_path / "local" / "style.wav")],
                      outdir=str(tmp_path / "out"), scheduler=in_process_cluster, **TINY)
    remote = nst.batch([f"{root}/songs"], [f"{root}/style.wav"], outdir=f"{root}/out", scheduler=in_process_cluster,
                       **TINY)
    assert [r["status"] for r in remote] == ["done", "failed", "done"]
    assert remote[1]["error"].startswith(f"{root}/songs/bad.wav: not a readable audio file")
    for mine, theirs in zip(remote, local):
        assert mine["output"] == f"{root}/out/{mine['key']}"
        assert (mine["loss"], mine["iterations"]) == (theirs["loss"], theirs["iterations"])
        if mine["status"] == "done":
            data = fs.cat_file(mine["output"])
            assert len(data) == mine["output_bytes"]
            with open(theirs["output"], "rb") as f:
                assert data == f.read()  # the same file, to the byte
    assert sorted(e["key"] for e in read_entries(f"{root}/out")) == sorted(r["key"] for r in remote)
    names = [posixpath.relpath(path, fs._strip_protocol(f"{root}/out")) for path in fs.find(f"{root}/out")]
    assert sorted(names) == ["a.wav", LEDGER_NAME, "sub/b.flac"]  # no temporary file

    again = nst.batch([f"{root}/songs"], [f"{root}/style.wav"], outdir=f"{root}/out", scheduler=in_process_cluster,
                      **TINY)
    assert [r["status"] for r in again] == ["skipped", "failed", "skipped"]
    fs.pipe_file(f"{root}/songs/a.wav", wav_bytes(harmonic_tone(0.8, seed=5)))  # changed input: done again
    third = nst.batch([f"{root}/songs"], [f"{root}/style.wav"], outdir=f"{root}/out", scheduler=in_process_cluster,
                      **TINY)
    assert [r["status"] for r in third] == ["done", "failed", "skipped"]


def test_batch_command_on_file_urls_with_worker_processes(tmp_path):
    songs = tmp_path / "songs"
    os.makedirs(songs / "sub")
    sf.write(str(songs / "a.wav"), harmonic_tone(0.8, seed=1), SR)
    sf.write(str(songs / "sub" / "b.flac"), harmonic_tone(0.7, f0=262, seed=2), SR)
    (songs / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    sf.write(str(tmp_path / "style.wav"), harmonic_tone(1.0, f0=330, seed=9), SR)
    out = f"file://{tmp_path}/out"
    args = ["batch", f"file://{songs}", f"file://{tmp_path}/style.wav", "-o", out, "--workers", "2", *TINY_CLI]
    first = CliRunner().invoke(cli.main, args)
    assert first.exit_code == 2, first.output
    assert f"failed: file://{songs}/bad.wav: not a readable audio file" in first.stderr
    assert "2 done, 0 skipped, 1 failed" in first.stderr and f"records in {out}/{LEDGER_NAME}" in first.stderr
    for key in ("a.wav", os.path.join("sub", "b.flac")):
        y, sr = sf.read(str(tmp_path / "out" / key))
        assert sr == SR and np.all(np.isfinite(y))
    rerun = CliRunner().invoke(cli.main, args)
    assert rerun.exit_code == 2 and "0 done, 2 skipped, 1 failed" in rerun.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["a.wav", LEDGER_NAME, "sub"]


def test_a_file_url_output_that_is_a_local_input_is_refused(tmp_path):
    sf.write(str(tmp_path / "a.wav"), harmonic_tone(0.5, seed=1), SR)
    sf.write(str(tmp_path / "style.wav"), harmonic_tone(0.5, seed=2), SR)
    with pytest.raises(ParameterError, match="is one of the inputs"):
        collect([f"file://{tmp_path}/a.wav"], str(tmp_path), styles=[str(tmp_path / "style.wav")])
    with pytest.raises(ParameterError, match="is the input directory"):
        collect([str(tmp_path)], f"file://{tmp_path}", styles=[str(tmp_path / "style.wav")])


@pytest.mark.parametrize("args, message", [
    (["nosuchscheme://x/songs", "--style", "{style}"], "not a URL that fsspec can open"),
    (["{songs}", "--style", "memory://nowhere/style.wav"], "memory://nowhere/style.wav: no such file"),
    (["{songs}", "--model", "memory://nowhere/model.npz"], "memory://nowhere/model.npz: no such file"),
    (["memory://nowhere/songs", "--style", "{style}"], "memory://nowhere/songs: no such file or directory"),
])
def test_url_mistakes_get_one_line_before_any_work(tmp_path, args, message):
    sf.write(str(tmp_path / "a.wav"), harmonic_tone(0.5, seed=1), SR)
    sf.write(str(tmp_path / "style.wav"), harmonic_tone(0.5, seed=2), SR)
    args = [arg.format(songs=tmp_path / "a.wav", style=tmp_path / "style.wav") for arg in args]
    result = CliRunner().invoke(cli.main, ["batch", *args, "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert not os.path.exists(tmp_path / "out")
