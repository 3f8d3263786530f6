"""BLAS on one thread while nstaudio computes: the same bits whatever the machine's thread count.

BLAS libraries split a product among their threads by how many they have, and round each
part's edges their own way: OpenBLAS's sgemm gives other low bits at 1, 2 and 4 threads, which
an optimizer's hundreds of steps grow into other audio. So nstaudio's compute paths call BLAS
on one thread only (:func:`one_blas_thread`), and spread the large products over the cores
themselves, in blocks fixed by the shapes (``nstaudio.kernels.products``).

The thread count of a BLAS library is one setting for the whole process. The hold is
therefore counted process-wide: the first call to enter sets every BLAS library nstaudio uses
(numpy's and scipy's) to one thread, and the last to leave restores what it found. Other BLAS
calls of the host made meanwhile also run on one thread. Where threadpoolctl cannot reach the
BLAS library (one it does not know, such as Apple's Accelerate), the library keeps its threads,
and results may then differ between thread counts.
"""

import contextlib
import functools
import os
import threading


class _Process:
    """The hold's count and what it restores: process-wide, like the BLAS setting it guards."""

    lock = threading.Lock()
    holders = 0
    limiter = None


def _after_fork_in_child():
    # a lock another thread of the parent held at the fork would stay locked here for ever
    _Process.lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


@functools.lru_cache(maxsize=None)
def _controller():
    """threadpoolctl's controller of the BLAS libraries loaded, probed once.

    scipy.linalg is imported first: it loads scipy's own BLAS (the one its L-BFGS-B calls),
    which a controller made before would not know.
    """
    import scipy.linalg  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _without_controlling_thread():
    """Let the calling thread set OpenBLAS's threads (threadpoolctl 3.8 and later).

    threadpoolctl lets only one thread set a process-wide OpenBLAS pool, the first to try, and
    ignores the others silently; the hold is taken and given back by whichever threads come first
    and last, under its lock, so it clears that role before and after each change.
    """
    import threadpoolctl

    clear = getattr(getattr(threadpoolctl, "OpenBLASController", None), "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)


@contextlib.contextmanager
def one_blas_thread():
    """Run the block with every BLAS library of nstaudio's on one thread (re-entrant, thread-safe)."""
    with _Process.lock:
        if _Process.holders == 0:
            _without_controlling_thread()
            _Process.limiter = _controller().limit(limits=1, user_api="blas")
            _without_controlling_thread()
        _Process.holders += 1
    try:
        yield
    finally:
        with _Process.lock:
            _Process.holders -= 1
            if _Process.holders == 0:
                _without_controlling_thread()
                _Process.limiter.restore_original_limits()
                _without_controlling_thread()
                _Process.limiter = None


def holds_one_blas_thread(function):
    """Decorate a public compute entry: the whole call runs under :func:`one_blas_thread`."""
    @functools.wraps(function)
    def call(*args, **kwargs):
        with one_blas_thread():
            return function(*args, **kwargs)
    return call
