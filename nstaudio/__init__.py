"""nstaudio: neural audio style transfer with hand-written kernels and analytic gradients.

>>> import nstaudio as nst
>>> y, sr = nst.load("content.wav")
>>> s, s_sr = nst.load("style.wav")
>>> out = nst.stylize(y, s, sr, style_sr=s_sr)
>>> nst.save("out.wav", out, sr)
"""

from . import _source_tree

_source_tree.install()  # before anything imports nstaudio.kernels: a checkout maps kernels/ and cli/ in

from .api import StyleAnalysis, StylizeInfo, analyse_style, stylize
from .audio import load, load_corpus, resample, save
from .batching import batch
from .errors import AudioError, BackendError, NstAudioError, NumericalError, OutputError, ParameterError
from .features import random_filters
from .kernels import available_backends, get_backend
from .methods.optimize import optimize
from .methods.timedomain import timedomain
from .models import (
                     Model,
                     Network,
                     check_train_gan,
                     check_train_lossnet,
                     check_train_style,
                     default_lossnet,
                     load_model,
                     save_model,
                     train_gan,
                     train_lossnet,
                     train_style,
)
from .nn.checkpoint import CheckpointError
from .spectral import griffin_lim, istft, pghi, stft
from .streaming import Stream
from .version import __version__  # noqa: E402 (after the source-tree finder)

__all__ = [
    "AudioError", "BackendError", "CheckpointError", "Model", "Network", "NstAudioError", "NumericalError",
    "OutputError", "ParameterError", "Stream", "StyleAnalysis", "StylizeInfo", "analyse_style", "available_backends", "batch", "check_train_gan", "check_train_lossnet", "check_train_style",
    "default_lossnet", "get_backend", "griffin_lim", "istft", "load", "load_corpus",
    "load_model", "optimize", "pghi", "random_filters", "resample", "save", "save_model", "stft", "stylize",
    "timedomain", "train_gan", "train_lossnet", "train_style", "__version__",
]
