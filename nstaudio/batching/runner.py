"""``nstaudio.batch``: many stylizing jobs on a Dask cluster, each style analysed and each model read once.

The steps: find the items (``items``), skip those the results file says are done with the
same settings (``ledger``), connect to a cluster (``cluster``), share what items have in
common (one analysis task per style set and settings, one copy of each model, moved to a
worker once), run the items (``worker``) and record each one as it finishes.
"""

import os
import threading
import time
import uuid
from dataclasses import dataclass, field

from .. import models, storage
from ..api import analysis_setting_names, resolve_settings
from ..errors import NstAudioError, ParameterError
from ..methods import REGISTRY
from .cluster import check_options, connect, require_distributed
from .items import collect
from .ledger import open_ledger


def analysis_settings(options):
    """The settings of ``options`` (an item's, as given) its style analysis depends on
    (:func:`nstaudio.api.analysis_setting_names`, and the method): items that agree on them and
    on their style files share one analysis."""
    names = ("method", *analysis_setting_names(REGISTRY.resolve(options.get("method"), None)))
    return {name: options[name] for name in names if options.get(name) is not None}
# How often the progress callback is called while no item finishes (seconds).
TICK = 0.5


@dataclass
class BatchProgress:
    """Where a batch stands, for a progress display (the ``callback`` of :func:`batch`).

    Attributes
    ----------
    total : int
        Items in the batch.
    done, failed, skipped : int
        Items finished now, failed now, and found done before (not run again).
    last : dict or None
        The record of the item that finished last.
    running : dict
        Output key -> (stage, step, steps) of the items the workers report on now.
    """

    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    last: dict = None
    running: dict = field(default_factory=dict)

    @property
    def finished(self):
        return self.done + self.failed + self.skipped


def batch(inputs, styles=(), *, outdir, model=None, scheduler=None, workers=None, threads_per_worker=None,
          callback=None, **options):
    """Stylize many files, on a local Dask cluster or an existing one; resumable.

    Parameters
    ----------
    inputs : sequence of str
        Content files, directories (searched recursively for audio) and manifest CSVs
        (:func:`nstaudio.batching.items.collect` says what their columns may be). Any path
        here may be an fsspec URL (``s3://bucket/songs``) where fsspec and the storage's
        package are installed (:mod:`nstaudio.storage`).
    styles : sequence of str
        Style files for every item that names none of its own.
    outdir : str
        Where the outputs go, each at its input's path relative to the directory or manifest
        it came from, with its name and format; also holds the results file
        (``nstaudio-batch.jsonl``). A URL's results file is rewritten whole as each item
        finishes, and nothing stops a second batch writing there at the same time.
    model : str or None
        A model file (``train-style``, ``train-gan``) for every item that names no styles.
    scheduler : str or None
        An existing Dask cluster's scheduler address; None starts a local cluster.
    workers, threads_per_worker : int or None
        The local cluster's size (default: one single-threaded worker per core).
    callback : callable or None
        ``callback(BatchProgress)`` as items finish, and every half second meanwhile.
    **options
        :func:`nstaudio.stylize`'s settings for every item (a manifest's cells override them).

    Returns
    -------
    list of dict
        One record per item, in the order of the inputs: those of :func:`nstaudio.jobs.record`
        and ``key`` (the output's path under ``outdir``); items done before have status
        ``"skipped"`` and their earlier record's numbers.

    Raises
    ------
    NstAudioError
        Before any work: Dask missing, a malformed input list or manifest, an unreadable
        ``model``, an output directory another batch is using. An item's own failure is not
        raised: its record says ``"failed"`` and why.
    """
    require_distributed()
    check_options(scheduler, workers, threads_per_worker)
    items = collect(inputs, outdir, styles=styles, model=model, options=options)
    # A bad --model stops the batch before any work (a manifest row's bad model fails its items).
    networks = {} if model is None else {storage.absolute(model): _load_model(model)}
    networks = _read_models(items, networks)
    _check_settings(items, networks)
    settings = {item.key: item.settings for item in items}  # the inputs as they are now, before any work
    with open_ledger(storage.absolute(os.fspath(outdir))) as ledger:
        progress = BatchProgress(total=len(items))
        records, todo = {}, []
        for item in items:
            earlier = ledger.finished(item, settings[item.key])
            if earlier is None:
                todo.append(item)
            else:
                records[item.key] = dict(earlier, status="skipped")
                progress.skipped += 1
        if callback is not None:
            callback(progress)
        for directory in sorted({storage.dirname(item.output) for item in todo}):
            storage.makedirs(directory)
        if todo:
            _remove_unfinished(todo)  # of a batch killed outright before
            try:
                with connect(scheduler, workers=workers, threads_per_worker=threads_per_worker) as client:
                    _run(client, todo, settings, networks, ledger, records, progress, callback)
            finally:
                _remove_unfinished(todo)
    return [records[item.key] for item in items]


