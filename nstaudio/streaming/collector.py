"""Python's garbage collector kept out of a stream's blocks.

A collection pauses the thread it runs in for as long as it scans; in an audio callback that
is a late block (docs/decisions.md, "Stream: garbage collection").
"""

import contextlib
import gc


def age_objects():
    """Make the objects there are now old: collected from the young generations here, so that a young
    collection in the stream's blocks scans only the stream's few lasting objects."""
    gc.collect(1)


@contextlib.contextmanager
def frozen_objects():
    """Keep the objects there are now out of Python's full collections within the block (``gc.freeze``).

    They are unfrozen after, unless objects had been frozen before (a host's own freeze stays).
    This is the process's setting: one such block at a time per process.
    """
    frozen_before = gc.get_freeze_count() > 0
    gc.freeze()
    try:
        yield
    finally:
        if not frozen_before:
            gc.unfreeze()
