"""Audio files and sample-rate/channel handling, on soundfile (libsndfile) and scipy.

Files are read as float32 of shape (channels, samples) and written atomically:
the data goes to a temporary file beside the target, which is renamed over it
only when complete, so an interrupted run never leaves half a file behind.
"""

import os
import re
import stat
import warnings
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import scipy.signal
import soundfile as sf

from . import limits
from .errors import AudioError, OutputError, ParameterError
from .files import atomic_path
from .limits import MAX_CHANNELS, MAX_SAMPLE_RATE
from .urls import local_path_hint
from .validation import as_audio, check_floating, check_int, check_layout, check_sample_rate

READ_BLOCK = 1 << 16  # frames decoded per read
WRITE_BLOCK = 1 << 14  # frames per write: libsndfile's Vorbis encoder crashes on one large write (48 s of stereo)
UNKNOWN_LENGTH = 2**63 - 1  # libsndfile's frame count for "not known" (SF_COUNT_MAX)
_SF_ERR_SYSTEM = 2  # libsndfile's error code for a failing system call (write, seek...)
# Terms of the polyphase ratio (filter taps = 20 x the larger); the common rates all fit
# (768000 -> 22050 is 147/5120), so only odd pairs are approximated.
MAX_POLYPHASE = 8192
# Loudness: the true-peak ceiling a matched output keeps to (EBU R128's -1 dBTP) and the block of
# its oversampled peak search.
TRUE_PEAK_CEILING_DB = -1.0
TRUE_PEAK_BLOCK = 1 << 16
LOUDNESS_MODES = ("lufs", "rms", "off")
# check_output's test signal: long enough to cross a block boundary of every block-coded subtype.
PROBE_FRAMES = 4096
_FORMAT_ALIASES = {"AIF": "AIFF", "OGA": "OGG", "OPUS": "OGG"}
_EXTENSION_SUBTYPES = {"OPUS": "OPUS"}  # an .opus file holds Opus, not the OGG container's default Vorbis
# Formats whose files cannot be read back without being told their rate and channels.
_UNREADABLE_FORMATS = {"RAW": "headerless RAW"}
# Subtypes that store every sample (no block rounding of the length), kept from the content's file.
_EXACT_SUBTYPES = {"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW", "VORBIS",
                   "OPUS", "MPEG_LAYER_III", "ALAC_16", "ALAC_20", "ALAC_24", "ALAC_32"}
