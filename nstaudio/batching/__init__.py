"""Batches: many files stylized on one machine or a Dask cluster, resumable, nothing lost.

``items`` finds the jobs, ``ledger`` keeps the results file, ``cluster`` starts or joins
the Dask cluster, ``worker`` is what runs there, and ``runner`` ties them together as
:func:`batch` (``nstaudio.batch``, ``nstaudio batch``).
"""

from .ledger import LEDGER_NAME
from .runner import BatchProgress, batch

__all__ = ["LEDGER_NAME", "BatchProgress", "batch"]
