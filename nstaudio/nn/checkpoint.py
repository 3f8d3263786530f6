"""Checkpoints: parameters, BatchNorm state and a small versioned JSON header in one ``.npz``."""

import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ..errors import NstAudioError
from ..files import atomic_path
from .autoencoder import Architecture, Autoencoder

FORMAT = "nstaudio-checkpoint"
VERSION = 1


class CheckpointError(NstAudioError):
    """A checkpoint that cannot be used: missing, corrupt, another format or version."""


@dataclass
class Checkpoint:
    """The contents of a checkpoint file.

    Attributes
    ----------
    arch : Architecture
    params, state : dict of dict of np.ndarray, float32
    meta : dict
        The JSON extras given to :func:`save_checkpoint`.
    moments : dict of dict of np.ndarray
        Adam's moments of an unfinished training run (empty otherwise).
    history : np.ndarray or None
        Training loss per step, if saved.
    """

    arch: Architecture
    params: dict
    state: dict
    meta: dict = field(default_factory=dict)
    moments: dict = field(default_factory=dict)
    history: np.ndarray = None


def save_checkpoint(path, arch, params, state, *, meta=None, moments=None, history=None, dtype=None):
    """Write a checkpoint atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Target ``.npz`` file.
    arch : Architecture
    params, state : dict of dict of np.ndarray
        From :meth:`Autoencoder.init_params` (and training).
    meta : dict or None
        JSON-serialisable extras: spectrogram settings, seed, training step...
    moments : dict of dict of np.ndarray or None
        Optimizer moments, so that training can resume.
    history : np.ndarray or None
        Training loss per step.
    dtype : numpy dtype or None
        Store the parameters in this type (``np.float16`` halves a shipped model); they are
        read back as float32. None keeps their type.
    """
    header = {"format": FORMAT, "version": VERSION, "architecture": arch.to_dict(), "meta": meta or {}}
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
    """Read a checkpoint.

    Returns
    -------
    Checkpoint

    Raises
    ------
    CheckpointError
        Missing file, not an npz, no or unreadable header, another format or version.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from None
    try:
        header = json.loads(arrays.pop("header").tobytes().decode())
    except (KeyError, ValueError, UnicodeDecodeError):
        raise CheckpointError(f"{path}: not an nstaudio checkpoint (no valid header)") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an nstaudio checkpoint (format {header.get('format')!r})")
    if header.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {header.get('version')!r}; this nstaudio reads "
                              f"version {VERSION}")
    try:
        arch = Architecture.from_dict(header["architecture"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupt architecture in the header ({exc})") from None
    history = arrays.pop("history", None)
    trees = {"params": {}, "state": {}, "moments": {}}
    for key, value in arrays.items():
        parts = key.split("/")
        if len(parts) != 3 or parts[0] not in trees:
            raise CheckpointError(f"{path}: corrupt checkpoint (unexpected entry {key!r})")
        if value.dtype.kind != "f":
            raise CheckpointError(f"{path}: corrupt checkpoint ({key} holds {value.dtype}, not floats)")
        trees[parts[0]].setdefault(parts[1], {})[parts[2]] = value.astype(np.float32, copy=False)
    _check_shapes(path, arch, trees)
    meta = header.get("meta", {})
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: corrupt header (meta is not a mapping)")
    return Checkpoint(arch, trees["params"], trees["state"], meta, trees["moments"], history)


def _check_shapes(path, arch, trees):
    """Every array the architecture needs is there, with its shape."""
    params, state = Autoencoder(arch).init_params()
    for group, expected in (("params", params), ("state", state)):
        for layer, values in expected.items():
            for name, value in values.items():
                got = trees[group].get(layer, {}).get(name)
                if got is None or got.shape != value.shape:
                    shape = None if got is None else got.shape
                    raise CheckpointError(f"{path}: corrupt checkpoint ({group}/{layer}/{name} has shape {shape}, "
                                          f"the architecture needs {value.shape})")
