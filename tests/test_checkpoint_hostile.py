"""Untrusted checkpoint files: refused with one line, in memory proportional to their size, never unpickled.

Models are files people pass around, so ``load_checkpoint`` and ``load_model`` must treat a
file as hostile: every damaged, forged or oversized one gives a CheckpointError (which the
CLI prints as one line, exit status 2), never another exception, a traceback or a huge
allocation. Targeted tests first, then hypothesis fuzzing of the bytes, the ``.npy`` headers
and the JSON header of a small real checkpoint.

The fuzz tests run under the ``checkpoint-fuzz`` hypothesis profile (200 derandomized
examples each, a few seconds); ``NSTAUDIO_FUZZ_PROFILE=checkpoint-fuzz-long`` runs many more
random ones.
"""

import io
import json
import os
import struct
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from nstaudio.cli.main import main
from nstaudio.errors import ParameterError
from nstaudio.nn.autoencoder import Architecture, Autoencoder
from nstaudio.nn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from nstaudio.nn.model_file import Model as Network, default_lossnet, load_model, save_model
from nstaudio.nn.training import check_resumable, resume_state

from conftest import harmonic_tone

settings.register_profile("checkpoint-fuzz", max_examples=200, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("checkpoint-fuzz-long", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings.get_profile(os.environ.get("NSTAUDIO_FUZZ_PROFILE", "checkpoint-fuzz"))

TINY = Architecture(n_bins=9, channels=(4, 4, 4, 4), width=3, stride=2)
MODEL_META = {"kind": "style", "sr": 22050, "n_fft": 16, "hop_length": 4}  # 1 + 16 // 2 = 9 bins
SETTINGS = {"sr_work": 22050, "n_fft": 16, "architecture": TINY.to_dict()}
HUGE = {"n_bins": 10**7, "channels": [10**6] * 4, "width": 5, "stride": 2}
LARGEST = {"n_bins": Architecture.MAX_BINS, "channels": [Architecture.MAX_CHANNELS] * 4,
           "width": Architecture.MAX_WIDTH, "stride": Architecture.MAX_STRIDE}
MB = 2**20


def _touch(path):
    """What a pickle in a forged file would run if it were ever loaded."""
    open(path, "w").close()


class _Trap:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return _touch, (self.path,)


# --- files ---------------------------------------------------------------------------------


class _Files(dict):
    """The fixture's files by name."""

    def __repr__(self):  # hypothesis prints the arguments of a failing example: not 30 kB of arrays
        return "<the files fixture>"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small finished style model and an unfinished training run (bytes and arrays of each)."""
    root = tmp_path_factory.mktemp("hostile")
    params, state = Autoencoder(TINY).init_params(seed=1)
    model = root / "model.npz"
    save_model(model, Network(TINY, params, state, dict(MODEL_META)))
    moments = {layer: {f"{name}.{m}": np.full_like(a, 0.5) for name, a in values.items() for m in "mv"}
               for layer, values in params.items()}
    run = root / "run.npz"
    meta = {**MODEL_META, "kind": "lossnet", "complete": False, "step": 2, "steps": 5,
            "rng": np.random.default_rng(3).bit_generator.state, "settings": SETTINGS}
    save_checkpoint(run, TINY, params, state, meta=meta, moments=moments, history=[1.0, 0.5])
    return _Files(root=root, model=model.read_bytes(), run=run.read_bytes(), model_arrays=_arrays(model),
                  run_arrays=_arrays(run))


def _arrays(path):
    """A trusted file's arrays, the header decoded."""
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["header"] = json.loads(arrays["header"].tobytes())
    return arrays


_KEEP = object()


def _write(path, arrays, header=_KEEP):
    """An npz of ``arrays``, with ``header`` (any JSON value, None too, or raw bytes) as its header."""
    arrays = dict(arrays)
    kept = arrays.pop("header")
    header = kept if header is _KEEP else header
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    np.savez(path, header=np.frombuffer(raw, np.uint8), **arrays)
    return path


def _npy(header, data=b""):
    """The bytes of a ``.npy`` entry (format 1.0, or 2.0 for a long header) with this header dict (any values)."""
    text = ("{" + "".join(f"{key!r}: {value!r}, " for key, value in header.items()) + "}").encode("utf-8")
    version, length = (b"\x01\x00", "<H") if len(text) < 2**16 - 64 else (b"\x02\x00", "<I")
    text += b" " * (-(8 + struct.calcsize(length) + len(text) + 1) % 64) + b"\n"  # data aligned to 64 bytes
    return b"\x93NUMPY" + version + struct.pack(length, len(text)) + text + data


def _zip(path, members, method=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _refused(load, path, match=None):
    """``load(path)`` raises a CheckpointError with a one-line message naming the file; returns the message."""
    with pytest.raises(CheckpointError, match=match) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message and len(message) < 1000, message
    assert "pickle" not in message.lower(), message
    assert message.startswith(os.fspath(path)), message
    return message


def _peak_memory(function, *args):
    """Peak bytes allocated (numpy's arrays included) while ``function(*args)`` runs, and what it raised."""
    tracemalloc.start()
    try:
        function(*args)
        raised = None
    except Exception as exc:  # noqa: BLE001 (returned for the caller to check)
        raised = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, raised


def _check_loaded(ckpt_or_network):
    """A successful load holds exactly the finite float32 arrays of its architecture."""
    shapes = ckpt_or_network.arch.array_shapes()
    for group, tree in (("params", ckpt_or_network.params), ("state", ckpt_or_network.state)):
        assert {layer: {name: a.shape for name, a in values.items()} for layer, values in tree.items()} == \
            shapes[group]
        for values in tree.values():
            for a in values.values():
                assert a.dtype == np.float32 and np.all(np.isfinite(a))


# --- the architecture ----------------------------------------------------------------------


@pytest.mark.parametrize("arch", [
    TINY,
    Architecture(n_bins=1, channels=(1, 1, 1, 1), width=1, stride=1),
    Architecture(n_bins=3, channels=(4, 3, 2, 2), width=3, stride=2),
    Architecture(n_bins=12, channels=(7, 5, 3, 1), width=7, stride=3),
    Architecture(n_bins=1025, channels=(128, 64, 64, 32), width=5, stride=2),
])
def test_array_shapes_are_those_of_init_params(arch):
    params, state = Autoencoder(arch).init_params()
    made = {group: {layer: {name: a.shape for name, a in values.items()} for layer, values in tree.items()}
            for group, tree in (("params", params), ("state", state))}
    assert arch.array_shapes() == made


@pytest.mark.parametrize("field, value, match", [
    ("n_bins", "9", "n_bins must be an integer"),
    ("n_bins", 9.0, "n_bins must be an integer"),
    ("n_bins", True, "n_bins must be an integer"),
    ("n_bins", [9], "n_bins must be an integer, got a list"),
    ("n_bins", {"a": 1}, "n_bins must be an integer, got a dict"),
    ("n_bins", None, "n_bins must be an integer"),
    ("n_bins", 0, "n_bins must be >= 1"),
    ("n_bins", Architecture.MAX_BINS + 1, "n_bins must be <="),
    ("n_bins", 10**400, "n_bins must be <="),
    ("channels", "4444", "channels must be a list"),
    ("channels", 4, "channels must be a list"),
    ("channels", [4, 4, 4], "channels must be 4"),
    ("channels", [4, 4, 4, "4"], "channels must be an integer"),
    ("channels", [4, 4, 4, [[4]]], "channels must be an integer, got a list"),
    ("channels", [4, 4, 4, 4.5], "channels must be an integer"),
    ("channels", [4, 4, 4, 0], "channels must be >= 1"),
    ("channels", [10**6] * 4, "channels must be <= 4096"),
    ("width", 4, "width must be odd"),
    ("width", 65, "width must be <= 63"),
    ("width", False, "width must be an integer"),
    ("stride", 17, "stride must be <= 16"),
    ("stride", -1, "stride must be >= 1"),
])
def test_every_architecture_field_is_checked(field, value, match):
    with pytest.raises(ParameterError, match=match):
        Architecture.from_dict({**TINY.to_dict(), field: value})


def test_architecture_mappings_are_checked():
    for d, match in (([], "must be a mapping"), ({"n_bins": 9}, "lacks channels, width, stride"),
                     ({**TINY.to_dict(), "dilation": 2}, "unknown architecture field 'dilation'")):
        with pytest.raises(ParameterError, match=match):
            Architecture.from_dict(d)
    largest = Architecture.from_dict(LARGEST)  # the bounds themselves are fine
    assert largest.to_dict() == LARGEST and Architecture.from_dict(TINY.to_dict()) == TINY
    assert Architecture(n_bins=np.int64(9), channels=[4, 4, 4, 4], width=3) == TINY  # kept as plain ints
    assert type(Architecture(n_bins=np.int64(9)).n_bins) is int


# --- the JSON header -----------------------------------------------------------------------


@pytest.mark.parametrize("header", [[], 3, "x", None, True, 1.5, [{"format": "nstaudio-checkpoint"}]])
def test_a_header_that_is_no_json_object_is_refused(tmp_path, files, header):
    path = _write(tmp_path / "h.npz", files["model_arrays"], header)
    for load in (load_checkpoint, load_model):
        assert "not a JSON object" in _refused(load, path, match="no valid header")


@pytest.mark.parametrize("raw, match", [
    (b"\xff\xfe{}", "no valid header"),  # not UTF-8
    (b"{" * 100_000, "no valid header"),  # not JSON
    (b"[" * 5000 + b"]" * 5000, "no valid header"),  # nested too deeply for the parser
    (b'{"format": 1e999}', "format inf"),
    (b'{"format": "nstaudio-checkpoint", "version": true}', "version True"),
    (b'{"format": "nstaudio-checkpoint", "version": 1.0}', "version 1.0"),
    (b'{"format": "nstaudio-checkpoint", "version": 1}', "no architecture"),
    (b'{"format": "\\n\\u001b[31m' + b"x" * 5000 + b'"}', "format"),  # a line break, an escape, 5000 chars
])
def test_raw_headers_are_refused(tmp_path, files, raw, match):
    path = _write(tmp_path / "h.npz", files["model_arrays"], raw)
    _refused(load_checkpoint, path, match=match)


# (where in the header, field, value, message) for load_model
WRONG_FIELDS = [
    ("architecture", "n_bins", "9", "n_bins must be an integer"),
    ("architecture", "n_bins", 9.5, "n_bins must be an integer"),
    ("architecture", "channels", {"0": 4}, "channels must be a list"),
    ("architecture", "width", [3], "width must be an integer"),
    ("architecture", "stride", True, "stride must be an integer"),
    ("architecture", "n_bins", 10**30, "n_bins must be <="),
    (None, "architecture", [9, [4, 4, 4, 4], 3, 2], "must be a mapping"),
    (None, "architecture", None, "must be a mapping"),
    (None, "meta", [], "meta is a list"),
    (None, "meta", "style", "meta is 'style', not a mapping"),
    (None, "format", {"a": [1, 2]}, "format a mapping"),
    ("meta", "kind", ["style"], "a known kind"),
    ("meta", "kind", {"style": 1}, "a known kind"),
    ("meta", "kind", "jazz", "a known kind"),
    ("meta", "sr", "22050", "sr is '22050'"),
    ("meta", "sr", 22050.0, "sr is 22050.0"),
    ("meta", "sr", 10**30, "sr is a 100-bit integer"),
    ("meta", "sr", -1, "sr is -1"),
    ("meta", "n_fft", 1.5, "n_fft is 1.5"),
    ("meta", "n_fft", 32, "n_fft 32 makes 17 frequency bins"),
    ("meta", "n_fft", 2**17, "n_fft is 131072"),
    ("meta", "hop_length", 0, "hop_length is 0"),
    ("meta", "hop_length", 17, "hop_length is 17"),
    ("meta", "hop_length", None, "hop_length is None"),
    ("meta", "complete", "yes", "complete is 'yes'"),
    ("meta", "complete", 1, "complete is 1"),
    ("meta", "complete", False, "unfinished training run"),
]


@pytest.mark.parametrize("where, field, value, match", WRONG_FIELDS)
def test_wrong_types_and_ranges_in_the_header_are_refused(tmp_path, files, where, field, value, match):
    header = json.loads(json.dumps(files["model_arrays"]["header"]))
    (header if where is None else header[where])[field] = value
    path = _write(tmp_path / "h.npz", files["model_arrays"], header)
    _refused(load_model, path, match=match)


def test_the_fixture_files_load(tmp_path, files):
    model = tmp_path / "m.npz"
    model.write_bytes(files["model"])
    _check_loaded(load_model(model, kind="style"))
    run = tmp_path / "run.npz"
    run.write_bytes(files["run"])
    training = resume_state(run, True, SETTINGS)
    assert training.step == 2 and training.history.tolist() == [1.0, 0.5] and training.moments["enc0"]["W.v"].size


def test_the_shipped_loss_network_loads():
    lossnet = default_lossnet()  # float16 parameters
    _check_loaded(lossnet)
    assert lossnet.arch.n_bins == 1 + lossnet.meta["n_fft"] // 2


@pytest.mark.parametrize("field, value, match", [
    ("step", "2", "step is '2'"),
    ("step", 6, "step is 6, not an integer from 0 to 5"),
    ("step", 2.0, "step is 2.0"),
    ("steps", None, "steps is None"),
    ("steps", 10**8, "steps is 100000000"),
    ("complete", "no", "complete is 'no'"),
    ("complete", 0, "complete is 0"),
    ("settings", [["a", 1]], "settings is a list"),
    ("settings", "x", "settings is 'x'"),
    ("settings", {**SETTINGS, "architecture": {**TINY.to_dict(), "width": 5}}, "architecture of the settings"),
    ("rng", [], "rng"),
    ("rng", {"bit_generator": "MT19937", "state": {"key": [1], "pos": 0}}, "rng"),
    ("rng", "PCG64", "rng"),
    ("rng", {"bit_generator": "PCG64", "state": {"state": 1.5, "inc": 1}, "has_uint32": 0, "uinteger": 0}, "rng"),
    ("rng", {"bit_generator": "PCG64", "state": {"state": True, "inc": 1}, "has_uint32": 0, "uinteger": 0}, "rng"),
    ("rng", {"bit_generator": "PCG64", "state": {"state": 2**200, "inc": 1}, "has_uint32": 0, "uinteger": 0},
     "rng"),
    ("rng", {"bit_generator": "PCG64", "state": {"state": -1, "inc": 1}, "has_uint32": 0, "uinteger": 0}, "rng"),
    ("rng", {"bit_generator": "PCG64", "state": [1, 2], "has_uint32": 0, "uinteger": 0}, "rng"),
    ("rng", {"bit_generator": "PCG64", "state": {"state": 1, "inc": 1}, "has_uint32": [0], "uinteger": 0}, "rng"),
])
def test_a_corrupt_unfinished_run_is_refused_on_resume(tmp_path, files, field, value, match):
    header = json.loads(json.dumps(files["run_arrays"]["header"]))
    header["meta"][field] = value
    path = _write(tmp_path / "run.npz", files["run_arrays"], header)
    _refused(lambda p: resume_state(p, True, SETTINGS), path, match=match)


def test_the_history_of_an_unfinished_run_is_checked(tmp_path, files):
    arrays = dict(files["run_arrays"])
    _refused(lambda p: check_resumable(p, True), _write(tmp_path / "a.npz", {**arrays, "history": np.zeros(3)}),
             match="a history of 3 losses after 2 steps")
    del arrays["history"]
    _refused(lambda p: check_resumable(p, True), _write(tmp_path / "b.npz", arrays), match="no history")
    _refused(lambda p: check_resumable(p, True), _write(tmp_path / "c.npz", {**arrays, "history": np.zeros((2, 1))}),
             match="history has shape")


def test_the_settings_keys_of_a_forged_run_stay_on_one_line(tmp_path, files):
    header = json.loads(json.dumps(files["run_arrays"]["header"]))
    header["meta"]["settings"] = {**SETTINGS, "a\nb": 1, **{f"k{i}": i for i in range(20)}, "x" * 500: 0}
    path = _write(tmp_path / "run.npz", files["run_arrays"], header)
    assert "and 14 more" in _refused(lambda p: resume_state(p, True, SETTINGS), path, match="other settings")


def test_a_directory_is_no_checkpoint(tmp_path):
    (tmp_path / "d.npz").mkdir()
    _refused(load_checkpoint, tmp_path / "d.npz", match="not a regular file")
    _refused(load_model, tmp_path / "d.npz")
    _refused(lambda p: check_resumable(p, False), tmp_path / "d.npz", match="is a directory")


# --- claims about sizes --------------------------------------------------------------------


def _largest_arch_headers_without_data(path, arch_dict):
    """A zip whose every .npy header claims the shape ``arch_dict`` needs, holding no data at all."""
    arch = Architecture.from_dict(arch_dict)
    header = {"format": "nstaudio-checkpoint", "version": 1, "architecture": arch_dict, "meta": dict(MODEL_META)}
    raw = json.dumps(header).encode()
    members = {"header.npy": _npy({"descr": "|u1", "fortran_order": False, "shape": (len(raw),)}, raw)}
    for group, tree in arch.array_shapes().items():
        for layer, values in tree.items():
            for name, shape in values.items():
                members[f"{group}/{layer}/{name}.npy"] = _npy({"descr": "<f4", "fortran_order": False, "shape": shape})
    return _zip(path, members)


@pytest.mark.parametrize("case", ["out of range", "largest, arrays of another", "largest, headers only"])
def test_a_huge_architecture_in_a_tiny_file_is_refused_in_little_memory(tmp_path, files, case):
    path = tmp_path / "huge.npz"
    if case == "out of range":
        header = {**files["model_arrays"]["header"], "architecture": HUGE}
        _write(path, files["model_arrays"], header)
    elif case == "largest, arrays of another":
        _write(path, files["model_arrays"], {**files["model_arrays"]["header"], "architecture": LARGEST})
    else:
        _largest_arch_headers_without_data(path, LARGEST)
    assert path.stat().st_size < 100_000  # claiming arrays of 30 GB and more
    for load in (load_checkpoint, load_model):
        peak, raised = _peak_memory(load, path)
        assert isinstance(raised, CheckpointError), raised
        assert peak < 2 * MB, peak
    _refused(load_model, path)


def _with_bomb(path, model, shape, megabytes):
    """The model plus a history entry: a .npy header claiming ``shape``, then ``megabytes`` MB of deflated zeros."""
    path.write_bytes(model)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=9) as zf, zf.open("history.npy", "w") as f:
        f.write(_npy({"descr": "<f8", "fortran_order": False, "shape": shape}))
        zeros = bytes(MB)
        for _ in range(megabytes):
            f.write(zeros)
    return path


@pytest.fixture(scope="module")
def bomb(files):
    """The tiny model plus a 200 MB history deflated to 200 KB."""
    return _with_bomb(files["root"] / "bomb.npz", files["model"], (25 * MB,), 200)


def test_a_deflate_bomb_is_refused_before_it_is_inflated(bomb):
    assert bomb.stat().st_size < 1 * MB
    for load in (load_checkpoint, load_model):
        peak, raised = _peak_memory(load, bomb)
        assert isinstance(raised, CheckpointError) and "far more than" in str(raised), raised
        assert peak < 2 * MB, peak
    _refused(load_checkpoint, bomb)


def _entry_offsets(data, name):
    """Offsets of entry ``name``'s local header and of its record in the zip's central directory."""
    end = data.rfind(b"PK\x05\x06")
    at = struct.unpack_from("<I", data, end + 16)[0]
    while at < end:
        n, extra, comment = struct.unpack_from("<HHH", data, at + 28)
        if data[at + 46:at + 46 + n] == name.encode():
            return struct.unpack_from("<I", data, at + 42)[0], at
        at += 46 + n + extra + comment
    raise KeyError(name)


def _patched(data, name, *edits):
    """``data`` with struct fields of entry ``name`` changed: (``"local"`` or ``"central"``, offset, format, value)."""
    data = bytearray(data)
    local, central = _entry_offsets(data, name)
    for where, offset, fmt, value in edits:
        struct.pack_into(fmt, data, (local if where == "local" else central) + offset, value)
    return bytes(data)


@pytest.mark.parametrize("shape, why", [((1000,), "CRC"), ((25 * MB,), "but holds 8000")])
def test_a_bomb_that_understates_its_size_is_refused(tmp_path, files, shape, why):
    """zipfile stops inflating at the declared size; then the CRC or the .npy header's claim gives it away."""
    path = _with_bomb(tmp_path / "liar.npz", files["model"], shape, 50)
    claimed = 128 + 8 * 1000  # the .npy header, and 1000 float64
    path.write_bytes(_patched(path.read_bytes(), "history.npy", ("local", 22, "<I", claimed),
                              ("central", 24, "<I", claimed)))
    peak, raised = _peak_memory(load_checkpoint, path)
    assert isinstance(raised, CheckpointError) and why in str(raised), raised
    assert peak < 2 * MB, peak


def test_a_header_entry_of_more_than_a_megabyte_is_refused(tmp_path, files):
    header = {**files["model_arrays"]["header"], "padding": "x" * (2 * MB)}
    _refused(load_checkpoint, _write(tmp_path / "big.npz", files["model_arrays"], header), match="more than")


# --- the arrays ----------------------------------------------------------------------------


@pytest.mark.parametrize("key, value, match", [
    ("params/enc0/W", np.nan, "params/enc0/W holds NaN or infinite values"),
    ("params/dec3/b", np.inf, "params/dec3/b holds NaN"),
    ("params/bn_enc1/gamma", -np.inf, "NaN or infinite"),
    ("state/bn_dec0/running_mean", np.nan, "state/bn_dec0/running_mean holds NaN"),
    ("state/bn_enc2/running_var", -1.0, "negative variances"),
    ("params/enc0/W", 1e300, "NaN or infinite"),  # float64 beyond float32: infinite once read
])
def test_non_finite_parameters_are_refused(tmp_path, files, key, value, match):
    arrays = dict(files["model_arrays"])
    bad = arrays[key].astype(np.float64)
    bad.flat[-1] = value
    path = _write(tmp_path / "nan.npz", {**arrays, key: bad})
    for load in (load_checkpoint, load_model):
        _refused(load, path, match=match)


@pytest.mark.parametrize("key, value, match", [
    ("params/enc0/W", lambda a: a.astype(np.int32), "params/enc0/W holds int32, not floats"),
    ("params/enc0/b", lambda a: a.astype(np.complex64), "holds complex64, not floats"),
    ("params/enc0/b", lambda a: a.astype("<U8"), "holds <U8, not floats"),
    ("params/enc0/b", lambda a: np.zeros(a.shape, [("x", "<f4")]), "not floats"),
    ("params/enc0/b", lambda a: a.astype(bool), "not floats"),
    ("params/enc0/W", lambda a: a.reshape(-1), r"params/enc0/W has shape \(108,\), the architecture needs \(4, 9, 3\)"),
    ("params/enc0/W", lambda a: a[..., :2], "has shape"),
    ("state/bn_enc0/running_var", lambda a: a[None], "has shape"),
    ("params/nonsense/W", lambda a: np.zeros(3), "unexpected entry 'params/nonsense/W'"),
    ("moments/enc0/W.m", lambda a: np.zeros((4, 9, 3)), "come in pairs"),
    ("moments/enc0/W.x", lambda a: np.zeros((4, 9, 3)), "unexpected entry"),
    ("history", lambda a: np.zeros((2, 2)), "history has shape"),
    ("history", lambda a: np.arange(3), "history holds int64, not floats"),
])
def test_wrong_dtypes_shapes_and_entries_are_refused(tmp_path, files, key, value, match):
    arrays = dict(files["model_arrays"])
    path = _write(tmp_path / "bad.npz", {**arrays, key: value(arrays.get(key, np.zeros(1)))})
    _refused(load_checkpoint, path, match=match)


def test_missing_arrays_are_refused(tmp_path, files):
    arrays = dict(files["model_arrays"])
    del arrays["state/bn_dec2/running_var"]
    _refused(load_checkpoint, _write(tmp_path / "m.npz", arrays),
             match=r"state/bn_dec2/running_var is missing; the architecture needs shape \(4,\)")


@pytest.mark.parametrize("key", ["params/enc0/b", "header", "history"])
def test_object_arrays_are_never_unpickled(tmp_path, files, key):
    trap = tmp_path / "unpickled"
    arrays = dict(files["model_arrays"])
    header = json.dumps(arrays.pop("header")).encode()
    objects = np.array([_Trap(str(trap)), None], dtype=object)
    with open(tmp_path / "obj.npz", "wb") as f:  # np.savez pickles object arrays
        np.savez(f, **{"header": np.frombuffer(header, np.uint8), **arrays, key: objects})
    for load in (load_checkpoint, load_model):
        message = _refused(load, tmp_path / "obj.npz")
        assert "object" in message
    assert not trap.exists()


def test_npy_headers_are_checked_against_the_entry_size(tmp_path, files):
    members = {}
    with zipfile.ZipFile(io.BytesIO(files["model"])) as zf:
        for info in zf.infolist():
            members[info.filename] = zf.read(info)
    cases = [
        ({"descr": "<f4", "fortran_order": False, "shape": (4,)}, b"", "16 bytes, but holds 0"),  # header only
        ({"descr": "<f4", "fortran_order": False, "shape": (4,)}, bytes(20), "16 bytes, but holds 20"),
        ({"descr": "<f4", "fortran_order": False, "shape": (-4,)}, b"", "has shape"),
        ({"descr": "<f4", "fortran_order": False, "shape": (4, 10**12)}, b"", "has shape"),
        ({"descr": "<f4", "fortran_order": "no", "shape": (4,)}, bytes(16), "fortran_order is not a valid bool"),
        ({"descr": "<f9", "fortran_order": False, "shape": (4,)}, bytes(16), "unreadable .npy header"),
        ({"descr": "|O", "fortran_order": False, "shape": (4,)}, bytes(32), "holds object, not floats"),
        ({"descr": [("a", "<f4", (2,))], "fortran_order": False, "shape": (4,)}, bytes(32), "not floats"),
        ({"descr": [("a", "<f4", (10**12,))], "fortran_order": False, "shape": (4,)}, b"", "unreadable .npy header"),
    ]
    for header, data, match in cases:
        path = _zip(tmp_path / "n.npz", {**members, "params/enc0/b.npy": _npy(header, data)})
        peak, raised = _peak_memory(load_checkpoint, path)
        assert isinstance(raised, CheckpointError) and match in str(raised), (header, raised)
        assert peak < 2 * MB
    # the unmodified members load, deflated too
    _check_loaded(load_checkpoint(_zip(tmp_path / "ok.npz", members, zipfile.ZIP_DEFLATED)))
    version3 = members["params/enc0/b.npy"].replace(b"\x93NUMPY\x01\x00", b"\x93NUMPY\x03\x00", 1)
    _refused(load_checkpoint, _zip(tmp_path / "v3.npz", {**members, "params/enc0/b.npy": version3}),
             match="version 3.0")


@pytest.mark.parametrize("text, match", [
    (b"{'descr': '<f4', 'fortran_order': False, 'shape': (4,", "unreadable .npy header"),  # tokenize.TokenError
    (b"{'a': '" + b"'" * 2, "unreadable .npy header"),  # an unterminated triple-quoted string
    (b"\t{}\n  )", "unreadable .npy header"),  # IndentationError
    (b"[1, 2]", "unreadable .npy header"),
    (b"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}", "unreadable .npy header"),
    (b"(" * 1000 + b")" * 1000, "unreadable .npy header"),
    (b" " * 20_000, "a .npy header of 20001 bytes"),  # numpy's own message for this suggests unpickling
])
def test_unreadable_npy_headers_are_refused(tmp_path, files, text, match):
    with zipfile.ZipFile(io.BytesIO(files["model"])) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    text += b"\n"
    members["params/enc0/b.npy"] = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + bytes(16)
    _refused(load_checkpoint, _zip(tmp_path / "n.npz", members), match=match)
    members["params/enc0/b.npy"] = b"\x93NUMPY\x01\x00" + struct.pack("<H", 500) + b"{"  # shorter than it says
    _refused(load_checkpoint, _zip(tmp_path / "n.npz", members), match="params/enc0/b")


def test_npy_header_parsing_prints_no_warnings(tmp_path, files):
    """numpy warns of Python 2 headers, Python of bad escapes in forged ones: on the command line, noise."""
    with zipfile.ZipFile(io.BytesIO(files["model"])) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    for text in (b"{'descr': '<f4', 'fortran_order': False, 'shape': (4L,), }", b"{'descr': '<f4\\,'}"):
        text += b"\n"
        members["params/enc0/b.npy"] = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + bytes(16)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                load_checkpoint(_zip(tmp_path / "w.npz", members))
            except CheckpointError:
                pass
        assert not caught, [str(w.message) for w in caught]


def test_fortran_ordered_arrays_load(tmp_path, files):
    arrays = dict(files["model_arrays"])
    W = arrays["params/enc0/W"]
    ckpt = load_checkpoint(_write(tmp_path / "f.npz", {**arrays, "params/enc0/W": np.asfortranarray(W)}))
    np.testing.assert_array_equal(ckpt.params["enc0"]["W"], W)
    assert ckpt.params["enc0"]["W"].flags["C_CONTIGUOUS"] and ckpt.params["enc0"]["W"].flags["WRITEABLE"]


# --- zip-level damage ----------------------------------------------------------------------


def _member_offsets(data):
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: info for info in zf.infolist()}


def test_truncated_files_are_refused(tmp_path, files):
    data = files["model"]
    for size in (0, 1, 4, 30, 100, 1000, len(data) // 2, len(data) - 22, len(data) - 1):
        path = tmp_path / "t.npz"
        path.write_bytes(data[:size])
        _refused(load_checkpoint, path, match="not a readable checkpoint")


def test_crc_errors_compression_methods_and_encryption_are_refused(tmp_path, files):
    name = "params/enc0/W.npy"
    data = files["model"]
    path = tmp_path / "p.npz"

    def refused(*edits, match):
        path.write_bytes(_patched(data, name, *edits))
        _refused(load_checkpoint, path, match=match)

    info = _member_offsets(data)[name]
    inside = 30 + len(info.filename) + len(info.extra) + 200  # a byte of the array data, from the local header
    refused(("local", inside, "B", data[info.header_offset + inside] ^ 0x10), match="CRC")
    for method in (12, 14, 99, 1):  # bzip2 and lzma inflate without a bound on the output; unknown; shrunk
        refused(("local", 8, "<H", method), ("central", 10, "<H", method), match=f"compression method {method}")
    refused(("local", 6, "<H", 1), ("central", 8, "<H", 1), match="encrypted")
    refused(("central", 42, "<I", len(data) + 10), match="not a readable checkpoint")


def test_duplicate_and_foreign_entries_are_refused(tmp_path, files):
    with zipfile.ZipFile(io.BytesIO(files["model"])) as zf:
        members = [(info.filename, zf.read(info)) for info in zf.infolist()]
    path = tmp_path / "dup.npz"
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate it is asked to write
        for name, data in members + [members[3]]:
            zf.writestr(name, data)
    _refused(load_checkpoint, path, match="appears twice")
    _zip(path, {**dict(members), "README.txt": b"hello\nworld"})
    _refused(load_checkpoint, path, match="unexpected entry 'README.txt'")


# --- fuzzing -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _loads_or_refuses(path):
    """Every reader either succeeds with well-formed arrays or raises a one-line CheckpointError."""
    for load in (load_checkpoint, load_model, lambda p: check_resumable(p, True),
                 lambda p: resume_state(p, True, SETTINGS)):
        try:
            result = load(path)
        except CheckpointError as exc:
            message = str(exc)
            assert "\n" not in message and "\r" not in message and len(message) < 1000, message
            assert "pickle" not in message.lower(), message
            continue
        if result is not None and hasattr(result, "arch"):
            _check_loaded(result)


def _interesting_offsets(data):
    """Offsets of the local headers, .npy headers and central directory: where a change is more than a CRC error."""
    offsets = set()
    for info in _member_offsets(data).values():
        offsets.update(range(info.header_offset, info.header_offset + 30 + len(info.filename) + 140))
    end = data.rfind(b"PK\x05\x06")
    offsets.update(range(struct.unpack_from("<I", data, end + 16)[0], len(data)))
    return sorted(offset for offset in offsets if offset < len(data))


_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 2**31), st.integers(0, 7)),
    st.tuples(st.just("set"), st.integers(0, 2**31), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 2**31)),
    st.tuples(st.just("insert"), st.integers(0, 2**31), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("delete"), st.integers(0, 2**31), st.integers(1, 64)),
)


