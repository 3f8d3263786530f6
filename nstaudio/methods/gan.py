"""The `gan` method (MelGAN-VC, Pasini 2019): a trained generator translates mel spectrograms.

The pipeline gives the content's STFT magnitudes at the model's settings (16 kHz, n_fft 1152,
hop 192 by default). The method turns them into MelGAN-VC's features, runs the generator over
crossfaded windows and takes its output back to STFT magnitudes
(:mod:`nstaudio.nn.gan_features`), which the pipeline's phase reconstruction turns into audio.
"""

import numpy as np

from ..errors import ParameterError
from ..nn.gan_features import MEL_INVERSION_ITERS, apply_generator, features, magnitude_from_features, mel_basis
from .registry import Method
from .trained import NO_OPTIMIZATION, model_settings, training_level


def gan(content, model, *, window=None, mel_iters=MEL_INVERSION_ITERS):
    """Stylize STFT magnitudes with a trained MelGAN-VC generator.

    Parameters
    ----------
    content : np.ndarray, shape (B, 1 + n_fft // 2, T)
        STFT magnitudes (non-negative) at the model's settings.
    model : Network
        A `gan` model (:func:`nstaudio.train_gan`).
    window : int or None
    mel_iters : int
        Steps from mel bands back to linear power.

    Returns
    -------
    np.ndarray, shape (B, 1 + n_fft // 2, T), float32, non-negative
    """
    sr, n_fft, _ = model.spectrogram_settings
    basis = mel_basis(sr, n_fft, model.arch.n_mels)
    content = np.asarray(content, dtype=np.float32)
    if content.ndim != 3 or content.shape[1] != basis.shape[1]:
        raise ParameterError(f"content spectrogram of shape {content.shape} does not fit a model with n_fft {n_fft}")
    unit = features(content, basis, n_fft)
    stylized = apply_generator(model.arch, model.params, model.state, unit, window=window)
    return magnitude_from_features(stylized, basis, n_fft, n_iter=mel_iters)


def _run(content, styles, options, model, callback):
    return gan(content, model), dict(NO_OPTIMIZATION, history=np.empty(0))


METHOD = Method(
    name="gan",
    summary="MelGAN-VC: a trained generator (--model from train-gan) on mel bands, then Griffin-Lim from the content's phase",
    needs="model", input="magnitude", output="magnitude", model_kind="gan",
    # Griffin-Lim from the content's phase: as good as PGHI's on its outputs, without the heap
    # (docs/decisions.md, "gan: crossfaded windows, 30 mel-inversion steps, the content's phase").
    hop_divisor=6, phase_iters=32, phase_init="content",
    run=_run, model_settings=model_settings("gan", "gan", "train_gan"), input_gain=training_level,
    # a lower bound: the mel inversion holds about six float32 copies of every channel's magnitudes
    memory=lambda options, channels, frames, style_frames: 4 * 6 * channels * frames * (options["n_fft"] // 2 + 1),
)
