"""What runs on a batch's Dask workers: the shared analyses, the items, and each worker's thread share.

Imported only where Dask is installed (``nstaudio.batching.cluster`` checks first). Task
functions never raise for an item's own failure: they return its record, with the one-line
error, so that one bad file cannot stop the batch; Dask itself retries an item whose worker
died while running it.
"""

import contextlib
import os
import tempfile
import time
from dataclasses import dataclass

import distributed

from .. import audio, jobs, storage
from ..api import analyse_style
from ..errors import NstAudioError
from ..files import TEMP_PREFIX
from ..kernels.thread_share import limit_threads
from .cores import usable_cores

PLUGIN_NAME = "nstaudio-thread-share"
PROGRESS_TOPIC = "nstaudio-batch-progress"
# A worker reports an item's progress at most this often (seconds): enough for a progress bar,
# few enough messages for a scheduler serving many workers.
PROGRESS_INTERVAL = 0.5


class ThreadShare(distributed.WorkerPlugin):
    """Each worker's share of its host's cores: BLAS limited to it once, numba and FFTs per task.

    Parameters
    ----------
    shares : dict
        Host -> threads per task, computed from the cores and task slots of each host. A worker
        on a host not listed (one that joined later) takes its host's cores over its own slots.
    """

    def __init__(self, shares):
        self.shares = dict(shares)
        self.share = 1

    def setup(self, worker):
        host = distributed.comm.get_address_host(worker.address)
        self.share = self.shares.get(host) or max(1, usable_cores() // max(1, worker.state.nthreads))
        from threadpoolctl import threadpool_limits

        self._blas = threadpool_limits(limits=self.share, user_api="blas")


def thread_share():
    """The share of the worker running the calling task (all cores outside a worker)."""
    try:
        worker = distributed.get_worker()
    except ValueError:
        return usable_cores()
    plugin = worker.plugins.get(PLUGIN_NAME)
    return 1 if plugin is None else plugin.share


@dataclass(frozen=True)
class Failed:
    """A shared analysis that failed: the items that needed it fail with its message."""

    error: str


def analyse_styles(style_paths, settings):
    """Read the style files and analyse them once for every item that shares them.

    Returns
    -------
    StyleAnalysis, or Failed with the one-line reason (a missing style, not audio, too short).
    """
    try:
        styles = []
        for path in style_paths:
            with storage.local_copy(path) as local:
                styles.append(audio.load(local))
        with limit_threads(thread_share()):
            return analyse_style([y for y, _ in styles], [sr for _, sr in styles], **settings)
    except NstAudioError as exc:
        return Failed(str(exc))


def run_item(item, settings, shared):
    """Stylize one item on this worker; its record (done or failed), never an exception.

    Parameters
    ----------
    item : nstaudio.batching.items.Item
    settings : str
        Its settings hash, taken when the batch started (before any style was read).
    shared : StyleAnalysis, Network or Failed
        The item's styles analysed, or its model, as the batch shared them.
    """
    started = time.perf_counter()
    reporter = _Reporter(item.key)
    try:
        if isinstance(shared, Failed):
            raise _SharedFailure(shared.error)
        options = dict(item.options)
        if item.model is not None:
            options["model"] = shared
        else:
            options["style"] = shared
        with _local(item) as (content, output), limit_threads(thread_share()):
            job = jobs.stylize_file(content, output, callback=reporter, **options)
            entry = jobs.record(item.content, output, settings, job=job)
            if output != item.output:
                storage.upload(output, item.output)
                entry["output"] = item.output
    except (NstAudioError, _SharedFailure) as exc:
        entry = jobs.record(item.content, item.output, settings, error=str(exc),
                            seconds=time.perf_counter() - started)
    except Exception as exc:  # a bug, not the input: recorded as such, and the batch goes on
        entry = jobs.record(item.content, item.output, settings, error=f"{type(exc).__name__}: {exc}",
                            internal=True, seconds=time.perf_counter() - started)
    entry["key"] = item.key
    return entry


@contextlib.contextmanager
def _local(item):
    """Yield local paths for the item's content and output: themselves, or for URLs a copy of the content
    and a file to write the output to in a temporary directory (removed after the block), with errors
    naming the URLs."""
    if not (storage.is_url(item.content) or storage.is_url(item.output)):
        yield item.content, item.output
        return
    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as scratch:
        with storage.local_copy(item.content, scratch) as content:
            output = item.output
            if storage.is_url(output):  # its own folder: the name (and format) of the output, beside no input
                output = os.path.join(scratch, "output", os.path.basename(output))
                os.makedirs(os.path.dirname(output))
            with storage.naming(output, item.output):
                yield content, output


class _SharedFailure(Exception):
    """The item's shared analysis or model failed."""


class _Reporter:
    """stylize's progress callback on a worker: an event for the batch's progress bar, now and then."""

    def __init__(self, key):
        self.key = key
        self.last = 0.0

    def __call__(self, stage, step, total, value):
        now = time.monotonic()
        if now - self.last < PROGRESS_INTERVAL and step < total:
            return
        self.last = now
        try:
            distributed.get_worker().log_event(PROGRESS_TOPIC, {"key": self.key, "stage": str(stage),
                                                                "step": int(step), "total": int(total)})
        except Exception:  # not on a worker, or the scheduler gone: progress is never worth an item
            pass
