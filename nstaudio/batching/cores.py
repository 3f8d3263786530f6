"""The cores a batch may use on this machine: what sizes a local cluster and each worker's thread share."""

import os


def usable_cores():
    """The cores this process may run on (its CPU affinity, which containers and schedulers set)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
