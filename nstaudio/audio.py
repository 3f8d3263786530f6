"""Audio files and sample-rate/channel handling, on soundfile (libsndfile) and scipy.

Files are read as float32 of shape (channels, samples) and written atomically:
the data goes to a temporary file beside the target, which is renamed over it
only when complete, so an interrupted run never leaves half a file behind.
"""

import math
import os
from dataclasses import dataclass

import numpy as np
import scipy.signal
import soundfile as sf

from .errors import AudioError, ParameterError
from .files import atomic_path
from .validation import as_audio, check_int


@dataclass(frozen=True)
class AudioInfo:
    """What :func:`load` learned about a file, so the output can match it.

    Attributes
    ----------
    sr : int
        Sample rate of the file.
    channels : int
    frames : int
        Samples per channel.
    format : str
        libsndfile major format, e.g. ``"WAV"``, ``"FLAC"``.
    subtype : str
        libsndfile sample format, e.g. ``"PCM_16"``, ``"FLOAT"``.
    """

    sr: int
    channels: int
    frames: int
    format: str
    subtype: str


def load(path, *, sr=None, mono=False, return_info=False):
    """Read an audio file.

    Parameters
    ----------
    path : str or os.PathLike
        Any format libsndfile reads (WAV, FLAC, OGG, AIFF, ...).
    sr : int or None
        Resample to this rate; None keeps the file's rate.
    mono : bool
        Average the channels into one.
    return_info : bool
        Also return the file's :class:`AudioInfo`.

    Returns
    -------
    y : np.ndarray, shape (channels, samples), float32
    sr : int
    info : AudioInfo, only if ``return_info``

    Raises
    ------
    AudioError
        The file is missing, unreadable, empty, silent or has non-finite samples.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AudioError(f"{path}: no such file")
    if os.path.isdir(path):
        raise AudioError(f"{path}: is a directory, not an audio file")
    try:
        data, file_sr = sf.read(path, dtype="float32", always_2d=True)
        raw = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{path}: not a readable audio file ({_reason(exc)})") from None
    info = AudioInfo(sr=int(file_sr), channels=int(raw.channels), frames=int(raw.frames),
                     format=raw.format, subtype=raw.subtype)
    y = as_audio(data.T, name=path)
    if mono:
        y = to_mono(y)
    out_sr = info.sr
    if sr is not None:
        y = resample(y, orig_sr=info.sr, target_sr=sr)
        out_sr = int(sr)
    y = np.ascontiguousarray(y)
    return (y, out_sr, info) if return_info else (y, out_sr)


def corpus_files(directory):
    """The audio files under a directory, recursively and sorted, by the extensions libsndfile reads.

    Raises
    ------
    AudioError
        No such directory, or no audio file in it.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise AudioError(f"{directory}: no such directory" if not os.path.exists(directory)
                         else f"{directory}: not a directory")
    extensions = {f".{ext.lower()}" for ext in sf.available_formats()} | {".aif", ".oga", ".opus"}
    paths = sorted(os.path.join(root, name) for root, _, names in os.walk(directory) for name in names
                   if os.path.splitext(name)[1].lower() in extensions)
    if not paths:
        raise AudioError(f"{directory}: no audio files (looked for {', '.join(sorted(extensions))})")
    return paths


def load_corpus(directory, *, sr=None, mono=True, callback=None):
    """Read every audio file under a directory (:func:`corpus_files`).

    Files are recognised by the extensions libsndfile reads (wav, flac, ogg, aiff, mp3...);
    other files are ignored. A recognised file that cannot be read is an error naming it.

    Parameters
    ----------
    directory : str or os.PathLike
    sr : int or None
        Resample every file to this rate; None keeps each file's rate.
    mono : bool
        Mix each file to one channel.
    callback : callable or None
        ``callback(index, count, path)`` before each file is read.

    Returns
    -------
    clips : list of np.ndarray, each shape (channels, samples), float32
    rates : list of int
    paths : list of str

    Raises
    ------
    AudioError
        No such directory, no audio file in it, or an unreadable/empty/silent file.
    """
    paths = corpus_files(directory)
    clips, rates = [], []
    for i, path in enumerate(paths):
        if callback is not None:
            callback(i, len(paths), path)
        y, rate = load(path, sr=sr, mono=mono)
        clips.append(y)
        rates.append(rate)
    return clips, rates, paths


