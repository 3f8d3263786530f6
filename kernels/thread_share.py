"""How many cores nstaudio's parallel work may use in the calling thread: all of them, or a share.

A host that runs several nstaudio calls side by side (``nstaudio batch``'s Dask workers: each
task gets its share of the machine) says so with :func:`limit_threads`. numba's parallel loops,
scipy's FFTs and nstaudio's matrix products (``products``: BLAS itself runs on one thread while
nstaudio computes, ``blas_threads``) then use that many threads for the calls made in this
thread (numba keeps the setting per thread, and so does the context variable below), so
concurrent calls never oversubscribe the cores. The share changes how fast, never what: the
results are the same on any number of threads.
"""

import contextlib
import contextvars

import numba

from . import threading_layer

# The share of this context (thread or task), None for all cores. A ContextVar holds one value
# per thread, so concurrent calls cannot see each other's.
_SHARE = contextvars.ContextVar("nstaudio_thread_share", default=None)


def threads():
    """How many threads nstaudio's parallel work in the calling thread may use: numba's setting
    here (:func:`limit_threads`, ``NUMBA_NUM_THREADS``, or every core)."""
    threading_layer.configure()  # before numba starts its pool, which get_num_threads does
    return numba.get_num_threads()


def fft_workers():
    """The ``workers`` of scipy.fft calls here: the share, or -1 (every core)."""
    share = _SHARE.get()
    return -1 if share is None else share


@contextlib.contextmanager
def limit_threads(threads):
    """Run nstaudio's numba loops and FFTs in the calling thread on at most ``threads`` cores.

    Parameters
    ----------
    threads : int
        At least 1; more than numba's pool has means all of them.
    """
    threads = int(threads)
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    threading_layer.configure()  # before numba starts its pool, which set_num_threads does
    previous = numba.get_num_threads()
    token = _SHARE.set(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)
        _SHARE.reset(token)
