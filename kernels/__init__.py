"""Backend dispatch: the one place that chooses where the numbers are crunched.

``get_backend(device)`` returns a module with the same functions for every backend: the
protocol :class:`.interface.Backend` lists them. Optional dependencies are probed once, when
first asked for (as in sigpy's ``config``). The kernels are a leaf: they import nothing of
nstaudio but ``errors``, ``limits`` and ``validation``.
"""

import functools
import importlib

import numpy as np

from nstaudio.errors import BackendError
from nstaudio.validation import check_choice

DEVICES = ("auto", "numpy", "cpu", "cuda")


@functools.lru_cache(maxsize=None)
def cuda_status():
    """Why the cuda backend is unavailable, or None if it can be used."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install 'nstaudio[gpu]')"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "no CUDA GPU is visible"
    except Exception as exc:  # cupy raises its own runtime errors when no driver is present
        return f"no usable CUDA GPU ({exc.__class__.__name__}: {exc})"
    import numba
    from numba import cuda

    if numba.config.ENABLE_CUDASIM:
        return "NUMBA_ENABLE_CUDASIM is set: numba.cuda kernels would run on the CPU, not on CuPy's arrays"
    if not cuda.is_available():
        return "numba.cuda cannot reach the GPU (driver or CUDA toolkit missing)"
    return None


def available_backends():
    """Names of the backends that work on this machine, fastest first."""
    names = ["cpu", "numpy"]
    if cuda_status() is None:
        names.insert(0, "cuda")
    return names


def get_backend(device="auto"):
    """The backend module for ``device``.

    Parameters
    ----------
    device : {"auto", "numpy", "cpu", "cuda"}
        ``"auto"`` picks the fastest available backend.

    Raises
    ------
    BackendError
        The requested backend cannot run here; the message says what is missing.
    """
    check_choice("device", device, DEVICES)
    if device == "auto":
        device = available_backends()[0]
    if device == "cuda":
        reason = cuda_status()
        if reason is not None:
            raise BackendError(f"device 'cuda' is unavailable: {reason}")
    module = {"numpy": "numpy_backend", "cpu": "cpu", "cuda": "cuda"}[device]
    return importlib.import_module(f"{__name__}.{module}")


def array_module(x):
    """numpy, or CuPy for a CuPy array: the module whose functions take and return ``x``'s kind of
    array (as sigpy's ``get_array_module``), for code that works on either."""
    if type(x).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    return np
