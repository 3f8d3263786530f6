"""Matrix products whose bits do not depend on the number of threads, at BLAS's speed.

A product is cut into blocks whose sizes follow from its shapes alone: along the longer side
of its output, or, for a small output of a long sum (``F^T F`` of a few hundred frames over
4096 features), along the sum, whose partial products are then added in their order. Each
block is one BLAS call on one thread (:mod:`.blas_threads`), and the calling thread's share of
the cores (:func:`.thread_share.threads`) works through the blocks side by side. Every entry
of the output is then summed by the same single-threaded kernel in the same order, on any
number of threads.
"""

import threading

import numpy as np

from .blas_threads import one_blas_thread
from .thread_share import threads as thread_count

# A block has at least this many rows (or columns) of the output: narrower blocks pack the
# other operand again too often for BLAS to keep its speed.
MIN_BLOCK = 128
# A block of a split sum covers at least this many terms.
MIN_DEPTH = 512
# At most this many blocks a product, so that up to that many cores share it.
MAX_BLOCKS = 32
# The sum is split only for outputs of at most this many entries (their partial products are
# kept and added), and only when it is this many times longer than the output's longer side.
DEPTH_SPLIT_ENTRIES = 2**18
DEPTH_SPLIT_RATIO = 4
# Products of fewer multiply-adds run in the calling thread: starting threads would cost more.
PARALLEL_MACS = 2**24


def spans(length, count):
    """``count`` contiguous (start, stop) ranges covering ``range(length)``, sizes differing by at most one."""
    edges = [length * i // count for i in range(count + 1)]
    return [(start, stop) for start, stop in zip(edges[:-1], edges[1:]) if stop > start]


def plan(M, N, K):
    """How a (M, K) x (K, N) product is cut: ``(axis, spans)``, axis "rows", "columns" or "depth".

    A function of the shapes alone, never of the thread count.
    """
    if M * N <= DEPTH_SPLIT_ENTRIES and K >= DEPTH_SPLIT_RATIO * max(M, N) and K >= 2 * MIN_DEPTH:
        return "depth", spans(K, min(MAX_BLOCKS, K // MIN_DEPTH))
    axis, length = ("rows", M) if M >= N else ("columns", N)
    return axis, spans(length, max(1, min(MAX_BLOCKS, length // MIN_BLOCK)))


def _run(tasks, macs):
    """Call each of ``tasks`` (no arguments) once, on the calling thread's share of the cores.

    The calling thread works too; the first exception raised is raised here, after the others stop.
    """
    workers = min(thread_count(), len(tasks)) if macs >= PARALLEL_MACS else 1
    if workers == 1:
        for task in tasks:
            task()
        return
    pending, lock, errors = iter(tasks), threading.Lock(), []

    def work():
        while not errors:
            with lock:
                task = next(pending, None)
            if task is None:
                return
            try:
                task()
            except BaseException as exc:  # raised in the caller's thread below
                errors.append(exc)

    helpers = [threading.Thread(target=work, name="nstaudio-product", daemon=True) for _ in range(workers - 1)]
    for helper in helpers:
        helper.start()
    work()
    for helper in helpers:
        helper.join()
    if errors:
        raise errors[0]


def _sum_in_order(partials, out):
    """``out = partials[0] + partials[1] + ...``, added first to last."""
    np.copyto(out, partials[0])
    for partial in partials[1:]:
        out += partial
    return out


def matmul(a, b, out=None):
    """``a @ b`` for 2-D arrays, the same bits on any number of threads.

    Parameters
    ----------
    a : np.ndarray, shape (M, K)
    b : np.ndarray, shape (K, N)
        Any strides numpy's BLAS path takes (views of larger arrays, transposes).
    out : np.ndarray, shape (M, N), optional
        Where to write the product (no operand may overlap it).

    Returns
    -------
    np.ndarray, shape (M, N)
    """
    M, K = a.shape
    N = b.shape[1]
    if out is None:
        out = np.empty((M, N), dtype=np.result_type(a, b))
    axis, parts = plan(M, N, K)
    partials = np.empty((len(parts), M, N), dtype=out.dtype) if axis == "depth" else None  # (2 parts or more)

    def block(index, start, stop):
        if axis == "rows":
            return lambda: np.matmul(a[start:stop], b, out=out[start:stop])
        if axis == "columns":
            return lambda: np.matmul(a, b[:, start:stop], out=out[:, start:stop])
        return lambda: np.matmul(a[:, start:stop], b[start:stop], out=partials[index])

    with one_blas_thread():
        _run([block(index, start, stop) for index, (start, stop) in enumerate(parts)], M * N * K)
    return out if partials is None else _sum_in_order(partials, out)


def gram(a, out=None):
    """``a @ a.T`` for a 2-D array, the same bits on any number of threads, exactly symmetric.

    Cut as :func:`matmul` cuts ``a @ a.T``; by rows, only the blocks on and below the diagonal
    are multiplied (about half the work, as one BLAS syrk), the diagonal ones by syrk, and those
    above are their transposes; by the sum, it is :func:`matmul`'s product, whose partial products
    numpy hands to syrk (each piece times its own transpose).

    Parameters
    ----------
    a : np.ndarray, shape (M, K)
    out : np.ndarray, shape (M, M), optional

    Returns
    -------
    np.ndarray, shape (M, M)
    """
    M, K = a.shape
    if out is None:
        out = np.empty((M, M), dtype=a.dtype)
    axis, parts = plan(M, M, K)
    if axis == "depth":
        return matmul(a, a.T, out=out)

    def block(start, stop):
        rows = a[start:stop]

        def multiply():
            np.matmul(rows, a[:start].T, out=out[start:stop, :start])
            np.matmul(rows, rows.T, out=out[start:stop, start:stop])  # a syrk: symmetric, as BLAS's GEMM is not
        return multiply

    with one_blas_thread():
        # the widest blocks first: the threads then finish together
        _run([block(start, stop) for start, stop in reversed(parts)], M * M * K // 2)
    for start, stop in parts[1:]:
        out[:start, start:stop] = out[start:stop, :start].T
    return out
