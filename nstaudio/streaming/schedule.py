"""Work ahead of need: the pieces of a stream's next frames, done between its blocks in a share of their time.

A block's own output is computed when the block comes; the work the next frames will need
is then done ahead, a piece at a time (one frame of one layer, one channel's phase, one
refinement pass), as long as each piece is expected to end within a share of the block's
duration. The expectation is the longest time a piece of the same kind took lately, measured
on this machine (docs/decisions.md, "Stream: work ahead of need").
"""

import time

# Work ahead of need ends this far into a block's duration: a piece is begun only if the longest
# piece of its kind lately would end before then. The real-time target is a quarter of the block's
# duration; the rest is margin for the machine's own hiccups.
AHEAD_SHARE = 0.2
# How fast the longest piece of a kind lately is forgotten, each time a piece of that kind runs or
# is held back, so that a hiccup of the machine does not hold the work ahead back for long. Per
# run, not per block: a gan model's window runs each of its pieces once in many blocks.
PIECE_MEMORY = 0.9
# How much the record of a kind of piece may grow at once: a piece the machine stalls would
# otherwise hold its kind back for dozens of blocks, until the work it belongs to came due in one
# block; a real slowdown is followed within a few runs.
PIECE_GROWTH = 2.0


def deadline(started, samples, sr):
    """When the work ahead in a block's call must end: :data:`AHEAD_SHARE` of the block's duration after its start.

    Parameters
    ----------
    started : float
        The :func:`time.perf_counter` time the call began.
    samples, sr : int
        The block's length and sample rate.

    Returns
    -------
    float
        A :func:`time.perf_counter` time.
    """
    return started + AHEAD_SHARE * samples / sr


def work_ahead(next_piece, ends, piece_times):
    """Do pieces of work one at a time, while each is expected to end before ``ends``.

    Parameters
    ----------
    next_piece : callable
        ``next_piece()``: ``(kind, work)`` for the next piece, ``kind`` hashable (what its time is
        recorded under) and ``work()`` doing it; None when there is none.
    ends : float
        The :func:`time.perf_counter` time by which the work must end (:func:`deadline`).
    piece_times : dict
        Kind -> the longest time a piece of it took lately (seconds), updated in place.
    """
    while True:
        piece = next_piece()
        if piece is None:
            return
        kind, work = piece
        began = time.perf_counter()
        expected = piece_times.get(kind, 0.0)
        if began + expected > ends:
            # a hiccup's record fades while it holds the work back, so that it cannot hold it for ever
            piece_times[kind] = PIECE_MEMORY * expected
            return
        work()
        took = time.perf_counter() - began
        piece_times[kind] = max(min(took, PIECE_GROWTH * expected) if expected else took, PIECE_MEMORY * expected)
