"""Training the loss network: an autoencoder that reconstructs log-magnitude spectrograms.

Arrays in, parameters out: corpus loading and checkpoint files belong to the caller.
"""

import numpy as np

from ..errors import ParameterError
from ..validation import check_int
from .autoencoder import Autoencoder
from .losses import mse
from .optim import Adam


def random_crops(spectrograms, count, length, rng):
    """``count`` random time crops of ``length`` frames from a list of spectrograms.

    Parameters
    ----------
    spectrograms : list of np.ndarray, each shape (C, T_i) with T_i >= length
    count, length : int
    rng : numpy.random.Generator

    Returns
    -------
    np.ndarray, shape (count, C, length)
    """
    usable = [s for s in spectrograms if s.shape[1] >= length]
    if not usable:
        raise ParameterError(f"no spectrogram has the {length} frames a crop needs")
    frames = np.array([s.shape[1] - length + 1 for s in usable], dtype=np.float64)
    picks = rng.choice(len(usable), size=count, p=frames / frames.sum())  # uniform over all crop positions
    return np.stack([usable[i][:, (start := rng.integers(usable[i].shape[1] - length + 1)):start + length]
                     for i in picks])


def train_autoencoder(spectrograms, arch, *, steps, batch_size=24, crop=64, learning_rate=1e-3,
                      weight_decay=1e-4, seed=0, params=None, state=None, callback=None):
    """Train the autoencoder to reconstruct spectrogram crops (MSE, Adam with weight decay).

    Parameters
    ----------
    spectrograms : list of np.ndarray, each shape (arch.n_bins, T_i)
        log1p-magnitude spectrograms of the corpus.
    arch : Architecture
    steps : int
        Optimizer steps (one mini-batch each).
    batch_size : int
        Crops per step (24 in the paper).
    crop : int
        Frames per crop; a multiple of ``arch.stride ** 4``.
    learning_rate, weight_decay : float
        Adam's (1e-3 and 1e-4 in the paper).
    seed : int
        Seeds the initial weights and the crops: the same seed reproduces the run.
    params, state : dict or None
        Start from these instead of a fresh initialisation.
    callback : callable or None
        ``callback(step, loss)`` after each step.

    Returns
    -------
    params, state : dict
    history : np.ndarray, shape (steps,)
        Training loss per step.
    """
    steps = check_int("steps", steps, minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    net = Autoencoder(arch)
    crop = check_int("crop", crop, minimum=net.multiple)
    if crop % net.multiple:
        raise ParameterError(f"crop must be a multiple of {net.multiple}, got {crop}")
    rng = np.random.default_rng(seed)
    if params is None:
        params, state = net.init_params(seed=int(rng.integers(2**31)))
    optimizers = {name: Adam(lr=learning_rate, weight_decay=weight_decay) for name in params}
    net.train(True)
    history = np.empty(steps)
    for step in range(steps):
        x = random_crops(spectrograms, batch_size, crop, rng).astype(np.float32)
        y, _, caches = net.forward(params, state, x)
        loss, dy = mse(y, x)
        _, grads = net.backward(params, caches, dy)
        for name, g in grads.items():
            optimizers[name].step(params[name], g)
        history[step] = loss
        if callback is not None:
            callback(step + 1, loss)
    net.train(False)
    return params, state, history
