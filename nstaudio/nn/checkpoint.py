"""Checkpoints: parameters, BatchNorm state and a small versioned JSON header in one ``.npz``.

A checkpoint may come from anywhere (a model someone sent, a file damaged on disk), so
reading one trusts nothing in it. The zip directory, the JSON header, and each array's
``.npy`` header (dtype, shape, byte count) are checked against each other and against the
architecture the header claims before any array data is read or allocated: a corrupt or
hostile file is refused with a one-line :class:`CheckpointError`, using memory in proportion
to its size, and an accepted one holds exactly the finite float arrays its network needs.
"""

import ast
import io
import json
import math
import os
import struct
import tokenize
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np
from numpy.lib import format as npy_format

from ..errors import NstAudioError, ParameterError
from ..files import atomic_path
from . import spectral_norm
from .autoencoder import Architecture
from .melgan import GanArchitecture

FORMAT = "nstaudio-checkpoint"
VERSION = 1

# A real header is under 2 KB, the training settings included.
MAX_HEADER_BYTES = 2**20
# numpy's own default bound on the header of one .npy entry (np.savez writes 128 bytes).
MAX_NPY_HEADER_BYTES = 10_000
# np.savez stores its entries; numpy.savez_compressed deflates them, but float weights barely
# shrink. Entries claiming more bytes than this many per byte on disk (plus slack for tiny
# files) are a decompression bomb, refused before anything is inflated.
MAX_INFLATION = 16
INFLATION_SLACK = 2**20
# Training runs take at most 10**7 steps and keep one loss per step, or the few of the
# architecture's HISTORY_COLUMNS (a GAN's).
MAX_HISTORY = 10**8
# The networks a checkpoint may hold, by the header's "network" (files without one are autoencoders).
ARCHITECTURES = {Architecture.NETWORK: Architecture, GanArchitecture.NETWORK: GanArchitecture}

_CHUNK = 2**20  # bytes read at a time: array data goes straight into its array
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # others inflate without a bound on the output
_NPY_HEADER_READERS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
_NPY_HEADER_LENGTHS = {(1, 0): "<H", (2, 0): "<I"}  # the header's length field in each version
# What numpy's parser of a .npy header (a Python literal, tokenized again in case Python 2
# wrote it) raises on text it cannot read, short text included.
_NPY_HEADER_ERRORS = (ValueError, TypeError, SyntaxError, tokenize.TokenError, RecursionError, OverflowError,
                      EOFError)
# What a damaged file makes zipfile, zlib and numpy.lib.format.read_magic raise. RuntimeError
# covers encrypted entries and NotImplementedError (unsupported zip features); ValueError
# covers UnicodeDecodeError (entry names) and a missing .npy magic string.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, struct.error, EOFError, OSError, ValueError, KeyError, OverflowError,
                RuntimeError)


class CheckpointError(NstAudioError):
    """A checkpoint that cannot be used: missing, corrupt, another format or version."""


@dataclass
class Checkpoint:
    """The contents of a checkpoint file.

    Attributes
    ----------
    arch : Architecture or GanArchitecture
    params, state : dict of dict of np.ndarray, float32
    meta : dict
        The JSON extras given to :func:`save_checkpoint`.
    moments : dict of dict of np.ndarray
        Adam's moments of an unfinished training run (empty otherwise).
    history : np.ndarray or None
        Training loss per step (float64), (steps,) or (steps, losses), if saved.
    """

    arch: object
    params: dict
    state: dict
    meta: dict = field(default_factory=dict)
    moments: dict = field(default_factory=dict)
    history: np.ndarray = None


@dataclass
class _Entry:
    """Where an array lies in the zip and what its ``.npy`` header claims (nothing read yet)."""

    key: str
    info: zipfile.ZipInfo
    dtype: np.dtype
    shape: tuple
    fortran_order: bool
    offset: int  # bytes of .npy header before the data


