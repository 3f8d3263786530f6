"""Small checks shared by the public functions; each raises a message that names the value."""

import numbers

import numpy as np

from .errors import AudioError, ParameterError
from .limits import MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

# Below -100 dBFS everywhere counts as silence: quieter than the dither of 16-bit audio.
SILENCE_THRESHOLD = 1e-5
# Seeds are what numpy.random.default_rng takes, kept to 64 bits so that they fit JSON and C integers.
MAX_SEED = 2**64 - 1


def check_int(name, value, *, minimum=None, maximum=None):
    """Return ``value`` as an int, or raise ParameterError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ParameterError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ParameterError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_sample_rate(value, *, name="sr", error=ParameterError):
    """Return a sample rate as an int, or raise ``error`` unless it lies in the plausible range.

    The range (``limits.MIN_SAMPLE_RATE`` to ``limits.MAX_SAMPLE_RATE``) holds every rate audio
    is recorded at; outside it a header is forged or broken, and resampling from it would ask
    for absurd memory.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(f"{name} must be an integer number of Hz, got {value!r}")
    value = int(value)
    if not MIN_SAMPLE_RATE <= value <= MAX_SAMPLE_RATE:
        raise error(f"{name} {value} Hz is outside the rates nstaudio works with ({MIN_SAMPLE_RATE} to "
                    f"{MAX_SAMPLE_RATE} Hz)")
    return value


def check_float(name, value, *, minimum=None, maximum=None, strict_minimum=False):
    """Return ``value`` as a finite float, or raise ParameterError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ParameterError(f"{name} must be finite, got {value}")
    if minimum is not None:
        if strict_minimum and value <= minimum:
            raise ParameterError(f"{name} must be > {minimum}, got {value}")
        if not strict_minimum and value < minimum:
            raise ParameterError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ParameterError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_choice(name, value, choices):
    """Return ``value`` if it is one of ``choices``, else raise ParameterError listing them."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ParameterError(f"{name} must be one of {listed}, got {value!r}")
    return value


def as_audio(y, name="audio", *, layout_known=False):
    """Return ``y`` as a float32 array of shape (channels, samples), checking it is usable.

    Parameters
    ----------
    y : np.ndarray, shape (samples,) or (channels, samples)
        Floating point, any memory order or strides (librosa's rule: integer PCM is refused,
        with how to convert it).
    name : str
        How the audio is called in error messages (for example a file name).
    layout_known : bool
        The array is (channels, samples) for sure (decoded from a file): no guessing whether
        it was handed over transposed.

    Returns
    -------
    np.ndarray, shape (channels, samples), float32
    """
    y = check_floating(np.asarray(y), name)
    if y.ndim == 1:
        y = y[np.newaxis, :]
    if y.ndim != 2:
        raise AudioError(f"{name}: audio must have shape (samples,) or (channels, samples), got {y.shape}")
    if y.shape[0] == 0 or y.shape[1] == 0:
        raise AudioError(f"{name}: audio is empty (shape {y.shape})")
    y = (y if layout_known else check_layout(y, name)).astype(np.float32, copy=False)
    if not np.all(np.isfinite(y)):
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    if np.max(np.abs(y)) < SILENCE_THRESHOLD:
        raise AudioError(f"{name}: audio is silent (every sample below -100 dBFS)")
    return y


def check_floating(y, name="audio"):
    """``y`` if it holds floating-point samples; AudioError saying how to convert integer PCM otherwise.

    Integer arrays (``soundfile.read(dtype="int16")``, ``scipy.io.wavfile.read``) hold PCM at
    their own full scale; taken as floats they would be 32767 times too loud.
    """
    kind = y.dtype.kind
    if kind == "f":
        return y
    if kind in "iu":
        bits = 8 * y.dtype.itemsize
        convert = (f"(y.astype(np.float32) - {2 ** (bits - 1)}) / {2 ** (bits - 1)}" if kind == "u"
                   else f"y.astype(np.float32) / {2 ** (bits - 1)}")
        raise AudioError(f"{name}: audio must be floating point (full scale 1.0), got {y.dtype} PCM; convert it "
                         f"with {convert}, or read files with nstaudio.load")
    raise AudioError(f"{name}: audio must be floating point, got dtype {y.dtype}")


def check_layout(y, name="audio"):
    """``y`` of shape (channels, samples) unless it is almost surely (samples, channels): AudioError then.

    Other libraries (soundfile, scipy.io.wavfile) give (samples, channels); nstaudio, like
    librosa, takes (channels, samples). More channels than samples, or more than any audio
    format holds, is a transposed array.
    """
    channels, samples = y.shape
    if channels > samples or channels > MAX_CHANNELS:
        raise AudioError(f"{name}: got an array of shape {y.shape}, which would be {channels} channels of {samples} "
                         f"samples; it looks like (samples, channels), as soundfile.read gives: pass y.T "
                         f"(nstaudio takes (channels, samples)), or read files with nstaudio.load")
    return y
