"""MelGAN-VC's view of a spectrogram (Pasini 2019): its mel features, the way back to STFT
magnitudes, and its generator run over a recording of any length.

The features are the band-mean power of 192 mel bands, in dB from -100 to 0, scaled to
[-1, 1]; the generator runs over overlapping windows blended with a crossfade (any length,
no seams where MelGAN-VC glued chunks end to end); its output goes back to linear-frequency
power by non-negative least squares (:class:`nstaudio.mel.MelInversion`). The ``gan`` method,
its trainer and the stream share these.
"""

import numpy as np

from .. import mel
from ..errors import ParameterError
from ..pieces import finish
from ..validation import check_int
from .melgan import Generator

# Gradient steps from mel bands back to linear power: 30 keep most of the gain at a small part of a
# run's time (docs/decisions.md, "gan: crossfaded windows, 30 mel-inversion steps, the content's phase").
MEL_INVERSION_ITERS = 30
# Windows (in the generator's trained length) run together: memory stays bounded for any length.
WINDOWS_PER_PASS = 256


def magnitude_scale(n_fft):
    """What a full-scale sinusoid's peak STFT magnitude is with a Hann window of ``n_fft``: features in dB re it."""
    return n_fft / 4.0


def mel_basis(sr, n_fft, n_mels):
    """The band-mean mel filterbank of the features, shape (n_mels, 1 + n_fft // 2)."""
    return mel.band_average(mel.mel_filterbank(sr, n_fft, n_mels))


def features(magnitude, basis, n_fft):
    """MelGAN-VC's features of STFT magnitudes.

    Parameters
    ----------
    magnitude : np.ndarray, shape (..., 1 + n_fft // 2, T)
    basis : np.ndarray, shape (n_mels, 1 + n_fft // 2), from :func:`mel_basis`

    Returns
    -------
    np.ndarray, shape (..., n_mels, T), float32 in [-1, 1]
    """
    power = (np.asarray(magnitude, dtype=np.float64) / magnitude_scale(n_fft)) ** 2
    return mel.power_to_unit(np.matmul(basis, power))


def magnitude_from_features(unit, basis, n_fft, *, n_iter=MEL_INVERSION_ITERS, inversion=None, backend=None):
    """Linear-frequency STFT magnitudes (..., bins, T) whose features are ``unit`` (..., n_mels, T).

    ``inversion``: :class:`nstaudio.mel.MelInversion` of ``basis``, prepared before (a stream's, which
    inverts a window's frames at a time), run on ``backend``'s kernels (None: the numpy reference)."""
    return finish(magnitude_in_pieces(unit, basis, n_fft, n_iter=n_iter, inversion=inversion, backend=backend))


def magnitude_in_pieces(unit, basis, n_fft, *, n_iter=MEL_INVERSION_ITERS, inversion=None, backend=None, steps=None):
    """:func:`magnitude_from_features` as a generator that stops after every ``steps`` steps of the mel
    inversion (None: never; a stream's pieces) and returns the magnitudes, to the bit."""
    inversion = mel.MelInversion(basis) if inversion is None else inversion
    power = yield from inversion.power_in_pieces(mel.unit_to_power(unit), n_iter=n_iter, backend=backend, steps=steps)
    return np.sqrt(power) * np.float32(magnitude_scale(n_fft))


def crossfade_windows(length, window):
    """Start frames and weights of half-overlapping windows covering ``length`` frames.

    The weight is a periodic Hann window (``sin^2``), whose copies at half-window hops sum to 1
    everywhere, so every frame is a convex blend of two windows' outputs. The first and last
    half windows run over the ends (padded by the caller).

    Returns
    -------
    starts : np.ndarray of int
        Starts in a signal padded by ``window // 2`` frames at the front.
    weight : np.ndarray, shape (window,)
    """
    hop = window // 2
    starts = np.arange(0, length + hop, hop)
    weight = np.sin(np.pi * np.arange(window) / window) ** 2
    return starts, weight


def apply_generator(arch, params, state, unit, *, window=None, crossfade=True):
    """Run the generator over features of any length.

    Parameters
    ----------
    arch : GanArchitecture
    params, state : dict
    unit : np.ndarray, shape (B, n_mels, T)
    window : int or None
        Frames per window, a multiple of 4 (default: the length the generator was trained on).
    crossfade : bool
        Half-overlapping windows blended with :func:`crossfade_windows`; False glues
        non-overlapping windows end to end (MelGAN-VC's assembly, kept for measuring seams).

    Returns
    -------
    np.ndarray, shape (B, n_mels, T), float32
    """
    window = arch.frames if window is None else check_int("window", window, minimum=4)
    if window % 4:
        raise ParameterError(f"window must be a multiple of 4 frames, got {window}")
    gen = Generator(arch)
    B, M, T = unit.shape
    hop = window // 2 if crossfade else window
    if crossfade:
        starts, weight = crossfade_windows(T, window)
        front = hop
    else:
        starts, weight, front = np.arange(0, T, window), np.ones(window), 0
    padded_length = starts[-1] + window
    padded = np.pad(unit, ((0, 0), (0, 0), (front, padded_length - front - T)), mode="edge")
    out = np.zeros((B, M, padded_length), dtype=np.float64)
    weight = weight.astype(np.float32)
    for first in range(0, len(starts), WINDOWS_PER_PASS):
        batch = starts[first:first + WINDOWS_PER_PASS]
        x = np.stack([padded[:, :, s:s + window] for s in batch], axis=1).reshape(-1, M, window)
        y = gen.forward(params, state, x.astype(np.float32), training=False)[0].reshape(B, len(batch), M, window)
        for i, s in enumerate(batch):
            out[:, :, s:s + window] += y[:, i] * weight
    return out[:, :, front:front + T].astype(np.float32)
