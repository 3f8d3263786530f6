"""Trained models, their public names in one import: the model file and the trainers.

Each lives in :mod:`nstaudio.nn`: the model file (:mod:`~nstaudio.nn.model_file`), the training
data (:mod:`~nstaudio.nn.corpus`), the resumable loop (:mod:`~nstaudio.nn.training`) and one
trainer per network (:mod:`~nstaudio.nn.trainers`).
"""

from .nn.corpus import TRAINING_PEAK
from .nn.model_file import (
    KINDS,
    Model,
    default_lossnet,
    describe_kind,
    load_model,
    save_model,
)
from .nn.trainers.gan import check_train_gan, train_gan
from .nn.trainers.lossnet import LOSSNET_CHANNELS, check_train_lossnet, train_lossnet
from .nn.trainers.style import check_train_style, train_style

Network = Model  # the model container's public name (nstaudio.Network)

__all__ = [
    "KINDS", "LOSSNET_CHANNELS", "Model", "Network", "TRAINING_PEAK", "check_train_gan", "check_train_lossnet",
    "check_train_style", "default_lossnet", "describe_kind", "load_model", "save_model", "train_gan", "train_lossnet",
    "train_style",
]
