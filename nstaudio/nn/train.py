"""Training the loss network: an autoencoder that reconstructs log-magnitude spectrograms.

Arrays in, parameters out: corpus loading and checkpoint files belong to the caller.
"""

import numpy as np

from ..errors import ParameterError
from ..validation import check_int
from .autoencoder import Autoencoder
from .losses import mse
from .optim import Adam


def _update(optimizers, params, grads):
    """One Adam step for every layer that received gradients (each layer has its own optimizer state)."""
    for name, g in grads.items():
        optimizers[name].step(params[name], g)


def _copy_tree(tree):
    """Copy of a {layer: {name: array}} parameter or state tree."""
    return {layer: {name: a.copy() for name, a in values.items()} for layer, values in tree.items()}


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
        _update(optimizers, params, grads)
        history[step] = loss
        if callback is not None:
            callback(step + 1, loss)
    net.train(False)
    return params, state, history


def style_targets(net, params, state, style, layers):
    """Gram matrices of a style spectrogram at the given encoder layers of the frozen loss network.

    Parameters
    ----------
    net : Autoencoder
        The loss network (switched to eval mode here).
    style : np.ndarray, shape (n_bins, T), T a multiple of ``net.multiple``
    layers : sequence of str

    Returns
    -------
    dict of str -> np.ndarray, each shape (channels, channels)
    """
    from .layers import gram

    net.train(False)
    _, acts, _ = net.forward(params, state, style[None].astype(np.float32), stop_after=max(layers))
    return {name: gram(acts[name])[0][0] for name in layers}


def train_transformer(content, style, loss_net, *, steps, alpha=100.0, beta=1e4, style_layers=("enc0", "enc1", "enc2"),
                      content_layer="enc3", batch_size=24, crop=64, learning_rate=1e-3, weight_decay=1e-4, seed=0,
                      callback=None):
    """Train a transformation network for one style against a frozen loss network (AutoStyle).

    ``loss = alpha * MSE(content features) + beta * sum_l MSE(Gram_l(T(x)), Gram_l(style))``, with
    content features the loss network's ``content_layer`` activations and style features the
    Gram matrices of its ``style_layers``. The transformation network starts from the loss
    network's weights.

    Parameters
    ----------
    content : list of np.ndarray, each shape (n_bins, T_i)
        Content corpus (log1p-magnitude spectrograms).
    style : np.ndarray, shape (n_bins, Ts)
        The style clip; cropped to a multiple of the network's stride product.
    loss_net : tuple (Architecture, params, state)
        The trained loss network; never modified.
    steps, batch_size, crop, learning_rate, weight_decay, seed, callback
        As in :func:`train_autoencoder`.
    alpha, beta : float
        Content and style weights (paper: 100 and 1e4).

    Returns
    -------
    params, state : dict
        The transformation network.
    history : np.ndarray, shape (steps,)
    """
    from .layers import gram, gram_backward

    arch, loss_params, loss_state = loss_net
    steps = check_int("steps", steps, minimum=0)
    loss_model, model = Autoencoder(arch), Autoencoder(arch)
    usable = style.shape[1] - style.shape[1] % loss_model.multiple
    if usable < loss_model.multiple:
        raise ParameterError(f"style has {style.shape[1]} frames, fewer than the {loss_model.multiple} the network needs")
    targets = style_targets(loss_model, loss_params, loss_state, style[:, :usable], style_layers)
    deepest = max((content_layer, *style_layers))  # encoder names sort by depth: enc0 < ... < enc3
    params, state = _copy_tree(loss_params), _copy_tree(loss_state)
    optimizers = {name: Adam(lr=learning_rate, weight_decay=weight_decay) for name in params}
    rng = np.random.default_rng(seed)
    model.train(True)
    loss_model.train(False)
    history = np.empty(steps)
    for step in range(steps):
        x = random_crops(content, batch_size, crop, rng).astype(np.float32)
        _, x_acts, _ = loss_model.forward(loss_params, loss_state, x, stop_after=content_layer)
        y, _, caches = model.forward(params, state, x)
        _, y_acts, loss_caches = loss_model.forward(loss_params, loss_state, y, stop_after=deepest)
        content_value, d_content = mse(y_acts[content_layer], x_acts[content_layer])
        total = alpha * content_value
        d_acts = {content_layer: alpha * d_content}
        for name in style_layers:
            G, cache = gram(y_acts[name])
            value, dG = mse(G, np.broadcast_to(targets[name], G.shape))
            total += beta * value
            d_acts[name] = d_acts.get(name, 0) + beta * gram_backward(cache, dG).astype(np.float32)
        dy, _ = loss_model.backward(loss_params, loss_caches, None, d_acts)  # the loss network stays frozen
        _, grads = model.backward(params, caches, dy)
        _update(optimizers, params, grads)
        history[step] = total
        if callback is not None:
            callback(step + 1, total)
    model.train(False)
    return params, state, history


def apply_network(arch, params, state, X, *, chunk=1024, overlap=32):
    """Run a trained network over a spectrogram of any length, in overlapping chunks.

    Parameters
    ----------
    arch : Architecture
    params, state : dict
    X : np.ndarray, shape (B, n_bins, T)
    chunk : int
        Frames per chunk (rounded up to a multiple of the stride product); memory is bounded by it.
    overlap : int
        Frames of context on each side of a chunk, discarded from its output (rounded up to
        a multiple of the stride product); chunks agree with a single pass when it covers
        the network's receptive field.

    Returns
    -------
    np.ndarray, shape (B, n_bins, T), float32
    """
    net = Autoencoder(arch)
    net.train(False)
    m = net.multiple
    # Chunks start at multiples of the stride product, so the strided network sees every
    # chunk in the same phase as the whole input would be seen.
    overlap = -(-overlap // m) * m
    chunk = -(-max(chunk, 2 * overlap + m) // m) * m
    step = chunk - 2 * overlap
    B, C, T = X.shape
    padded = np.pad(X.astype(np.float32), ((0, 0), (0, 0), (overlap, overlap + chunk)), mode="edge")
    out = np.empty((B, C, T), dtype=np.float32)
    for start in range(0, T, step):
        y, _, _ = net.forward(params, state, padded[:, :, start:start + chunk])
        width = min(step, T - start)
        out[:, :, start:start + width] = y[:, :, overlap:overlap + width]
    return out
