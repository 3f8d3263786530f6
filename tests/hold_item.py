"""A Dask worker preload for the batch tests: the first item to start, anywhere, is held inside its run.

With ``NSTAUDIO_TEST_HOLD=<directory>`` in the workers' environment and this file in Dask's
``distributed.worker.preload``, each worker wraps ``nstaudio.jobs.stylize_file``: at an item's
first progress report (inside stylize, the content read and the optimizer started) the item
tries to claim the hold; the one that does writes ``<directory>/held`` (its task key, content
and process id, as JSON) and waits there without finishing, until the test kills its worker.
Every other item runs as usual, and so does every item of a worker started after the claim.
"""

import json
import os
import time

HOLD_SECONDS = 600  # a bound, so that a test that fails before its kill leaves no worker waiting for ever


def dask_setup(worker):
    directory = os.environ.get("NSTAUDIO_TEST_HOLD")
    if not directory:
        return
    import distributed

    from nstaudio import jobs

    real = jobs.stylize_file

    def stylize_file(content_path, output, *, callback=None, **options):
        first = [True]

        def report(*progress):
            if callback is not None:
                callback(*progress)
            if first:
                first.clear()
                _hold(directory, content_path, distributed.get_worker().get_current_task())

        return real(content_path, output, callback=report, **options)

    jobs.stylize_file = stylize_file


def _hold(directory, content_path, key):
    try:
        os.close(os.open(os.path.join(directory, "claim"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return  # another item holds it (or held it, in a worker killed since)
    partial = os.path.join(directory, "held.partial")
    with open(partial, "w") as f:
        json.dump({"key": str(key), "content": content_path, "pid": os.getpid()}, f)
    os.replace(partial, os.path.join(directory, "held"))  # whole, once the test sees it
    time.sleep(HOLD_SECONDS)