def _mutate(data, mutations, interesting, focus):
    data = bytearray(data)
    for kind, where, *arg in mutations:
        if not data:
            break
        where = (interesting[where % len(interesting)] if focus else where) % len(data)
        if kind == "flip":
            data[where] ^= 1 << arg[0]
        elif kind == "set":
            data[where] = arg[0]
        elif kind == "truncate":
            del data[where:]
        elif kind == "insert":
            data[where:where] = arg[0]
        else:
            del data[where:where + arg[0]]
    return bytes(data)


@pytest.mark.parametrize("which", ["model", "run"])
@FUZZ
@given(mutations=st.lists(_mutation, min_size=1, max_size=4), focus=st.booleans())
def test_fuzzed_bytes_load_or_are_refused(files, fuzz_dir, which, mutations, focus):
    data = files[which]
    path = fuzz_dir / f"{which}.npz"
    path.write_bytes(_mutate(data, mutations, _interesting_offsets(data), focus))
    _loads_or_refuses(path)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-(10**100), 10**100)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=12,
)
# where a JSON value replaces part of a header: () the whole header, else a path into it
_TARGETS = [(), ("architecture",), ("meta",), ("format",), ("version",),
            *[("architecture", field) for field in Architecture.FIELDS], ("architecture", "channels", 2),
            *[("meta", field) for field in ("kind", "sr", "n_fft", "hop_length", "complete", "step", "steps", "rng",
                                             "settings")],
            ("meta", "rng", "state"), ("meta", "rng", "state", "inc"), ("meta", "rng", "bit_generator"),
            ("meta", "settings", "architecture")]