def save_checkpoint(path, arch, params, state, *, meta=None, moments=None, history=None, dtype=None):
    """Write a checkpoint atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Target ``.npz`` file.
    arch : Architecture or GanArchitecture
        The header records which (``network``), and the reader checks the arrays against it.
    params, state : dict of dict of np.ndarray
        From the network's ``init_params`` (and training).
    meta : dict or None
        JSON-serialisable extras: spectrogram settings, seed, training step...
    moments : dict of dict of np.ndarray or None
        Optimizer moments, so that training can resume.
    history : np.ndarray or None
        Training loss per step, (steps,), or (steps, arch.HISTORY_COLUMNS) for a GAN.
    dtype : numpy dtype or None
        Store the parameters in this type (``np.float16`` halves a shipped model); they are
        read back as float32. None keeps their type.
    """
    header = {"format": FORMAT, "version": VERSION, "network": arch.NETWORK, "architecture": arch.to_dict(),
              "meta": meta or {}}
    arrays = {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
    for group, tree in (("params", params), ("state", state), ("moments", moments or {})):
        for layer, values in tree.items():
            for name, value in values.items():
                arrays[f"{group}/{layer}/{name}"] = value.astype(dtype) if group == "params" and dtype else value
    if history is not None:
        arrays["history"] = np.asarray(history, dtype=np.float64)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)  # a file object, so numpy keeps the temporary name as it is
        f.flush()
        os.fsync(f.fileno())  # on disk before the rename, so a crash cannot leave the last good run empty


