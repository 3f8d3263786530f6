"""The fast CPU backend: numba loops for the memory-bound steps, BLAS for the GEMMs.

This module is what ``get_backend("cpu")`` returns: the backend interface
(:class:`.interface.Backend`) gathered from one module per topic:

- :mod:`.cpu_conv`: the im2col convolution and its adjoint, the filters' layout (with
  :mod:`.fast_fir`'s splits), the conv layers' windows;
- :mod:`.cpu_losses`: ReLU with the content residual, the Gram style losses, sums of
  squares, the arc-cosine kernel;
- :mod:`.cpu_phase`: fast Griffin-Lim's steps, PGHI, the magnitude projection;
- :mod:`.cpu_stream`: a live stream's framing, overlap-add, resampling and frame products;
- :mod:`.cpu_mel`: FISTA's mel inversion;
- :mod:`.scratch`: the work arrays reused across evaluations.
"""

import numpy as np

from . import threading_layer
from .cpu_conv import (
    ConvWeights,
    col2im_add,
    conv1d,
    conv1d_adjoint,
    im2col,
    overlap_windows_channel_major,
    prepare_weights,
    strided_windows_channel_major,
)
from .cpu_losses import (
    arccos_kernel,
    relu_content,
    relu_content_backward,
    style_loss_kernel,
    style_loss_nxn,
    sum_squares,
)
from .cpu_mel import mel_fista_start, mel_fista_steps
from .cpu_phase import (
    GriffinLimState,
    frame_windowed,
    griffin_lim_inverse,
    griffin_lim_phase_step,
    griffin_lim_project,
    griffin_lim_start,
    heap_integrate,
    heap_integrate_frame,
    keep_magnitude,
    overlap_add_normalized,
    phase_update,
    window_sum_weights,
)
from .cpu_stream import (
    frame_product,
    normalized_frames,
    overlap_add_frames,
    polyphase_outputs,
)
from .products import gram, matmul
from .scratch import Scratch, clear_scratch, thread_scratch

# A thread-safe numba threading layer unless the host chose one (threading_layer.py says why).
threading_layer.configure()

name = "cpu"
xp = np

__all__ = [
    "ConvWeights", "GriffinLimState", "Scratch", "arccos_kernel", "asarray", "clear_scratch", "col2im_add", "conv1d",
    "conv1d_adjoint", "frame_product", "frame_windowed", "gram", "griffin_lim_inverse", "griffin_lim_phase_step",
    "griffin_lim_project", "griffin_lim_start", "heap_integrate", "heap_integrate_frame", "im2col", "keep_magnitude",
    "matmul", "mel_fista_start", "mel_fista_steps", "name", "normalized_frames", "overlap_add_frames",
    "overlap_add_normalized", "overlap_windows_channel_major", "phase_update", "polyphase_outputs", "prepare_weights",
    "relu_content", "relu_content_backward", "strided_windows_channel_major", "style_loss_kernel", "style_loss_nxn",
    "sum_squares", "thread_scratch", "to_numpy", "window_sum_weights", "xp",
]


def asarray(x, dtype):
    """Move ``x`` to this backend as a contiguous array of ``dtype``."""
    return np.ascontiguousarray(x, dtype=dtype)


def to_numpy(x):
    """Return ``x`` as a numpy array."""
    return np.asarray(x)
