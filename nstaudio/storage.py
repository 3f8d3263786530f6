"""Files at fsspec URLs (``s3://``, ``gs://``, ``file://``, ...), for batches on shared storage.

A batch's paths may be URLs where fsspec is installed (with the storage's own package:
``s3fs`` for ``s3://``, ``gcsfs`` for ``gs://``), so that workers on other machines read and
write the same files. No audio is decoded straight from storage: an input is copied to a
temporary directory on the machine that reads it and goes through every check a local file
does (one larger than any audio this machine could work on is refused before it is copied),
and an output is written there, then copied up under a temporary name beside its target and
moved over it, so that it appears whole or not at all (an object store's copy makes a new
object at once). Local paths take none of these detours; each function here serves both.
"""

import contextlib
import glob
import os
import posixpath
import tempfile
import uuid

from . import limits
from .errors import AudioError, NstAudioError, OutputError, ParameterError
from .files import TEMP_PREFIX
from .urls import is_url

# A stored file holds at most this many bytes per decoded float32 byte (a float64 WAV: 2), so a
# file larger than twice the decoded audio this machine may take is refused before it is copied.
_BYTES_PER_DECODED_BYTE = 2


def filesystem(url):
    """``(fs, path)``: the fsspec filesystem of ``url`` and the path on it.

    Raises
    ------
    ParameterError
        fsspec, or the package of the URL's storage, is not installed, or fsspec knows no such scheme.
    """
    try:
        import fsspec
    except ImportError:
        raise ParameterError(f"{url}: paths that are URLs need fsspec: pip install 'nstaudio[distributed]'") from None
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as exc:  # fsspec's own words name the package ("Install s3fs to access S3")
        raise ParameterError(f"{url}: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"{url}: not a URL that fsspec can open ({exc})") from None


def absolute(path):
    """A URL as it is, a local path made absolute (workers have working directories of their own)."""
    return path if is_url(path) else os.path.abspath(path)


def canonical(path):
    """One spelling per file, to tell whether two paths name the same one: a URL with its scheme
    normalised, a local path (or a ``file://`` URL) resolved through its links."""
    if not is_url(path):
        return os.path.realpath(path)
    fs, inner = filesystem(path)
    if "file" in _protocols(fs):  # file:///x/a.wav is /x/a.wav
        return os.path.realpath(inner)
    return fs.unstrip_protocol(inner)


def _protocols(fs):
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def join(base, relative):
    """``relative`` (a relative path with the local separator) under ``base``, a URL or a local directory."""
    if not is_url(base):
        return os.path.join(base, relative)
    return posixpath.join(base, *relative.split(os.sep))


def dirname(path):
    return posixpath.dirname(path) if is_url(path) else os.path.dirname(path)


def isdir(path):
    if not is_url(path):
        return os.path.isdir(path)
    fs, inner = filesystem(path)
    with _reading(path):
        return fs.isdir(inner)


def exists(path):
    if not is_url(path):
        return os.path.exists(path)
    fs, inner = filesystem(path)
    with _reading(path):
        return fs.exists(inner)


def size(path):
    """The file's size in bytes, or None where there is no such file (or it cannot be asked)."""
    try:
        if not is_url(path):
            return os.path.getsize(path)
        fs, inner = filesystem(path)
        return int(fs.size(inner))
    except (OSError, ValueError, TypeError):
        return None


def identity(url):
    """What tells a changed file at ``url`` from the same one: ``[url, size, the storage's key of its
    metadata]`` (``[url, None, None]`` where there is none)."""
    fs, inner = filesystem(url)
    try:
        return [url, int(fs.size(inner)), fs.ukey(inner)]
    except (OSError, ValueError, TypeError):
        return [url, None, None]


def find_files(url, extensions):
    """The files under the directory ``url`` (recursively, sorted) whose extension is one of
    ``extensions`` (lower case, with the dot), as URLs spelled as ``url`` is."""
    fs, inner = filesystem(url)
    with _reading(url):
        found = fs.find(inner)
    top = fs._strip_protocol(inner).rstrip("/")  # as find spells the paths under it
    return sorted(posixpath.join(url.rstrip("/"), posixpath.relpath(fs._strip_protocol(path), top))
                  for path in found if os.path.splitext(path)[1].lower() in extensions)


def read_bytes(url):
    """The contents of the file at ``url``."""
    fs, inner = filesystem(url)
    with _reading(url):
        return fs.cat_file(inner)


def read_text(url):
    """The text of the (UTF-8) file at ``url``."""
    return read_bytes(url).decode("utf-8-sig")


@contextlib.contextmanager
def local_copy(path, directory=None):
    """Yield a local path holding the file ``path``: itself if local, else a copy in ``directory`` (None: a
    temporary directory of its own, removed after the block).

    NstAudioErrors raised in the block that name the copy name ``path`` instead.

    Raises
    ------
    AudioError
        No such file, unreadable, or larger than any audio this machine could work on.
    """
    if not is_url(path):
        yield path
        return
    if directory is None:
        with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as scratch, local_copy(path, scratch) as local:
            yield local
        return
    fs, inner = filesystem(path)
    with _reading(path):
        n_bytes = fs.size(inner)
    most = _BYTES_PER_DECODED_BYTE * limits.audio_memory_limit()
    if n_bytes is not None and n_bytes > most:
        raise AudioError(f"{path}: {limits.gigabytes(n_bytes)}, more than any audio this machine can work on "
                         f"(at most {limits.gigabytes(most)}); split it into shorter files")
    local = os.path.join(directory, uuid.uuid4().hex[:8], posixpath.basename(inner) or "file")
    os.makedirs(os.path.dirname(local))
    with _reading(path):
        fs.get_file(inner, local)
    with naming(local, path):
        yield local


@contextlib.contextmanager
def naming(local, url):
    """Errors raised in the block that name the local copy ``local`` name ``url`` instead (same type)."""
    try:
        yield
    except NstAudioError as exc:
        if local == url or local not in str(exc):
            raise
        raise type(exc)(str(exc).replace(local, url)) from None


def makedirs(path):
    """Create the directory ``path`` and its parents if missing (an object store has none to create)."""
    try:
        if not is_url(path):
            os.makedirs(path, exist_ok=True)
            return
        fs, inner = filesystem(path)
        fs.makedirs(inner, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create it ({exc.strerror or exc})") from None


def upload(local, url):
    """Copy the local file ``local`` to ``url``: under a temporary name beside it, then moved over it.

    Raises
    ------
    OutputError
        The storage refused (permissions, no such bucket, the network).
    """
    fs, inner = filesystem(url)
    _replace(fs, url, inner, lambda tmp: fs.put_file(local, tmp))


def write_bytes(url, data):
    """Write ``data`` to ``url`` whole or not at all (as :func:`upload`)."""
    fs, inner = filesystem(url)
    _replace(fs, url, inner, lambda tmp: fs.pipe_file(tmp, data))


def remove_unfinished(directory):
    """Remove the temporary files (:data:`nstaudio.files.TEMP_PREFIX`) a stopped write or upload left in
    ``directory``, a local directory or a URL."""
    if not is_url(directory):
        for path in glob.glob(os.path.join(glob.escape(directory), TEMP_PREFIX + "*")):
            with contextlib.suppress(OSError):
                os.unlink(path)
        return
    fs, inner = filesystem(directory)
    with contextlib.suppress(OSError):
        for path in fs.glob(posixpath.join(inner, TEMP_PREFIX + "*")):
            fs.rm_file(path)


def _replace(fs, url, inner, write):
    parent, name = posixpath.split(inner)
    tmp = posixpath.join(parent, f"{TEMP_PREFIX}{uuid.uuid4().hex[:8]}{posixpath.splitext(name)[1]}")
    try:
        write(tmp)
        fs.mv(tmp, inner)
    except (OSError, ValueError) as exc:
        raise OutputError(f"{url}: cannot write it ({getattr(exc, 'strerror', None) or exc})") from None
    finally:
        with contextlib.suppress(OSError, ValueError):
            if fs.exists(tmp):
                fs.rm_file(tmp)


@contextlib.contextmanager
def _reading(url):
    """The storage's errors while reading ``url`` as one-line AudioErrors."""
    try:
        yield
    except FileNotFoundError:
        raise AudioError(f"{url}: no such file") from None
    except (OSError, ValueError) as exc:
        raise AudioError(f"{url}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