def load_checkpoint(path):
    """Read a checkpoint, checking everything in it before reading its arrays.

    Returns
    -------
    Checkpoint

    Raises
    ------
    CheckpointError
        Missing file, not an npz, no or unreadable header, another format or version, an
        architecture out of range, arrays missing, extra or of the wrong type or shape, more
        data claimed than the file can hold, non-finite values. The message is one line.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such checkpoint")
    if not os.path.isfile(path):  # a directory, or a pipe or device zipfile could not seek in
        raise CheckpointError(f"{path}: not a readable checkpoint (not a regular file)")
    try:
        with open(path, "rb") as f, zipfile.ZipFile(f) as zf:
            return _read(path, zf, os.fstat(f.fileno()).st_size)
    except _READ_ERRORS as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({one_line(exc)})") from None


def short_repr(value, limit=60):
    """A short one-line description of a value read from a file, for an error message.

    A header holds whatever JSON can: containers are described by their size (their repr can
    be huge, or nested too deeply to print), huge integers by their size, anything else by
    its repr (which escapes line breaks and control characters) cut to ``limit`` characters.
    """
    if isinstance(value, dict):
        return f"a mapping of {len(value)} entries"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} items"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"a {value.bit_length()}-bit integer"
    return _clip(repr(value), limit)


def one_line(text, limit=200):
    """``text`` (an exception's message, say) on one line of at most ``limit`` characters.

    Messages of zipfile and numpy quote names and bytes from the file, which may hold line
    breaks or terminal escapes.
    """
    return _clip("".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text)), limit)


def _clip(text, limit):
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _read(path, zf, file_size):
    """The checkpoint in an open zip: its directory, its header, every array's layout, then the data."""
    members = _members(path, zf, file_size)
    header = _read_header(path, zf, members.pop("header", None))
    arch = _architecture(path, header)
    meta = header.get("meta", {})
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: corrupt header (meta is {short_repr(meta)}, not a mapping)")
    entries = _layouts(path, zf, members, _expected_shapes(arch), arch.HISTORY_COLUMNS)
    # every claim checked: now the reads allocate no more than the file holds
    arrays = {key: _read_data(path, zf, entry) for key, entry in entries.items()}
    history = arrays.pop("history", None)
    trees = {"params": {}, "state": {}, "moments": {}}
    for key, value in arrays.items():
        group, layer, name = key.split("/")
        with np.errstate(over="ignore"):  # float64 beyond float32 becomes inf, refused just below
            trees[group].setdefault(layer, {})[name] = value.astype(np.float32, order="C", copy=False)
    _check_values(path, trees)
    if history is not None:
        history = history.astype(np.float64, copy=False)
    return Checkpoint(arch, trees["params"], trees["state"], meta, trees["moments"], history)


def _members(path, zf, file_size):
    """The zip's entries by array name (``.npy`` dropped), if they are plain and their sizes fit the file."""
    members, claimed = {}, 0
    for info in zf.infolist():
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if key in members:
            raise CheckpointError(f"{path}: corrupt checkpoint (entry {short_repr(key)} appears twice)")
        if info.compress_type not in _METHODS:
            raise CheckpointError(f"{path}: corrupt checkpoint (entry {short_repr(key)} uses zip compression "
                                  f"method {info.compress_type}; a checkpoint's entries are stored or deflated)")
        members[key] = info
        claimed += info.file_size
    if claimed > MAX_INFLATION * file_size + INFLATION_SLACK:
        raise CheckpointError(f"{path}: corrupt checkpoint (its entries claim {claimed} bytes, far more than a "
                              f"{file_size}-byte file holds)")
    return members


def _read_header(path, zf, info):
    """The JSON header, a dict of the right format and version."""
    if info is None:
        raise CheckpointError(f"{path}: not an nstaudio checkpoint (no valid header)")
    if info.file_size > MAX_HEADER_BYTES:
        raise _no_header(path, f"{info.file_size} bytes, more than {MAX_HEADER_BYTES}")
    entry = _layout(path, zf, "header", info)
    if entry.dtype != np.uint8 or len(entry.shape) != 1:
        raise _no_header(path, f"{one_line(entry.dtype, 40)} of shape {_shape_text(entry.shape)}, not bytes")
    _check_size(path, entry)
    try:
        header = json.loads(_read_data(path, zf, entry).tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # not UTF-8 or not JSON (ValueErrors), nested too deeply
        raise _no_header(path, one_line(exc)) from None
    if not isinstance(header, dict):
        raise _no_header(path, f"{short_repr(header)}, not a JSON object")
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an nstaudio checkpoint (format {short_repr(header.get('format'))})")
    version = header.get("version")
    if type(version) is not int or version != VERSION:  # true and 1.0 equal 1, but were never written
        raise CheckpointError(f"{path}: checkpoint version {short_repr(version)}; this nstaudio reads "
                              f"version {VERSION}")
    return header


def _no_header(path, why):
    return CheckpointError(f"{path}: not an nstaudio checkpoint (no valid header: {why})")


def _architecture(path, header):
    """The header's architecture, every field checked."""
    if "architecture" not in header:
        raise CheckpointError(f"{path}: corrupt header (no architecture)")
    network = header.get("network", Architecture.NETWORK)
    if not isinstance(network, str) or network not in ARCHITECTURES:
        raise CheckpointError(f"{path}: holds a network nstaudio does not know ({short_repr(network)})")
    try:
        return ARCHITECTURES[network].from_dict(header["architecture"])
    except ParameterError as exc:
        raise CheckpointError(f"{path}: corrupt architecture in the header ({one_line(exc)})") from None


def _expected_shapes(arch):
    """The shape of every array a checkpoint of ``arch`` may hold, by entry name (not ``history``)."""
    shapes = arch.array_shapes()
    expected = {f"{group}/{layer}/{name}": shape for group, tree in shapes.items()
                for layer, values in tree.items() for name, shape in values.items()}
    for layer, values in shapes["params"].items():  # Adam's two moments of each parameter (see nn.optim)
        for name, shape in values.items():
            expected[f"moments/{layer}/{name}.m"] = expected[f"moments/{layer}/{name}.v"] = shape
    return expected


def _layouts(path, zf, members, expected, history_columns):
    """Every entry's layout, checked against ``expected`` and against its own size; nothing missing.

    ``history_columns``: losses per step of the architecture's training history (None: one).
    """
    entries = {}
    for key, info in members.items():
        if key != "history" and key not in expected:
            raise CheckpointError(f"{path}: corrupt checkpoint (unexpected entry {short_repr(key)})")
        entry = _layout(path, zf, key, info)
        if entry.dtype.kind != "f":  # object arrays included: they are never unpickled
            raise CheckpointError(f"{path}: corrupt checkpoint ({key} holds {one_line(entry.dtype, 40)}, not floats)")
        if key == "history":
            columns = () if history_columns is None else (history_columns,)
            if len(entry.shape) != 1 + len(columns) or entry.shape[1:] != columns or entry.shape[0] > MAX_HISTORY:
                per_step = "a list of" if history_columns is None else f"{history_columns} per step for"
                raise CheckpointError(f"{path}: corrupt checkpoint (history has shape {_shape_text(entry.shape)}, "
                                      f"not {per_step} at most {MAX_HISTORY} steps)")
        elif entry.shape != expected[key]:
            raise CheckpointError(f"{path}: corrupt checkpoint ({key} has shape {_shape_text(entry.shape)}, the "
                                  f"architecture needs {expected[key]})")
        _check_size(path, entry)
        entries[key] = entry
    for key, shape in expected.items():
        if not key.startswith("moments/") and key not in entries:
            raise CheckpointError(f"{path}: corrupt checkpoint ({key} is missing; the architecture needs shape "
                                  f"{shape})")
        if key.endswith(".m") and (key in entries) != (key[:-1] + "v" in entries):
            raise CheckpointError(f"{path}: corrupt checkpoint (Adam moments {key[:-2]}.m and .v come in pairs)")
    return entries


def _layout(path, zf, key, info):
    """What the ``.npy`` header at the start of entry ``info`` (named ``key``, a name checked already) claims.

    No array data is read, and numpy parses no more than :data:`MAX_NPY_HEADER_BYTES`.
    """
    with zf.open(info) as f:
        version = npy_format.read_magic(f)
        length_format = _NPY_HEADER_LENGTHS.get(version)
        if length_format is None:  # 3.0 only adds UTF-8 field names, for structured arrays
            raise CheckpointError(f"{path}: corrupt checkpoint ({key} is in .npy format version {version[0]}."
                                  f"{version[1]})")
        length_bytes = f.read(struct.calcsize(length_format))
        (length,) = struct.unpack(length_format, length_bytes)
        if length > MAX_NPY_HEADER_BYTES:  # before numpy sees it: its message for this suggests unpickling
            raise CheckpointError(f"{path}: corrupt checkpoint ({key} has a .npy header of {length} bytes)")
        text = f.read(length)
    try:
        # numpy warns (on stderr, through the process-wide warning filters, which a library called from
        # several threads must not touch) where a header has backslash escapes or needs its Python 2
        # parsing; numpy itself writes neither, so such a header is forged: refuse it before numpy sees it.
        if not text.isascii() or b"\\" in text:
            raise ValueError("characters numpy never writes there")
        ast.literal_eval(text.decode())  # what numpy tries first; a failure would send it to the Python 2 parser
        shape, fortran_order, dtype = _NPY_HEADER_READERS[version](io.BytesIO(length_bytes + text))
    except _NPY_HEADER_ERRORS as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint ({key} has an unreadable .npy header: "
                              f"{one_line(exc)})") from None
    return _Entry(key, info, dtype, shape, fortran_order, npy_format.MAGIC_LEN + len(length_bytes) + length)


def _check_size(path, entry):
    """The entry holds exactly the data its shape and dtype need (so reading it allocates what the file holds)."""
    needed = math.prod(entry.shape) * entry.dtype.itemsize
    held = entry.info.file_size - entry.offset
    if min(entry.shape, default=0) < 0 or needed != held:
        raise CheckpointError(f"{path}: corrupt checkpoint ({entry.key} has shape {_shape_text(entry.shape)} of "
                              f"{entry.dtype}, {needed} bytes, but holds {held})")


def _shape_text(shape):
    return one_line(shape, 80)


def _read_data(path, zf, entry):
    """The array of a checked entry, read into it chunk by chunk (zipfile checks the CRC at the end)."""
    flat = np.empty(math.prod(entry.shape), entry.dtype)
    raw = flat.view(np.uint8)
    with zf.open(entry.info) as f:
        f.read(entry.offset)
        done = 0
        while done < raw.size:
            chunk = f.read(min(_CHUNK, raw.size - done))
            if not chunk:
                raise CheckpointError(f"{path}: corrupt checkpoint ({entry.key} is truncated)")
            raw[done:done + len(chunk)] = np.frombuffer(chunk, np.uint8)
            done += len(chunk)
    if entry.fortran_order:
        return flat.reshape(entry.shape[::-1]).transpose()
    return flat.reshape(entry.shape)


def _check_values(path, trees):
    """Finite values, and no negative variance: a network with NaN weights would write NaN audio."""
    for group, tree in trees.items():
        for layer, values in tree.items():
            for name, value in values.items():
                if not np.isfinite(value).all():
                    raise CheckpointError(f"{path}: corrupt checkpoint ({group}/{layer}/{name} holds NaN or "
                                          f"infinite values)")
                if (name == "running_var" or name.endswith(".v")) and (value < 0).any():
                    raise CheckpointError(f"{path}: corrupt checkpoint ({group}/{layer}/{name} holds negative "
                                          f"variances)")
    for layer, vectors in trees["state"].items():
        if layer.startswith("sn_"):  # the spectral norm's vectors of layer[3:] (nstaudio.nn.spectral_norm)
            wrong = spectral_norm.problem(trees["params"][layer[3:]]["W"], vectors["u"], vectors["v"])
            if wrong:
                raise CheckpointError(f"{path}: corrupt checkpoint (state/{layer}: {wrong})")
