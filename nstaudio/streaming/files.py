"""A file through a :class:`~nstaudio.streaming.Stream`, block by block: what ``nstaudio stream`` runs.

Memory stays that of a few blocks for any length: the input is decoded block by block
(twice: once to check it, once to stylize it) and the output is written as it comes, to a
temporary file that replaces the output only when complete.
"""

import time
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from .. import audio, files
from ..errors import AudioError, OutputError
from ..jobs import check_job
from ..models import Network, load_model
from .stream import Stream


@dataclass
class StreamSummary:
    """What :func:`stream_file` did: samples, the stream's latency, and how fast it ran."""

    frames: int
    sr: int
    channels: int
    latency: int
    seconds: float

    @property
    def real_time_factor(self):
        """Processing time over the audio's duration (below 1: faster than real time)."""
        return self.seconds / max(self.frames / self.sr, 1e-12)


def stream_file(model, input_path, output, *, block_size=512, callback=None, **stream_options):
    """Stylize the file ``input_path`` into ``output`` through a :class:`Stream`.

    The output has the input's rate, channels, sample format and length, aligned with it: the
    stream's first :attr:`Stream.latency` samples (silence) are dropped and its tail
    (:meth:`Stream.flush`) is kept.

    Parameters
    ----------
    model : Network or str
        A style or gan model, or its file (the output must not be it).
    input_path, output : str
    block_size : int
    callback : callable or None
        ``callback(done, total)`` in samples, after each block.
    **stream_options
        :class:`Stream`'s other settings (``device``, ``input_gain``, ``lookahead``, ``phase_iters``,
        ``phase_frames``, ``spread``, ``seed``).

    Returns
    -------
    StreamSummary

    Raises
    ------
    NstAudioError
        An unreadable, empty, silent or non-finite input, a bad setting or an unwritable output,
        all found before the stream starts.
    """
    started = time.perf_counter()
    info = check_job(input_path, output, [] if isinstance(model, Network) else [model])
    if not isinstance(model, Network):
        model = load_model(model, kind=("style", "gan"))
    frames = _check_samples(input_path)
    sr_model, n_fft, _ = model.spectrogram_settings
    shortest = -(-n_fft * info.samplerate // sr_model)
    if frames < shortest:  # as stylize refuses it: less than one frame is no recording
        raise AudioError(f"{input_path} is too short: {frames / info.samplerate:.3f} s, needs at least "
                         f"{shortest / info.samplerate:.3f} s (one {n_fft}-sample frame)")
    stream = Stream(model, channels=info.channels, block_size=block_size, sr=info.samplerate, **stream_options)
    fmt, subtype = audio.check_output(output, sr=info.samplerate, channels=info.channels, subtype=info.subtype)
    with files.atomic_path(output) as tmp:
        with sf.SoundFile(input_path) as source, \
                sf.SoundFile(tmp, "w", samplerate=info.samplerate, channels=info.channels, format=fmt,
                             subtype=subtype) as sink:
            written = _stream_blocks(stream, source, sink, frames, callback)
        if written != frames or sf.info(tmp).frames != frames:
            raise OutputError(f"{output}: {written} of {frames} samples were written; nothing kept")
    return StreamSummary(frames=frames, sr=info.samplerate, channels=info.channels, latency=stream.latency,
                         seconds=time.perf_counter() - started)


def _stream_blocks(stream, source, sink, frames, callback):
    """Feed ``source`` through ``stream`` block by block into ``sink``; the samples written.

    Stream output ``latency + i`` is input sample ``i``'s: only those of ``0 <= i < frames`` are written.
    """
    first, end = stream.latency, stream.latency + frames
    position = written = read = 0
    block = np.zeros((stream.channels, stream.block_size), np.float32)

    def emit(out):
        nonlocal position, written
        low, high = max(first, position), min(end, position + out.shape[1])
        if high > low:
            keep = out[:, low - position:high - position]
            if not np.all(np.isfinite(keep)):
                raise AudioError("the stream produced non-finite samples; nothing was written")
            sink.write(np.ascontiguousarray(keep.T))
            written += high - low
        position += out.shape[1]

    while read < frames:
        data = source.read(stream.block_size, dtype="float32", always_2d=True)
        if not len(data):  # the file ended before the length the first pass counted
            raise AudioError(f"{source.name}: changed while it was read")
        block[:] = 0.0  # the last block is completed with silence
        block[:, :len(data)] = data.T
        read += len(data)
        emit(stream.process(block))
        if callback is not None:
            callback(min(read, frames), frames)
    emit(stream.flush())
    return written


def _check_samples(path):
    """The number of samples of ``path``, after one pass over it: finite, not empty, not silent."""
    frames, peak = 0, 0.0
    try:
        with sf.SoundFile(path) as f:
            for data in f.blocks(audio.READ_BLOCK, dtype="float32", always_2d=True):
                if not np.all(np.isfinite(data)):
                    raise AudioError(f"{path}: holds NaN or infinite samples")
                frames += len(data)
                peak = max(peak, float(np.max(np.abs(data))) if len(data) else 0.0)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{path}: not a readable audio file ({exc})") from None
    if frames == 0:
        raise AudioError(f"{path}: holds no audio")
    if peak == 0.0:
        raise AudioError(f"{path}: is silent")
    return frames