def _read_models(items, networks):
    """Path -> the model (or the Failed reason) of every model the items name, each read once, here."""
    from .worker import Failed

    networks = dict(networks)
    for path in dict.fromkeys(item.model for item in items if item.model is not None):
        if path not in networks:
            try:
                networks[path] = _load_model(path)
            except NstAudioError as exc:
                networks[path] = Failed(str(exc))
    return networks


def _load_model(path):
    """The style or gan model at ``path`` (local or a URL), read here."""
    with storage.local_copy(path) as local:
        return models.load_model(local, kind=("style", "gan"))


def _check_settings(items, networks):
    """ParameterError, before any work, for the first item whose settings no run could take (each
    distinct set of settings checked once)."""
    from .worker import Failed

    checked = set()
    for item in items:
        network = networks.get(item.model)
        if isinstance(network, Failed):
            continue  # its items fail with the model's reason
        key = (repr(sorted(item.options.items())), len(item.styles), item.model)
        if key in checked:
            continue
        try:
            resolve_settings(item.options, styles=len(item.styles), model=network)
        except ParameterError as exc:
            raise ParameterError(f"{item.content}: {exc}") from None
        checked.add(key)


def _run(client, items, settings, networks, ledger, records, progress, callback):
    """Submit ``items`` with their settings hashes, shared analyses and models (``networks``: path ->
    the models read already); record each as it finishes."""
    import distributed

    from .worker import PROGRESS_TOPIC, run_item

    lock = threading.Lock()

    def on_progress(event):
        message = event[1]
        with lock:
            if message["key"] not in records:
                progress.running[message["key"]] = (message["stage"], message["step"], message["total"])

    client.subscribe_topic(PROGRESS_TOPIC, on_progress)
    shared = _shared(client, items, networks)
    batch_id = uuid.uuid4().hex[:8]
    futures = {client.submit(run_item, item, settings[item.key], shared[index], pure=False,
                             key=f"nstaudio-{batch_id}-item-{index}"): item for index, item in enumerate(items)}
    finished = distributed.as_completed(futures)
    ticked = time.monotonic()
    while not finished.is_empty():
        if not finished.has_ready():
            time.sleep(0.05)
            if callback is not None and time.monotonic() - ticked > TICK:
                ticked = time.monotonic()
                with lock:
                    callback(progress)
            continue
        for future in finished.next_batch(block=False):
            item = futures[future]
            entry = _result(future, item, settings[item.key])
            ledger.append(entry)
            with lock:
                records[item.key] = entry
                progress.running.pop(item.key, None)
                progress.last = entry
                if entry["status"] == "done":
                    progress.done += 1
                else:
                    progress.failed += 1
                if callback is not None:
                    callback(progress)


def _result(future, item, settings):
    """The record ``future`` returned, or a failed record where Dask gave up on it (its worker died
    too often, the cluster went away)."""
    from .. import jobs

    try:
        return future.result()
    except Exception as exc:  # KilledWorker, CommClosedError, CancelledError: nstaudio's or the cluster's
        entry = jobs.record(item.content, item.output, settings, internal=True,
                            error=f"the cluster lost this item: {type(exc).__name__}: {exc}")
        entry["key"] = item.key
        return entry


def _shared(client, items, networks):
    """For each item, a future of what it shares with others: its styles' analysis, or its model
    (``networks``: read here once), moved to each worker that needs it once."""
    from .worker import analyse_styles

    analyses, scattered, shared = {}, {}, []
    for item in items:
        if item.model is not None:
            if item.model not in scattered:
                scattered[item.model] = client.scatter(networks[item.model], hash=False)
            shared.append(scattered[item.model])
            continue
        settings = analysis_settings(item.options)
        key = (item.styles, repr(sorted(settings.items())))
        if key not in analyses:
            analyses[key] = client.submit(analyse_styles, list(item.styles), settings, pure=False, priority=10)
        shared.append(analyses[key])
    return shared


def _remove_unfinished(items):
    """Remove the temporary files of outputs that stopped workers left unfinished.

    Workers write each output to a temporary file beside it (``nstaudio.files``); a worker
    stopped with the batch (Ctrl-C, a lost worker, the batch killed outright) may leave one.
    While this batch holds the results file's lock no other batch writes here and no worker
    of a local cluster runs (before the cluster starts, after it stops), so every file of nstaudio's
    temporary name in the items' output directories is taken for such a leftover (a plain
    ``nstaudio run`` writing into the same directory at that moment would lose its output's
    temporary file and fail with an error, never a broken output).
    """
    for directory in {storage.dirname(item.output) for item in items}:
        storage.remove_unfinished(directory)
