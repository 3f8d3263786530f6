"""nstaudio: neural audio style transfer with hand-written kernels and analytic gradients.

>>> import nstaudio as nst
>>> y, sr = nst.load("content.wav")
>>> s, s_sr = nst.load("style.wav")
>>> out = nst.stylize(y, s, sr, style_sr=s_sr)
>>> nst.save("out.wav", out, sr)
"""

from .api import StylizeInfo, stylize
from .audio import load, resample, save
from .errors import AudioError, BackendError, NstAudioError, ParameterError
from .features import random_filters
from .kernels import available_backends, get_backend
from .methods.optimize import optimize
from .spectral import griffin_lim, istft, stft

__version__ = "0.1.0"

__all__ = [
    "AudioError", "BackendError", "NstAudioError", "ParameterError", "StylizeInfo",
    "available_backends", "get_backend", "griffin_lim", "istft", "load", "optimize",
    "random_filters", "resample", "save", "stft", "stylize", "__version__",
]