@pytest.mark.parametrize("which", ["model_arrays", "run_arrays"])
@FUZZ
@given(target=st.sampled_from(_TARGETS), value=_json)
def test_fuzzed_json_headers_load_or_are_refused(files, fuzz_dir, which, target, value):
    header = json.loads(json.dumps(files[which]["header"]))
    if target:
        node = header
        for key in target[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, (dict, list)) and (isinstance(node, dict) or target[-1] < len(node)):
            node[target[-1]] = value
    else:
        header = value
    _loads_or_refuses(_write(fuzz_dir / "json.npz", files[which], header))


_descr = st.one_of(
    st.sampled_from(["<f4", "<f2", ">f8", "<f8", "|u1", "<i4", "|O", "<c8", "<U4", "|V4", "|b1", "<M8[s]", "<f16"]),
    st.lists(st.tuples(st.text(max_size=3), st.sampled_from(["<f4", "|O"])), max_size=2),
    _json,
)
_shape = st.one_of(st.lists(st.integers(-2, 40), max_size=3).map(tuple), st.just((4, 9, 3)), st.just((4,)),
                   st.lists(st.integers(-(2**70), 2**70), max_size=3).map(tuple), _json)


@FUZZ
@given(key=st.sampled_from(["header.npy", "params/enc0/W.npy", "params/enc0/b.npy", "state/bn_enc0/running_var.npy",
                            "history.npy"]),
       descr=_descr, shape=_shape, fortran=st.one_of(st.booleans(), _json), cut=st.integers(-64, 64),
       deflate=st.booleans())
