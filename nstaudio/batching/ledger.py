"""A batch's results file: one JSON line per finished item, appended as each finishes.

The file (``nstaudio-batch.jsonl`` in the output directory) is what makes a batch
resumable: an item whose last line says ``done``, with the settings hash it has now and an
output of the size recorded, is skipped when the batch runs again; everything else is
redone. Lines are appended, flushed and synced one at a time, so a batch killed at any
moment loses at most the line it was writing (a torn last line is ignored when read).
One batch at a time may write to an output directory: a second is refused while the
first holds the file's lock.

An output directory that is a URL (:mod:`nstaudio.storage`) has no appending and no locks:
there the file is rewritten whole, under a temporary name and moved over the old one, as
each item finishes (:class:`UrlLedger`).
"""

import fcntl
import json
import os

from .. import storage
from ..errors import AudioError, OutputError, ParameterError

LEDGER_NAME = "nstaudio-batch.jsonl"


def open_ledger(outdir):
    """The results file of ``outdir``: a :class:`Ledger` for a local directory, a :class:`UrlLedger`
    for a URL."""
    return UrlLedger(outdir) if storage.is_url(outdir) else Ledger(outdir)


class _Records:
    """What both kinds of results file answer: the last record of each item, and whether it is done."""

    def finished(self, item, settings):
        """The record of ``item``'s earlier run if it is done with ``settings`` (its settings hash now)
        and its output is intact."""
        entry = self.records.get(item.key)
        if entry is None or entry.get("status") != "done" or entry.get("settings") != settings:
            return None
        size = storage.size(item.output)
        return entry if size is not None and size == entry.get("output_bytes") else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Ledger(_Records):
    """The results file of ``outdir``, open for appending and locked against a second batch.

    Parameters
    ----------
    outdir : str
        Created if missing.

    Raises
    ------
    OutputError
        The directory or the file cannot be written.
    ParameterError
        Another batch is writing to this directory now.
    """

    def __init__(self, outdir):
        self.path = os.path.join(outdir, LEDGER_NAME)
        try:
            os.makedirs(outdir, exist_ok=True)
            self._file = open(self.path, "a+b")
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write it ({exc.strerror or exc})") from None
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.close()
            raise ParameterError(f"{outdir}: another nstaudio batch is writing to this directory now") from None
        self.records = self._read()

    def _read(self):
        """The last record of each item (by output key), from the lines that parse."""
        self._file.seek(0)
        data = self._file.read()
        last = {entry["key"]: entry for entry in _entries(data)}
        if data and not data.endswith(b"\n"):
            self._file.write(b"\n")  # what follows starts on a line of its own
        return last

    def append(self, entry):
        """Write ``entry`` (a JSON-ready dict with a ``key``) as one line, on disk before returning."""
        try:
            self._file.write((json.dumps(entry, allow_nan=False) + "\n").encode("utf-8"))
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:  # a full disk: one line, and the items done so far stay recorded
            raise OutputError(f"{self.path}: cannot write it ({exc.strerror or exc})") from None
        self.records[entry["key"]] = entry

    def close(self):
        if not self._file.closed:
            self._file.close()  # releases the lock


class UrlLedger(_Records):
    """The results file of the output directory URL ``outdir``, rewritten whole as each item finishes.

    Raises
    ------
    OutputError
        The directory cannot be made, or the file is there but cannot be read.
    """

    def __init__(self, outdir):
        storage.makedirs(outdir)
        self.path = storage.join(outdir, LEDGER_NAME)
        try:
            self._data = storage.read_bytes(self.path) if storage.exists(self.path) else b""
        except AudioError as exc:  # storage's reading errors
            raise OutputError(str(exc)) from None
        if self._data and not self._data.endswith(b"\n"):
            self._data += b"\n"
        self.records = {entry["key"]: entry for entry in _entries(self._data)}

    def append(self, entry):
        """Add ``entry`` (a JSON-ready dict with a ``key``) as one line; the file is replaced before returning."""
        data = self._data + (json.dumps(entry, allow_nan=False) + "\n").encode("utf-8")
        storage.write_bytes(self.path, data)
        self._data = data
        self.records[entry["key"]] = entry

    def close(self):
        pass


def read_entries(outdir):
    """Every whole record in ``outdir``'s results file (a local directory or a URL), oldest first (for
    scripts and tests)."""
    path = storage.join(outdir, LEDGER_NAME)
    if storage.is_url(path):
        return list(_entries(storage.read_bytes(path)))
    with open(path, "rb") as f:
        return list(_entries(f.read()))


def _entries(data):
    """The records of the bytes ``data`` of a results file, skipping lines a kill cut short."""
    for line in data.splitlines():
        try:
            entry = json.loads(line.decode("utf-8"))
        except ValueError:
            continue
        if isinstance(entry, dict) and "key" in entry:
            yield entry
