"""Atomic file writes shared by audio output, plots and checkpoints.

Every output goes to a temporary file beside its target, named ``.nstaudio-XXXXXXXX<ext>``
(:data:`TEMP_PREFIX`), which is renamed over the target only when complete. Exceptions,
Ctrl-C and (in the CLI) SIGTERM/SIGHUP remove it; only a process killed outright (SIGKILL,
power loss) can leave one behind, and such a file is safe to delete.
"""

import contextlib
import errno
import os
import stat
import tempfile

from .errors import NstAudioError, OutputError
from .urls import local_path_hint

TEMP_PREFIX = ".nstaudio-"


def check_writable(path):
    """Raise OutputError now for a target that could never be written, before any work is done.

    Checks what the operating system would refuse only at the end: a missing directory, a
    name longer than the filesystem allows, a target that exists but is a directory or a
    device. (A directory that is not writable is found by creating the temporary file.)

    Parameters
    ----------
    path : str or os.PathLike
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OutputError(f"{path}: directory {directory!r} does not exist{local_path_hint(path)}")
    name = os.path.basename(path)
    if not name:
        raise OutputError(f"{path!r}: names a directory, not a file")
    try:
        name_max = os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    if len(os.fsencode(name)) > name_max:
        raise OutputError(f"{path[:60]}...: file name is {len(os.fsencode(name))} bytes, longer than the "
                          f"{name_max} this filesystem allows")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(f"{path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise OutputError(f"{path}: exists and is not a regular file (a directory or a device); choose a file name")


def check_can_write(path):
    """:func:`check_writable`, and create (then remove) a temporary file beside ``path``: OutputError if refused."""
    with atomic_path(path, commit=False):
        pass


@contextlib.contextmanager
def atomic_path(path, *, commit=True):
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block completes.

    An interrupted or failing write leaves the target as it was and no temporary file
    behind. The file gets the mode a plain ``open()`` would give it (mkstemp's is 0600).
    The temporary name keeps ``path``'s extension, for writers that look at it.

    Parameters
    ----------
    path : str or os.PathLike
    commit : bool
        False rehearses the write: the temporary file is removed instead of renamed, so a
        caller can find out before long work whether (and how) ``path`` can be written.

    Raises
    ------
    OutputError
        The target cannot be written (see :func:`check_writable`), the directory refuses a
        new file (permissions, read-only filesystem, full disk), or the final rename fails.
    """
    path = os.fspath(path)
    check_writable(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=TEMP_PREFIX,
                                   suffix=os.path.splitext(path)[1])
    except OSError as exc:
        raise OutputError(f"{path}: cannot write in {os.path.dirname(os.path.abspath(path))!r} "
                          f"({_describe(exc)})") from None
    os.close(fd)
    try:
        try:
            yield tmp
        except OSError as exc:  # a full disk, a file-size limit: one line, not a traceback
            if isinstance(exc, NstAudioError):
                raise
            raise OutputError(f"{path}: cannot write it ({_describe(exc)})") from None
        if commit:
            os.chmod(tmp, 0o666 & ~_umask())
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise OutputError(f"{path}: cannot write it ({_describe(exc)})") from None
    finally:
        if os.path.exists(tmp):  # after a failure, or a rehearsal
            os.unlink(tmp)


def _describe(exc):
    """An OSError's reason without the path it repeats ("Permission denied")."""
    return exc.strerror or errno.errorcode.get(exc.errno, str(exc))


def _umask():
    """The process umask, read without changing it (``os.umask`` would, for a moment, for every thread)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no /proc: the only portable way, setting it straight back
    os.umask(mask)
    return mask
