"""What the methods that run a trained model (`feedforward`, `gan`) share."""

import numpy as np

from ..errors import ParameterError
from ..nn.corpus import TRAINING_PEAK
from ..nn.model_file import Model as Network, describe_kind

# What the pipeline reports for a method that optimizes nothing.
NO_OPTIMIZATION = dict(loss=float("nan"), initial_loss=float("nan"), style_loss=float("nan"),
                       initial_style_loss=float("nan"), content_loss=float("nan"), iterations=0, evaluations=0,
                       converged=False, backend="numpy", gram_form="none", history=np.empty(0))


def model_settings(kind, method, trainer):
    """A ``Method.model_settings`` for models of ``kind``: their spectrogram settings, after checking the model.

    Parameters
    ----------
    kind : str
        The models' kind ("style", "gan").
    method : str
        The method's name, for messages.
    trainer : str
        The function that trains such models, for messages.
    """
    def settings(model):
        if model is None:
            raise ParameterError(f"the {method} method needs a {describe_kind(kind)} (model=, or --model)")
        if not isinstance(model, Network) or model.kind != kind:
            got = "a " + describe_kind(model.kind) if isinstance(model, Network) else type(model).__name__
            raise ParameterError(f"model must be a {describe_kind(kind)} (nstaudio.{trainer} or nstaudio.load_model),"
                                 f" got {got}")
        return model.spectrogram_settings
    return settings


def training_level(content_work):
    """The gain that brings the content to the level the networks train at (peak ``TRAINING_PEAK``).

    A network's input (log1p magnitudes, or dB) depends on the level; all channels take one
    gain, so their balance stays, and the pipeline undoes it at the end.
    """
    return TRAINING_PEAK / max(float(np.max(np.abs(content_work))), 1e-12)
