"""Where a batch runs: a local Dask cluster sized to this machine, or an existing cluster.

A local cluster has one worker process per share of the cores (``workers`` x
``threads_per_worker`` task slots, each with ``cores // slots`` threads). On any cluster
every worker gets the :class:`~nstaudio.batching.worker.ThreadShare` plugin, which limits
BLAS, numba and FFT threads to its task slot's share of its host, so that workers never
oversubscribe the cores.
"""

import contextlib
import logging
from collections import Counter

from ..errors import ParameterError
from .cores import usable_cores

INSTALL_HINT = "pip install 'nstaudio[distributed]'"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MALLOC_TRIM = "MALLOC_TRIM_THRESHOLD_"
# The Dask configuration that keeps them out of a nanny's environment (connect() says why).
NANNY_UNSET = {f"distributed.nanny.pre-spawn-environ.{name}": None for name in (*THREAD_VARIABLES, MALLOC_TRIM)}
# How long to wait for an existing scheduler to answer before giving up (seconds).
CONNECT_TIMEOUT = 20


def require_distributed():
    """The ``distributed`` module; ParameterError saying how to install it where it is missing."""
    try:
        import distributed
    except ImportError:
        raise ParameterError(f"nstaudio batch runs on Dask, which is not installed: {INSTALL_HINT}") from None
    return distributed


def check_options(scheduler, workers, threads_per_worker):
    """ParameterError for a cluster's options that cannot go together, before anything is started."""
    if scheduler is not None and (workers is not None or threads_per_worker is not None):
        raise ParameterError("--workers and --threads-per-worker size a local cluster; an existing cluster "
                             "(--scheduler) keeps its own")
    if scheduler is None:
        local_size(workers, threads_per_worker)


def local_size(workers=None, threads_per_worker=None, cores=None):
    """``(workers, threads_per_worker, threads per task)`` of a local cluster on ``cores`` cores.

    By default one single-threaded worker process per core: separate processes keep each
    item's Python work (the optimizer's bookkeeping, reading and writing) off the others'
    cores, and one thread per item wastes nothing on the small matrix products of short clips.
    """
    cores = cores or usable_cores()
    threads_per_worker = 1 if threads_per_worker is None else int(threads_per_worker)
    if threads_per_worker < 1:
        raise ParameterError(f"threads per worker must be >= 1, got {threads_per_worker}")
    workers = max(1, cores // threads_per_worker) if workers is None else int(workers)
    if workers < 1:
        raise ParameterError(f"workers must be >= 1, got {workers}")
    return workers, threads_per_worker, max(1, cores // (workers * threads_per_worker))


@contextlib.contextmanager
def connect(scheduler=None, *, workers=None, threads_per_worker=None):
    """A Dask client on a new local cluster, or on the scheduler at ``scheduler``; closed afterwards.

    Parameters
    ----------
    scheduler : str or None
        An existing cluster's scheduler address (``tcp://host:8786``).
    workers, threads_per_worker : int or None
        The local cluster's size (:func:`local_size`); not with ``scheduler``.

    Yields
    ------
    distributed.Client
    """
    distributed = require_distributed()
    from .worker import PLUGIN_NAME, ThreadShare

    check_options(scheduler, workers, threads_per_worker)
    cluster = None
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, ValueError, TypeError) as exc:
            raise ParameterError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError):
            client.close()
            raise ParameterError(f"the Dask scheduler at {scheduler} has no workers (waited {CONNECT_TIMEOUT} s); "
                                 "start some with `dask worker`") from None
    else:
        import dask

        n_workers, threads, share = local_size(workers, threads_per_worker)
        limits = {name: str(share) for name in THREAD_VARIABLES}
        # Dask's nanny sets these in its own process (this one) and its workers' before they start.
        # Not the thread counts (the workers get theirs below, this process keeps its own), and not
        # MALLOC_TRIM_THRESHOLD_: setting it turns off glibc's adaptive mmap threshold, so every
        # large temporary array is a fresh mmap, and a worker stylizes slower (docs/decisions.md,
        # "Batch: the nanny's environment").
        # memory_limit=0: no nanny terminating a worker at a fraction of the machine; nstaudio
        # refuses a run the memory cannot hold before it starts (nstaudio.limits).
        # No dashboard; the scheduler's own HTTP server (health routes) would still take port 8787
        # and, where another cluster holds it, print a warning: a free port on this host instead.
        with dask.config.set(NANNY_UNSET):
            cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads, processes=True,
                                               dashboard_address=None, memory_limit=0, env=limits,
                                               silence_logs=logging.ERROR,
                                               scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
        try:
            client = distributed.Client(cluster)
        except BaseException:
            cluster.close()
            raise
    try:
        client.register_plugin(ThreadShare(host_shares(client)), name=PLUGIN_NAME)
        yield client
    finally:
        if cluster is None:  # a cluster of others: take the thread limits away again
            try:
                client.unregister_worker_plugin(PLUGIN_NAME)
            except Exception:  # the cluster may be gone; the limits go with it
                pass
        client.close()
        if cluster is not None:
            cluster.close()


def host_shares(client):
    """Host -> threads per task: each host's cores over the task slots of all its workers."""
    cores = client.run(usable_cores)
    workers = client.scheduler_info(n_workers=-1)["workers"]
    slots = Counter()
    for info in workers.values():
        slots[info["host"]] += info["nthreads"]
    return {info["host"]: max(1, (cores.get(address) or 1) // slots[info["host"]])
            for address, info in workers.items()}