# libsndfile's header log: a chunk of audio data (WAV and W64 "data", AIFF "SSND", AU "Data Size")
# with the size its header declares and, where the file is shorter, the size really there.
_DATA_CHUNK_LOG = re.compile(r"^\s*(?:data|SSND|Data Size)\s*:\s*(\d+)(?:\s*\(should be (\d+)\))?", re.MULTILINE)
_FILE_LENGTH_LOG = re.compile(r"^Length\s*:\s*(\d+)", re.MULTILINE)
# A frame count of a ds64 chunk (RF64) that the file's size does not hold.
_DS64_LOG = re.compile(r"Calculated frame count (\d+) does not match value from 'ds64' chunk of (\d+)")
# Data sizes a writer that could not seek back puts in the header for "unknown" (a WAV streamed to a pipe).
_UNKNOWN_DATA_SIZES = {0xFFFFFFFF, 0x7FFFFFFF}
# Rates and channel counts beyond which an encoder does not refuse but crashes the process
# (found by writing every format at rates up to 768 kHz and up to 1024 channels):
# libvorbis has no setup for rates above 200 kHz nor more than 255 channels.
_ENCODER_LIMITS = {("OGG", "VORBIS"): (200_000, 255)}


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

    The file is treated as hostile: it must be a regular file, its header's sample rate must
    lie in ``limits.MIN_SAMPLE_RATE..MAX_SAMPLE_RATE``, and it is decoded in blocks, so a
    header that lies about its length costs no more memory than the audio really there
    (decoding holds the blocks and their concatenation, at most ``limits.audio_memory_limit()``
    bytes together: the audio may take half of it, else an error).

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
        The file is missing, not a regular file, unreadable, empty, silent, has non-finite
        samples, an implausible sample rate, or more audio than this machine could work on.
    """
    path = os.fspath(path)
    _check_input_file(path)
    try:
        with sf.SoundFile(path) as f:
            file_sr = check_sample_rate(f.samplerate, name=f"{path}: sample rate", error=AudioError)
            check_complete(f, path)
            data = _read_blocks(f, path)
            info = AudioInfo(sr=file_sr, channels=int(f.channels), frames=int(data.shape[1]), format=f.format,
                             subtype=f.subtype)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{path}: not a readable audio file ({_reason(exc)})") from None
    y = as_audio(data, name=path, layout_known=True)
    if mono:
        y = to_mono(y)
    out_sr = info.sr
    if sr is not None:
        y = resample(y, orig_sr=info.sr, target_sr=sr)
        out_sr = int(sr)
    y = np.ascontiguousarray(y)
    return (y, out_sr, info) if return_info else (y, out_sr)


def _check_input_file(path):
    """An existing regular file: a FIFO or a device would block or never end."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise AudioError(f"{path}: no such file{local_path_hint(path)}") from None
    except OSError as exc:
        raise AudioError(f"{path}: cannot read it ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not stat.S_ISREG(mode):
        raise AudioError(f"{path}: not a regular file (a pipe or a device); give an audio file")


def _read_blocks(f, path):
    """Decode an open SoundFile in blocks into (channels, frames) float32, within the memory limit.

    The header's frame count is checked first (a file claiming hours is refused before it
    is read), and the frames really decoded are counted as they come (a header may lie).
    """
    limit = limits.audio_memory_limit() // 2  # the blocks and their concatenation coexist for a moment
    bytes_per_frame = 4 * f.channels
    # libsndfile reports an unknown length (a streamed FLAC's header says 0) as 2**63 - 1
    if 0 < f.frames < UNKNOWN_LENGTH and f.frames * bytes_per_frame > limit:
        raise AudioError(f"{path}: claims {f.frames / f.samplerate:.0f} s of {f.channels}-channel audio "
                         f"({limits.gigabytes(f.frames * bytes_per_frame)} decoded), more than this machine can "
                         f"work on (at most {limits.gigabytes(limit)}); split it into shorter files")
    blocks, frames = [], 0
    while True:
        block = f.read(READ_BLOCK, dtype="float32", always_2d=True)
        if not len(block):
            break
        frames += len(block)
        if frames * bytes_per_frame > limit:
            raise AudioError(f"{path}: holds more than {frames / f.samplerate:.0f} s of {f.channels}-channel audio, "
                             f"more than this machine can work on (at most {limits.gigabytes(limit)} decoded); "
                             f"split it into shorter files")
        blocks.append(block.T)
    if not blocks:
        return np.zeros((f.channels, 0), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(blocks, axis=1))


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
    extensions = audio_extensions()
    paths = sorted(os.path.join(root, name) for root, _, names in os.walk(directory) for name in names
                   if os.path.splitext(name)[1].lower() in extensions)
    if not paths:
        raise AudioError(f"{directory}: no audio files (looked for {', '.join(sorted(extensions))})")
    return paths


def audio_extensions():
    """The file extensions of the formats libsndfile reads, lower case with the dot (``.wav``, ``.flac``, ...)."""
    return {f".{ext.lower()}" for ext in sf.available_formats()} | {".aif", ".oga", ".opus"}


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

    The polyphase filter has ``20 * max(up, down)`` taps for the reduced ratio ``up/down``;
    ratios whose terms exceed :data:`MAX_POLYPHASE` (two coprime rates such as 22050 and
    44101 Hz) are resampled through the nearest ratio within it instead, so the filter stays
    below 1.3 MB for any pair of rates. The pitch moves by less than 0.01 cent and the
    length is still exactly ``ceil(samples * target_sr / orig_sr)``.

    Parameters
    ----------
    y : np.ndarray, shape (..., samples)
        Floating point (any byte order, memory order or strides).
    orig_sr, target_sr : int
        Both within ``limits.MIN_SAMPLE_RATE..MAX_SAMPLE_RATE``.
    length : int or None
        Trim or zero-pad the result to exactly this many samples.

    Returns
    -------
    np.ndarray, shape (..., new_samples), float32
    """
    orig_sr = check_sample_rate(orig_sr, name="orig_sr")
    target_sr = check_sample_rate(target_sr, name="target_sr")
    y = check_floating(np.asarray(y), "resample").astype(np.float32, copy=False)
    if orig_sr != target_sr:
        up, down = polyphase_ratio(orig_sr, target_sr)
        n = y.shape[-1]
        y = scipy.signal.resample_poly(y, up, down, axis=-1, window=("kaiser", 5.0)).astype(np.float32)
        if length is None:
            length = -(-n * target_sr // orig_sr)
    if length is not None:
        y = fix_length(y, length)
    return np.array(y, dtype=np.float32, order="C")  # always a new array of its own, as the README says


def polyphase_ratio(orig_sr, target_sr):
    """``(up, down)``: ``target_sr / orig_sr`` in lowest terms, or its nearest ratio with terms <= MAX_POLYPHASE."""
    ratio = Fraction(target_sr, orig_sr)
    if max(ratio.numerator, ratio.denominator) > MAX_POLYPHASE:
        # limit_denominator bounds the smaller term's partner: approximate the ratio that is < 1
        ratio = ratio.limit_denominator(MAX_POLYPHASE) if ratio < 1 else 1 / (1 / ratio).limit_denominator(MAX_POLYPHASE)
    return ratio.numerator, ratio.denominator


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
    fmt = _FORMAT_ALIASES.get(ext, ext)
    if fmt in _UNREADABLE_FORMATS:
        raise ParameterError(f"output {os.fspath(path)!r}: {_UNREADABLE_FORMATS[fmt]} files keep no sample rate "
                             f"or channel count and could not be read back; use e.g. .wav, .flac, .ogg")
    if fmt not in sf.available_formats():
        raise ParameterError(f"output: cannot tell the audio format from the extension of {os.fspath(path)!r} "
                             f"(use e.g. .wav, .flac, .ogg)")
    return fmt


def output_subtype(fmt, subtype=None):
    """The sample format to write: ``subtype`` if ``fmt`` holds it sample for sample, else the format's default.

    Block-coded subtypes (ADPCM, G.72x, GSM 6.10, DWVW...) round the length to their blocks
    or cannot be read back by every reader, so they give way to the default too.
    """
    if subtype in _EXACT_SUBTYPES and sf.check_format(fmt, subtype):
        return subtype
    return sf.default_subtype(fmt)


def check_output(path, *, sr, channels, subtype=None):
    """Fail now, before any work, if audio of this shape could not be written to ``path``.

    Resolves the format (from the extension) and the subtype, refuses what libsndfile's
    encoders are known to crash on, then writes a short test signal to a temporary file
    beside ``path`` with exactly these settings, reads it back and removes it: what the
    directory, the filesystem or the encoder would refuse at the end is found here.

    Parameters
    ----------
    path : str or os.PathLike
    sr : int
    channels : int
    subtype : str or None
        The wanted sample format (see :func:`output_subtype`).

    Returns
    -------
    (format, subtype) : tuple of str
        What :func:`save` will write.

    Raises
    ------
    ParameterError
        The format cannot hold this rate or channel count, or the extension names no format.
    OutputError
        The directory is missing or not writable, the name is too long, the disk is full.
    """
    path = os.fspath(path)
    fmt, subtype = _output_settings(path, sr, channels, subtype)
    probe = np.zeros((channels, PROBE_FRAMES), dtype=np.float32)
    probe[:] = 0.1 * np.sin(np.arange(PROBE_FRAMES) * 0.05)
    with atomic_path(path, commit=False) as tmp:
        _write_verified(tmp, probe, sr, fmt, subtype, path)
    return fmt, subtype


def save(path, y, sr, *, subtype=None):
    """Write audio atomically (temporary file + rename), in blocks, checked by reading it back.

    Parameters
    ----------
    path : str or os.PathLike
        Target; the format follows the extension (RAW, which keeps no rate or channel count,
        is refused).
    y : np.ndarray, shape (samples,) or (channels, samples)
        Finite floating-point samples (full scale 1.0); non-finite audio is never written, and
        integer PCM or a (samples, channels) layout is refused (see ``nstaudio.load``).
    sr : int
    subtype : str or None
        libsndfile sample format (``"PCM_16"``, ``"FLOAT"``...). None, one the format cannot
        hold, or a block-coded one (see :func:`output_subtype`) uses the format's default.

    Raises
    ------
    ParameterError, OutputError
        As :func:`check_output`.
    AudioError
        ``y`` is empty or holds NaN or infinite samples.
    """
    path = os.fspath(path)
    y = check_floating(np.asarray(y), path)
    y = y[np.newaxis, :] if y.ndim == 1 else y
    if y.ndim != 2 or y.size == 0:
        raise AudioError(f"{path}: refusing to write audio of shape {y.shape}")
    y = check_layout(y, path).astype(np.float32, copy=False)
    if not np.all(np.isfinite(y)):
        raise AudioError(f"{path}: refusing to write audio with NaN or infinite samples")
    fmt, subtype = _output_settings(path, sr, y.shape[0], subtype)
    with atomic_path(path) as tmp:
        _write_verified(tmp, y, sr, fmt, subtype, path)


def _output_settings(path, sr, channels, subtype):
    """Format and subtype for ``path``, refusing what libsndfile cannot write or is known to crash on."""
    fmt = output_format(path)
    sr = check_sample_rate(sr, name="sr")
    channels = check_int("channels", channels, minimum=1, maximum=MAX_CHANNELS)
    ext = os.path.splitext(path)[1].lstrip(".").upper()
    subtype = _EXTENSION_SUBTYPES.get(ext) or output_subtype(fmt, subtype)
    max_sr, max_channels = _ENCODER_LIMITS.get((fmt, subtype), (MAX_SAMPLE_RATE, MAX_CHANNELS))
    if sr > max_sr or channels > max_channels:
        raise ParameterError(f"output {path!r}: {fmt} ({subtype}) holds at most {max_channels} channels at "
                             f"{max_sr} Hz, this audio has {channels} at {sr} Hz; choose .wav or .flac")
    return fmt, subtype


def _write_verified(tmp, y, sr, fmt, subtype, path):
    """Write (channels, frames) ``y`` to ``tmp`` in blocks, then check the file reads back as written."""
    channels, frames = y.shape
    try:
        with sf.SoundFile(tmp, "w", samplerate=sr, channels=channels, format=fmt, subtype=subtype) as f:
            for start in range(0, frames, WRITE_BLOCK):  # libsndfile's Vorbis encoder crashes on one large write
                f.write(np.ascontiguousarray(y[:, start:start + WRITE_BLOCK].T))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        if getattr(exc, "code", None) == _SF_ERR_SYSTEM:  # the disk or the filesystem, not the format
            raise OutputError(f"{path}: writing failed ({_reason(exc)}; is the disk full?)") from None
        raise ParameterError(f"output {path!r}: libsndfile cannot write {channels}-channel {sr} Hz audio as "
                             f"{fmt} ({subtype}): {_reason(exc)}") from None
    try:
        written = sf.info(tmp)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise ParameterError(f"output {path!r}: the {fmt} ({subtype}) file libsndfile wrote does not read back "
                             f"({_reason(exc)}); choose .wav or .flac") from None
    if (written.frames, written.channels, written.samplerate) != (frames, channels, sr):
        raise ParameterError(f"output {path!r}: the {fmt} ({subtype}) file libsndfile wrote reads back as "
                             f"{written.frames} frames of {written.channels} channels at {written.samplerate} Hz, "
                             f"not {frames} of {channels} at {sr} Hz; choose .wav or .flac")


def match_loudness(y, reference, sr=None, *, mode="rms", ceiling_db=TRUE_PEAK_CEILING_DB):
    """Scale ``y`` to the loudness of ``reference``, then lower it if it would pass the ceiling.

    Parameters
    ----------
    y, reference : np.ndarray, shape (channels, samples)
    sr : int or None
        Their sample rate (needed for ``"lufs"``).
    mode : {"lufs", "rms"}
        ``"lufs"``: integrated loudness as ITU-R BS.1770-4 / EBU R128 measure it (K-weighting and
        gating, by pyloudnorm), then a true-peak ceiling of ``ceiling_db`` dBTP (the peak of the
        4x oversampled signal, BS.1770-4 Annex 2); a clip shorter than one 400 ms gating block,
        or silent, is matched by RMS. ``"rms"``: the RMS, then a sample peak of at most 0.99.
    ceiling_db : float
        The true-peak ceiling of ``"lufs"``.

    Returns
    -------
    np.ndarray, same shape as ``y``, float32
    """
    if mode == "lufs":
        gain = _loudness_gain(y, reference, sr)
        if gain is not None:
            peak = true_peak(y) * gain
            ceiling = 10.0 ** (ceiling_db / 20.0)
            if peak > ceiling:
                gain *= ceiling / peak
            return (y * np.float32(gain)).astype(np.float32)
    rms_y = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    rms_ref = float(np.sqrt(np.mean(np.square(reference, dtype=np.float64))))
    gain = rms_ref / rms_y if rms_y > 0 else 1.0
    peak = float(np.max(np.abs(y))) * gain
    if peak > 0.99:  # never clip: integer formats would wrap or saturate
        gain *= 0.99 / peak
    return (y * gain).astype(np.float32)


def integrated_loudness(y, sr):
    """Integrated loudness of ``y`` (channels, samples) in LUFS (ITU-R BS.1770-4, pyloudnorm's meter);
    None where it is shorter than one 400 ms block or silent (-inf)."""
    import pyloudnorm

    if y.shape[-1] < int(np.ceil(0.4 * sr)):
        return None
    with np.errstate(divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyloudnorm warns of clipping on input above full scale
        loudness = pyloudnorm.Meter(sr).integrated_loudness(np.asarray(y, dtype=np.float64).T)
    return float(loudness) if np.isfinite(loudness) else None


def _loudness_gain(y, reference, sr):
    """The gain that brings ``y`` to ``reference``'s integrated loudness, or None where either has none."""
    if sr is None:
        raise ParameterError("matching loudness in LUFS needs the sample rate")
    target, loudness = integrated_loudness(reference, sr), integrated_loudness(y, sr)
    if target is None or loudness is None:
        return None
    return 10.0 ** ((target - loudness) / 20.0)


def true_peak(y, *, block=TRUE_PEAK_BLOCK):
    """The true peak of ``y`` (channels, samples): the largest magnitude of the 4x oversampled signal
    (ITU-R BS.1770-4, Annex 2), in blocks so that memory stays that of a block.

    Returns
    -------
    float
        Linear (1.0 is 0 dBTP).
    """
    y = np.asarray(y, dtype=np.float32)
    peak, margin = 0.0, 32  # samples beside each block, so that its edges are filtered as inside
    for start in range(0, y.shape[-1], block):
        lo, hi = max(0, start - margin), min(y.shape[-1], start + block + margin)
        upsampled = scipy.signal.resample_poly(y[..., lo:hi].astype(np.float64), 4, 1, axis=-1)
        inner = upsampled[..., 4 * (start - lo):4 * (min(hi, start + block) - lo)]
        peak = max(peak, float(np.max(np.abs(inner))) if inner.size else 0.0)
    return max(peak, float(np.max(np.abs(y))) if y.size else 0.0)


def same_file(a, b):
    """True if paths ``a`` and ``b`` name the same file (existing or not)."""
    a, b = os.fspath(a), os.fspath(b)
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def check_audio_file(path):
    """Raise AudioError if ``path`` is not a readable audio file with a plausible rate (without decoding it)."""
    path = os.fspath(path)
    _check_input_file(path)
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{path}: not a readable audio file ({_reason(exc)})") from None
    check_sample_rate(info.samplerate, name=f"{path}: sample rate", error=AudioError)
    check_complete(info, path)
    return info


def check_complete(info, path):
    """Raise AudioError if the file's header declares more audio than the file holds.

    libsndfile reads a file cut short (a partial download or copy) as the audio that is
    there and says so only in its header log: the data chunk's declared size beside the size
    really there (WAV, AIFF, AU), a declared size past the file's end (W64), or an RF64 frame
    count the file does not hold. Stylizing such a file would give a partial output as if
    it were whole. Sizes that mean "unknown" (a WAV streamed to a pipe) are not a cut.

    Parameters
    ----------
    info : soundfile.SoundFile or soundfile's info
        Anything with libsndfile's header log as ``extra_info``.
    path : str
        For the message.
    """
    log = getattr(info, "extra_info", "") or ""
    length = _FILE_LENGTH_LOG.search(log)
    for match in _DATA_CHUNK_LOG.finditer(log):
        declared = int(match.group(1))
        present = int(match.group(2)) if match.group(2) is not None else None
        if declared in _UNKNOWN_DATA_SIZES:
            continue
        if (present is not None and present < declared) or (length and declared > int(length.group(1))):
            held = present if present is not None else int(length.group(1))
            raise AudioError(f"{path}: is cut short: its header declares {declared} bytes of audio, the file holds "
                             f"{held} (a partial download or copy?); give the whole file")
    ds64 = _DS64_LOG.search(log)
    if ds64 and int(ds64.group(1)) < int(ds64.group(2)):
        raise AudioError(f"{path}: is cut short: its header declares {ds64.group(2)} frames, the file holds "
                         f"{ds64.group(1)} (a partial download or copy?); give the whole file")


def _reason(exc):
    """libsndfile's own reason, without the path it repeats."""
    return getattr(exc, "error_string", None) or str(exc)