def to_mono(y):
    """Average channels: (channels, samples) -> (1, samples)."""
    y = np.asarray(y)
    if y.ndim == 1:
        return y[np.newaxis, :]
    return y.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)


def resample(y, *, orig_sr, target_sr, length=None):
    """Resample along the last axis with scipy's polyphase filter (Kaiser window).

    Parameters
    ----------
    y : np.ndarray, shape (..., samples)
    orig_sr, target_sr : int
    length : int or None
        Trim or zero-pad the result to exactly this many samples.

    Returns
    -------
    np.ndarray, shape (..., new_samples), float32
    """
    orig_sr = check_int("orig_sr", orig_sr, minimum=1)
    target_sr = check_int("target_sr", target_sr, minimum=1)
    y = np.asarray(y, dtype=np.float32)
    if orig_sr != target_sr:
        g = math.gcd(orig_sr, target_sr)
        y = scipy.signal.resample_poly(y, target_sr // g, orig_sr // g, axis=-1,
                                       window=("kaiser", 5.0)).astype(np.float32)
    if length is not None:
        y = fix_length(y, length)
    return y


def fix_length(y, length):
    """Trim or zero-pad the last axis to ``length`` samples."""
    n = y.shape[-1]
    if n >= length:
        return y[..., :length]
    pad = [(0, 0)] * (y.ndim - 1) + [(0, length - n)]
    return np.pad(y, pad)


def output_format(path):
    """The libsndfile major format implied by ``path``'s extension, or ParameterError."""
    ext = os.path.splitext(os.fspath(path))[1].lstrip(".").upper()
    aliases = {"AIF": "AIFF", "OGA": "OGG", "OPUS": "OGG"}
    fmt = aliases.get(ext, ext)
    if fmt not in sf.available_formats():
        raise ParameterError(f"output: cannot tell the audio format from the extension of {os.fspath(path)!r} "
                             f"(use e.g. .wav, .flac, .ogg)")
    return fmt


def save(path, y, sr, *, subtype=None):
    """Write audio atomically (temporary file + rename).

    Parameters
    ----------
    path : str or os.PathLike
        Target; the format follows the extension.
    y : np.ndarray, shape (samples,) or (channels, samples)
    sr : int
    subtype : str or None
        libsndfile sample format (``"PCM_16"``, ``"FLOAT"``...). None, or one the
        format cannot hold, uses the format's default.
    """
    path = os.fspath(path)
    sr = check_int("sr", sr, minimum=1)
    fmt = output_format(path)
    if subtype is not None and not sf.check_format(fmt, subtype):
        subtype = None
    y = np.asarray(y, dtype=np.float32)
    data = y.T if y.ndim == 2 else y
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ParameterError(f"output: directory {directory!r} does not exist")
    with atomic_path(path) as tmp:
        sf.write(tmp, data, sr, format=fmt, subtype=subtype)


def match_loudness(y, reference):
    """Scale ``y`` to the RMS of ``reference``, then lower it if that would clip.

    Parameters
    ----------
    y, reference : np.ndarray, shape (channels, samples)

    Returns
    -------
    np.ndarray, same shape as ``y``, float32, peak at most 0.99
    """
    rms_y = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    rms_ref = float(np.sqrt(np.mean(np.square(reference, dtype=np.float64))))
    gain = rms_ref / rms_y if rms_y > 0 else 1.0
    peak = float(np.max(np.abs(y))) * gain
    if peak > 0.99:  # never clip: integer formats would wrap or saturate
        gain *= 0.99 / peak
    return (y * gain).astype(np.float32)


def same_file(a, b):
    """True if paths ``a`` and ``b`` name the same file (existing or not)."""
    a, b = os.fspath(a), os.fspath(b)
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def check_audio_file(path):
    """Raise AudioError if ``path`` is not a readable audio file (without decoding it all)."""
    try:
        sf.info(os.fspath(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{os.fspath(path)}: not a readable audio file ({_reason(exc)})") from None


def _reason(exc):
    """libsndfile's own reason, without the path it repeats."""
    return getattr(exc, "error_string", None) or str(exc)
