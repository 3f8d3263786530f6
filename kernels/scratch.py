"""Work arrays the kernels reuse across evaluations, one set per thread, and the check of a given ``out``."""

import threading

import numpy as np


class Scratch:
    """Work arrays reused across evaluations.

    A fresh multi-MB array costs a page fault per 4 kB on first touch, a cost each evaluation
    would pay again (docs/decisions.md, "Scratch buffers"); the temporaries kept here never
    leave their module, so reusing them is safe.
    """

    def __init__(self):
        self._arrays = {}

    def get(self, name, shape, dtype):
        """A C-contiguous ``shape`` view of the buffer ``name``, which only ever grows.

        Growing instead of replacing matters for the fast FIR leaves: their im2col
        matrices differ in width by a frame or two and would otherwise be reallocated
        (and faulted in again) by every leaf of every evaluation.
        """
        dtype = np.dtype(dtype)
        size = int(np.prod(shape)) * dtype.itemsize
        buffer = self._arrays.get(name)
        if buffer is None or buffer.size < size:
            buffer = np.empty(size, dtype=np.uint8)
            self._arrays[name] = buffer
        return buffer[:size].view(dtype).reshape(shape)

    def section(self, prefix):
        """This scratch seen through names ``prefix/name``: one layer's buffers among a network's."""
        return _Section(self, prefix)

    def clear(self):
        """Drop every buffer."""
        self._arrays.clear()


class _Section:
    """A :class:`Scratch` seen through names ``prefix/name``."""

    def __init__(self, scratch, prefix):
        self._scratch, self._prefix = scratch, prefix

    def get(self, name, shape, dtype):
        return self._scratch.get(f"{self._prefix}/{name}", shape, dtype)


_per_thread = threading.local()


def thread_scratch(purpose="kernels"):
    """This thread's :class:`Scratch` for ``purpose``: calls from several threads never share a buffer.

    Parameters
    ----------
    purpose : str
        Separate users of scratch in one thread (the kernels here, a network pass's layers)
        get separate buffers.
    """
    scratches = _per_thread.__dict__
    if purpose not in scratches:
        scratches[purpose] = Scratch()
    return scratches[purpose]


def clear_scratch():
    """Free the work arrays this thread kept between evaluations."""
    for scratch in _per_thread.__dict__.values():
        scratch.clear()


def checked_output(out, shape, dtype, xp=np):
    """``out`` if given (checked), else a new array of module ``xp`` (numpy, or CuPy for the cuda backend).

    Parameters
    ----------
    out : array or None
        Where the caller wants the result written.
    shape : tuple of int
    dtype : dtype
    xp : module

    Returns
    -------
    array, shape ``shape``, dtype ``dtype``

    Raises
    ------
    ValueError
        ``out`` has another shape or dtype.
    """
    if out is None:
        return xp.empty(shape, dtype=dtype)
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(f"out has shape {out.shape} and dtype {out.dtype}, expected {shape} and {dtype}")
    return out
