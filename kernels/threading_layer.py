"""numba's threading layer for nstaudio's parallel kernels: safe from several threads, and the host's choice first.

numba runs every ``parallel=True`` function of a process on one threading layer, chosen the
first time any of them runs. Its ``workqueue`` layer is not thread-safe: two threads in
parallel regions at once abort the whole process ("Concurrent access has been detected").
nstaudio is called from several threads (Dask workers, DSP hosts), so:

- if the host chose a layer (``NUMBA_THREADING_LAYER`` or ``numba.config.THREADING_LAYER``)
  or one is already running, that one is kept;
- otherwise nstaudio asks numba for a thread-safe one: ``tbb`` where the ``tbb`` package is
  installed, else ``omp`` (GNU OpenMP, part of every Linux toolchain), with idle OpenMP threads
  sleeping instead of spinning (``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it:
  spinning threads take the cores of the BLAS calls between parallel loops, 2.2x slower
  stylizing on 2 cores). Where the host already loaded GNU OpenMP without that policy (torch
  imported first, say), it is too late to ask, and ``workqueue`` with the lock below is used
  instead of ``omp``;
- where the layer in use is not thread-safe (``workqueue``, the only one on a machine without
  OpenMP or TBB, or the host's choice), nstaudio's parallel kernels take a lock, so its own
  calls from several threads run one at a time instead of aborting;
- GNU OpenMP cannot run in a process forked after it ran (numba terminates such a child:
  ``multiprocessing``'s default start method on Linux before Python 3.14), so in such a child
  the kernels run their serial versions (numba loops on one core, BLAS as usual).
"""

import ctypes
import functools
import glob
import os
import sys
import threading
import types

import numba

THREAD_SAFE = ("tbb", "omp")
class _Process:
    """Process-wide state: the lock that serialises nstaudio's parallel regions where the layer cannot
    run two, and whether this is a child forked after GNU OpenMP ran in its parent."""

    region_lock = threading.RLock()
    forked_after_omp = False


def _after_fork_in_child():
    # a lock some other thread of the parent held at the fork would stay locked here for ever
    _Process.region_lock = threading.RLock()
    if _launched() and numba.threading_layer() == "omp":
        _Process.forked_after_omp = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def configure():
    """Point numba at a thread-safe layer unless the host chose one; call before any parallel function runs.

    Returns
    -------
    str or None
        The layer asked for, or None where the host's choice (or a running layer) stands.
    """
    if "NUMBA_THREADING_LAYER" in os.environ or numba.config.THREADING_LAYER != "default" or _launched():
        return None
    spinning = _omp_already_spinning()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read by libgomp when it loads (below, unless loaded)
    for layer in THREAD_SAFE:
        if layer == "omp" and spinning:
            continue  # its threads would take the BLAS cores: 2.2x slower stylizing, measured
        if _loadable(layer):
            numba.config.THREADING_LAYER = layer
            return layer
    numba.config.THREADING_LAYER = "workqueue"  # no safe layer on this machine: the lock serialises our regions
    return "workqueue"


def _omp_already_spinning():
    """GNU OpenMP was loaded (by the host: torch, say) before nstaudio could ask for passive waiting.

    libgomp reads ``OMP_WAIT_POLICY`` once, when it loads; without ``PASSIVE`` its idle threads
    spin, and numba's omp layer would share them.
    """
    if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE":
        return False
    try:  # GNU OpenMP's own soname: vendored copies (libgomp-<hash>.so) leave numba's to load afresh
        with open("/proc/self/maps") as maps:
            return any(os.path.basename(line.split()[-1]).startswith("libgomp.so") for line in maps if line.strip())
    except OSError:
        return False


def _launched():
    """True once numba started a threading layer in this process (it cannot change after that)."""
    try:
        numba.threading_layer()
    except ValueError:
        return False
    return True


def _loadable(layer):
    """Whether numba's pool for ``layer`` loads here (numba's own test, done before it would raise)."""
    if layer == "tbb":
        _preload_pip_tbb()
    try:
        if layer == "tbb":
            from numba.np.ufunc import tbbpool  # noqa: F401
        else:
            from numba.np.ufunc import omppool  # noqa: F401
    except ImportError:
        return False
    return True


def _preload_pip_tbb():
    """Load the ``tbb`` package's library by path: pip puts it in ``<prefix>/lib``, which the loader does not search.

    numba's ``tbbpool`` extension asks the dynamic loader for ``libtbb.so.12`` by name; once a
    library of that name is loaded, the loader hands that one over.
    """
    for path in sorted(glob.glob(os.path.join(sys.prefix, "lib", "libtbb.so.12*"))):
        try:
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            return
        except OSError:
            continue


def needs_lock():
    """Whether nstaudio's parallel regions must take turns: the layer in use (or about to be) is not thread-safe."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # not launched yet: the layer numba will pick
        layer = numba.config.THREADING_LAYER
    return layer not in THREAD_SAFE and layer != "threadsafe"


def parallel_kernel(**options):
    """``numba.njit(parallel=True, cache=True, **options)``, serialised where the threading layer needs it.

    The compiled function stays available as ``.dispatcher`` (for calls from other
    compiled code, which would bypass the lock: there are none); ``.serial`` is the same
    loop compiled without ``parallel`` (``prange`` is then ``range``), compiled on first use
    only, in a child forked after GNU OpenMP ran.
    """
    def decorate(function):
        dispatcher = numba.njit(parallel=True, cache=True, **options)(function)
        serial = numba.njit(cache=True, **options)(_renamed(function, "_serial"))

        @functools.wraps(function)
        def call(*args):
            if _Process.forked_after_omp:
                return serial(*args)
            if needs_lock():
                with _Process.region_lock:
                    return dispatcher(*args)
            return dispatcher(*args)

        call.dispatcher, call.serial = dispatcher, serial
        return call
    return decorate


def _renamed(function, suffix):
    """A copy of ``function`` under another name: numba's cache files are named by it, and must not be shared."""
    copy = types.FunctionType(function.__code__, function.__globals__, function.__name__ + suffix,
                              function.__defaults__, function.__closure__)
    copy.__qualname__ = function.__qualname__ + suffix
    copy.__doc__ = function.__doc__
    return copy


@numba.njit(cache=True)
def sum_in_order(rows):
    """The sum of ``rows`` from the first to the last: a parallel loop's row totals, added in an
    order that does not depend on how its threads shared the rows (a prange reduction's does).

    Parameters
    ----------
    rows : np.ndarray, shape (n,), float64

    Returns
    -------
    float
    """
    total = 0.0
    for value in rows:
        total += value
    return total