def test_fuzzed_npy_headers_load_or_are_refused(files, fuzz_dir, key, descr, shape, fortran, cut, deflate):
    with zipfile.ZipFile(io.BytesIO(files["run"])) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    body = members[key][128:]  # the data after numpy's 128-byte header
    body = body[:len(body) + cut] if cut < 0 else body + bytes(cut)
    members[key] = _npy({"descr": descr, "fortran_order": fortran, "shape": shape}, body)
    path = _zip(fuzz_dir / "npy.npz", members, zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
    _loads_or_refuses(path)


# the pieces of a .npy header, and what trips up numpy's parser and its Python 2 re-tokenizer
_NPY_TEXT = st.lists(st.sampled_from(["{", "}", "(", ")", "[", "]", "'", '"', "'''", ":", ",", " ", "\n", "\t", "\\",
                                      "'descr'", "'<f4'", "'fortran_order'", "False", "'shape'", "4", "9", "3", "L",
                                      "-", "1e400", "#", "\x00", "é"]), max_size=40).map("".join)


@FUZZ
@given(text=st.one_of(_NPY_TEXT, st.text(max_size=60)), data=st.integers(0, 64))
def test_fuzzed_npy_header_text_is_refused(files, fuzz_dir, text, data):
    with zipfile.ZipFile(io.BytesIO(files["model"])) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    raw = text.encode("utf-8") + b"\n"
    members["params/enc0/b.npy"] = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw + bytes(data)
    _loads_or_refuses(_zip(fuzz_dir / "text.npz", members))


# --- the command line ----------------------------------------------------------------------


def _forgeries(tmp_path, files, bomb):
    arrays = files["model_arrays"]
    nan = arrays["params/dec3/W"].copy()
    nan[0, 0, 0] = np.nan
    paths = {
        "list header": _write(tmp_path / "list.npz", arrays, []),
        "huge": _largest_arch_headers_without_data(tmp_path / "huge.npz", LARGEST),
        "nan": _write(tmp_path / "nan.npz", {**arrays, "params/dec3/W": nan}),
        "wrong sr": _write(tmp_path / "sr.npz", arrays,
                           {**arrays["header"], "meta": {**arrays["header"]["meta"], "sr": "22050\n\n"}}),
        "truncated": tmp_path / "cut.npz",
        "bomb": bomb,
    }
    paths["truncated"].write_bytes(files["model"][:-100])
    return paths


def test_the_cli_reports_a_forged_model_in_one_line(tmp_path, files, bomb):
    content = tmp_path / "content.wav"
    sf.write(content, harmonic_tone(0.5, 22050), 22050)
    for name, model in _forgeries(tmp_path, files, bomb).items():
        before = set(os.listdir(tmp_path))
        out = tmp_path / "out.wav"
        result = CliRunner().invoke(main, ["run", str(content), "--model", str(model), "-o", str(out)])
        assert result.exit_code == 2, (name, result.output, result.exc_info)
        assert isinstance(result.exception, SystemExit), (name, result.exc_info)
        lines = result.stderr.strip("\n").split("\n")
        assert len(lines) == 1 and lines[0].startswith("Error: "), (name, result.stderr)
        assert "Traceback" not in result.output, result.output
        assert not out.exists() and set(os.listdir(tmp_path)) == before, name
        assert not [f for f in os.listdir(tmp_path) if f.startswith(".nstaudio-")]
    # the fixture model itself runs: the forgeries fail for what they are, not for the CLI's arguments
    model = tmp_path / "model.npz"
    model.write_bytes(files["model"])
    result = CliRunner().invoke(main, ["run", str(content), "--model", str(model), "-o", str(tmp_path / "ok.wav"),
                                       "-q"])
    assert result.exit_code == 0, result.output

