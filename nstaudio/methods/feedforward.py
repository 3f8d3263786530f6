"""The `feedforward` method (AutoStyle, Ramani et al.): one pass of a trained transformation network."""

import numpy as np

from ..errors import ParameterError
from ..nn.context import CONTEXT_FRAMES
from ..nn.inference import apply_network
from .registry import Method
from .trained import NO_OPTIMIZATION, model_settings, training_level


def feedforward(content, model, *, chunk=1024, overlap=CONTEXT_FRAMES):
    """Stylize log-magnitude spectrograms with a trained transformation network.

    Parameters
    ----------
    content : np.ndarray, shape (B, C, T)
        log1p-magnitude spectrograms, one per channel, with the spectrogram settings the
        model was trained on.
    model : tuple (Architecture, params, state)
        As returned by :func:`nstaudio.nn.checkpoint.load_checkpoint` (without the meta).
    chunk, overlap : int
        Frames per chunk and context per side: memory stays bounded for any length.

    Returns
    -------
    np.ndarray, shape (B, C, T), float32, non-negative
    """
    arch, params, state = model
    content = np.asarray(content, dtype=np.float32)
    if content.ndim != 3 or content.shape[1] != arch.n_bins:
        raise ParameterError(f"content spectrogram of shape {content.shape} does not fit a model of "
                             f"{arch.n_bins} bins")
    # a log1p magnitude is never negative; the network's last layer is linear
    return np.maximum(apply_network(arch, params, state, content, chunk=chunk, overlap=overlap), 0)


def _run(content, styles, options, model, callback):
    return feedforward(content, model.triple), dict(NO_OPTIMIZATION, history=np.empty(0))


METHOD = Method(
    name="feedforward",
    summary="AutoStyle: one pass of a trained style model (--model), then Griffin-Lim from the content's phase",
    needs="model", input="log_spectrogram", output="log_spectrogram", model_kind="style",
    # Few Griffin-Lim iterations from the content's phase: the network's output is close to a signal's
    # (docs/decisions.md, "feedforward: Griffin-Lim from the content's phase, 32 iterations").
    hop_divisor=4, phase_iters=32, phase_init="content",
    run=_run, model_settings=model_settings("style", "feedforward", "train_style"), input_gain=training_level,
)
