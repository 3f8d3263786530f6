"""How a stylized recording sounds, measured with statistics no method optimizes.

Two numbers per output, both level-invariant (every spectrogram is divided by its own mean
power before the logarithm, so a gain changes nothing):

- ``style_movement``: how far the output's texture statistics moved from the content's
  toward the style's. The statistics are the band means and the band covariance over time
  of a log-mel spectrogram (64 bands by default; the methods work on linear-frequency
  spectrograms and random filters, never on these). For each statistic ``s``,
  ``1 - ||s(out) - s(style)|| / ||s(content) - s(style)||``: 0 is the content's texture,
  1 the style's, negative is further from the style than the content was. The two are averaged.
- ``content_preservation``: the correlation over time of the output's and the content's
  onset-strength envelopes (the positive spectral flux of the log-mel spectrogram, the
  envelope beat trackers use): 1 keeps every onset where it was, 0 keeps none.

Both take audio at any sample rate (resampled to ``sr_measure``) and any channel count
(the output's channels are measured against the content's, the style mixed to mono).
"""

import numpy as np

from . import audio, spectral
from .errors import ParameterError
from .mel import mel_filterbank
from .validation import as_audio, check_sample_rate

SR_MEASURE = 22050
N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 64
# Power below this fraction of the clip's mean power is floored (-80 dB): silence between
# notes then reads as one constant instead of the noise floor of whatever made it.
FLOOR = 1e-8


def log_mel(y, sr=SR_MEASURE, *, n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=N_MELS):
    """Level-invariant log-mel spectrogram in dB: power over the clip's mean power, floored at -80 dB.

    Parameters
    ----------
    y : np.ndarray, shape (samples,)

    Returns
    -------
    np.ndarray, shape (n_mels, frames), float64
    """
    power = np.abs(spectral.stft(y, n_fft=n_fft, hop_length=hop_length)).astype(np.float64) ** 2
    mel = mel_filterbank(sr, n_fft, n_mels) @ power
    mean = mel.mean()
    if not mean > 0:
        raise ParameterError("cannot measure a silent signal")
    return 10.0 * np.log10(np.maximum(mel / mean, FLOOR))


def texture(y, sr=SR_MEASURE, **kwargs):
    """Band means (n_mels,) and band covariance over time (n_mels, n_mels) of :func:`log_mel`."""
    L = log_mel(y, sr, **kwargs)
    return L.mean(axis=1), np.cov(L)


def onset_envelope(y, sr=SR_MEASURE, **kwargs):
    """Onset strength per frame: the mean over bands of the rise of :func:`log_mel` since the previous frame.

    Returns
    -------
    np.ndarray, shape (frames - 1,)
    """
    L = log_mel(y, sr, **kwargs)
    return np.maximum(np.diff(L, axis=1), 0.0).mean(axis=0)


def _channels(y, sr, name):
    """``y`` at the measuring rate as (channels, samples) float32."""
    y = as_audio(y, name)
    return audio.resample(y, orig_sr=check_sample_rate(sr, name=f"{name} sr"), target_sr=SR_MEASURE)


def _paired(output, content, sr):
    """``output`` and ``content`` at the measuring rate, (channels, samples) each, with the same channels."""
    out = _channels(output, sr, "output")
    ref = _channels(content, sr, "content")
    if out.shape[0] != ref.shape[0]:
        raise ParameterError(f"output has {out.shape[0]} channels, content {ref.shape[0]}")
    return out, ref


def _movement(out, content, style):
    distance = np.linalg.norm(content - style)
    if distance == 0:
        return float("nan")  # content and style have the same statistic: no direction to move in
    return float(1.0 - np.linalg.norm(out - style) / distance)


def style_movement(output, content, style, sr, *, style_sr=None, return_parts=False):
    """How far ``output``'s texture moved from ``content``'s toward ``style``'s (0: not at all, 1: all the way).

    Parameters
    ----------
    output, content : np.ndarray, shape (samples,) or (channels, samples)
        The stylized audio and the content it came from, the same channels, at rate ``sr``.
    style : np.ndarray, shape (samples,) or (channels, samples)
        The style recording (mixed to mono), at ``style_sr`` (default ``sr``).
    return_parts : bool
        Also return the movement of the band means and of the band covariance.

    Returns
    -------
    movement : float
        Mean over the output's channels of the mean of the two parts.
    parts : dict, only if ``return_parts``
        ``{"means": float, "covariance": float}``, each a mean over channels.
    """
    out, ref = _paired(output, content, sr)
    target_mean, target_cov = texture(audio.to_mono(_channels(style, sr if style_sr is None else style_sr,
                                                               "style"))[0])
    means, covariances = [], []
    for channel_out, channel_ref in zip(out, ref):
        out_mean, out_cov = texture(channel_out)
        ref_mean, ref_cov = texture(channel_ref)
        means.append(_movement(out_mean, ref_mean, target_mean))
        covariances.append(_movement(out_cov, ref_cov, target_cov))
    parts = {"means": float(np.mean(means)), "covariance": float(np.mean(covariances))}
    movement = 0.5 * (parts["means"] + parts["covariance"])
    return (movement, parts) if return_parts else movement


def content_preservation(output, content, sr):
    """Correlation over time of the onset envelopes of ``output`` and ``content`` (1: every onset kept).

    Parameters
    ----------
    output, content : np.ndarray, shape (samples,) or (channels, samples)
        The same channels at rate ``sr``; the longer is cut to the shorter.

    Returns
    -------
    float
        Pearson correlation, mean over channels; NaN where an envelope is constant.
    """
    out, ref = _paired(output, content, sr)
    correlations = []
    for channel_out, channel_ref in zip(out, ref):
        a, b = onset_envelope(channel_out), onset_envelope(channel_ref)
        n = min(len(a), len(b))
        a, b = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
        denominator = np.sqrt(np.dot(a, a) * np.dot(b, b))
        correlations.append(float(np.dot(a, b) / denominator) if denominator > 0 else float("nan"))
    return float(np.mean(correlations))
