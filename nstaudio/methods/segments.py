"""Long recordings in overlapping segments, each optimized alone, joined by crossfades.

An optimizing method (`optimize`, `timedomain`) cuts a content longer than ``segment``
seconds into segments of equal length that overlap by at least ``segment_overlap`` seconds.
Every segment is optimized alone against the style target the method prepared once for
the whole run, so the cost of an evaluation and the optimizer's memory stay those of one
segment however long the recording is, and the time grows linearly with its length. The
segments' results are joined with raised-cosine crossfades over their overlaps (weights that
sum to 1 everywhere): in the log spectrogram for `optimize` (a geometric blend of the
magnitudes, before one phase reconstruction of the whole), in the waveform for `timedomain`.
A content no longer than one segment is optimized whole, as before segments existed.
"""

import numpy as np

from ..errors import ParameterError


def segment_spans(length, segment, overlap):
    """Where the segments of a ``length``-long axis start and stop.

    The fewest segments of at most ``segment`` frames whose neighbours share ``overlap``
    frames, spread evenly (their lengths differ by a frame at most).

    Parameters
    ----------
    length : int
        Frames (or samples) of the content.
    segment : int
        Most frames per segment; 0 (or ``length`` or more) gives one segment of everything.
    overlap : int
        Frames two neighbours share: at most a third of a segment, so that no frame is in more
        than two segments.

    Returns
    -------
    list of (int, int)
        ``(start, stop)`` of each segment, in order, the first at 0, the last at ``length``.
    """
    if segment <= 0 or length <= segment:
        return [(0, length)]
    if not 0 <= 3 * overlap <= segment:
        raise ParameterError(f"a segment overlap of {overlap} frames must be at most a third of the segment "
                             f"({segment})")
    count = -(-(length - overlap) // (segment - overlap))
    # segment k starts at k (length - overlap) / count, rounded half up in integers (the same start
    # for k + 1 ends segment k, plus the overlap); that stride is at least the overlap, a third of a
    # segment at most, so overlaps never meet
    starts = [(2 * k * (length - overlap) + count) // (2 * count) for k in range(count + 1)]
    return [(starts[k], starts[k + 1] + overlap) for k in range(count)]


def crossfade_weights(spans):
    """Each segment's weight along its frames: 1 alone, a raised-cosine fade where it overlaps a neighbour.

    Over an overlap of ``L`` frames the earlier segment's weight is ``cos^2(pi/2 (i + 1/2) / L)``
    and the later one's ``sin^2`` of the same, so the weights of every frame sum to 1.

    Parameters
    ----------
    spans : list of (int, int)
        From :func:`segment_spans`.

    Returns
    -------
    list of np.ndarray, each shape (stop - start,), float32
    """
    weights = [np.ones(stop - start, np.float64) for start, stop in spans]
    for k in range(len(spans) - 1):
        shared = spans[k][1] - spans[k + 1][0]
        rise = np.sin(0.5 * np.pi * (np.arange(shared) + 0.5) / shared) ** 2
        weights[k][len(weights[k]) - shared:] *= 1.0 - rise
        weights[k + 1][:shared] *= rise
    return [w.astype(np.float32) for w in weights]


def join(pieces, spans, length):
    """The segments' results crossfaded into one along their last axis.

    Parameters
    ----------
    pieces : list of np.ndarray, each shape (..., stop - start)
    spans : list of (int, int)
    length : int

    Returns
    -------
    np.ndarray, shape (..., length), float32
    """
    out = np.zeros(pieces[0].shape[:-1] + (length,), np.float32)
    for piece, (start, stop), weight in zip(pieces, spans, crossfade_weights(spans)):
        out[..., start:stop] += piece * weight
    return out


def run_in_segments(run_one, content, spans, iterations, callback):
    """``run_one`` on each segment of ``content`` (its last axis cut at ``spans``), the results joined.

    Parameters
    ----------
    run_one : callable
        ``run_one(segment, callback) -> (result, info)``: the method on one segment, with the
        info of :func:`nstaudio.methods.optimize.optimize`.
    content : np.ndarray, shape (..., length)
    spans : list of (int, int)
    iterations : int
        Iterations each segment may take: segment ``k``'s iteration ``i`` reports as step
        ``k * iterations + i``, so that progress counts over the whole recording.
    callback : callable or None
        ``callback(step, loss)`` or ``callback(step, loss, stage=...)``.

    Returns
    -------
    result : np.ndarray, shape of ``content``'s but for its last axis as ``run_one`` returns it
    info : dict
        The segments' losses summed; their iterations and evaluations in all; converged when
        every segment converged; ``history`` the segments' loss histories one after another.
    """
    if len(spans) == 1:
        return run_one(content, callback)
    pieces, infos = [], []
    for k, (start, stop) in enumerate(spans):
        report = None if callback is None else _offset(callback, k * iterations)
        piece, info = run_one(content[..., start:stop], report)
        pieces.append(piece)
        infos.append(info)
    info = dict(infos[0])
    for key in ("loss", "content_loss", "style_loss", "temporal_loss", "spectral_loss", "initial_loss",
                "initial_style_loss", "iterations", "evaluations"):
        if key in info:
            info[key] = sum(part[key] for part in infos)
    info["converged"] = all(part["converged"] for part in infos)
    info["history"] = np.concatenate([np.asarray(part["history"]) for part in infos])
    info["segments"] = len(spans)
    return join(pieces, spans, content.shape[-1]), info


def _offset(callback, offset):
    """``callback`` with its steps moved on by ``offset``."""
    return lambda step, loss, **stage: callback(offset + step, loss, **stage)
