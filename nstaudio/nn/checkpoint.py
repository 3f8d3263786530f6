"""Checkpoints: parameters, BatchNorm state and a small versioned JSON header in one ``.npz``."""

import json
import os
import zipfile

import numpy as np

from ..errors import NstAudioError
from ..files import atomic_path
from .autoencoder import Architecture, Autoencoder

FORMAT = "nstaudio-checkpoint"
VERSION = 1


class CheckpointError(NstAudioError):
    """A checkpoint that cannot be used: missing, corrupt, another format or version."""


def save_checkpoint(path, arch, params, state, *, meta=None):
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
    """
    header = {"format": FORMAT, "version": VERSION, "architecture": arch.to_dict(), "meta": meta or {}}
    arrays = {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
    for group, tree in (("params", params), ("state", state)):
        for layer, values in tree.items():
            for name, value in values.items():
                arrays[f"{group}/{layer}/{name}"] = value
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)  # a file object, so numpy keeps the temporary name as it is


def load_checkpoint(path):
    """Read a checkpoint.

    Returns
    -------
    arch : Architecture
    params, state : dict of dict of np.ndarray
    meta : dict

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
    trees = {"params": {}, "state": {}}
    for key, value in arrays.items():
        parts = key.split("/")
        if len(parts) != 3 or parts[0] not in trees:
            raise CheckpointError(f"{path}: corrupt checkpoint (unexpected entry {key!r})")
        trees[parts[0]].setdefault(parts[1], {})[parts[2]] = value
    _check_shapes(path, arch, trees)
    return arch, trees["params"], trees["state"], header.get("meta", {})


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
