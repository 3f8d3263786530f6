"""Training the loss network: an autoencoder that reconstructs log-magnitude spectrograms.

Arrays in, parameters out: corpus loading and checkpoint files belong to the caller.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..errors import NumericalError, ParameterError
from ..kernels import array_module, cpu as _cpu
from ..kernels.cpu import thread_scratch
from ..validation import check_int
from .autoencoder import Autoencoder, causal_start, to_backend, to_host
from .losses import gram_factor, gram_mse, mse
from .optim import Adam

SPECTROGRAM = "spectrogram"
"""Style "layer" name of the loss network's input: the Gram matrix of the log-magnitude spectrogram
itself (bins x bins), the spectral envelope and which bins sound together."""
SPECTROGRAM_DELTA = "spectrogram_delta"
"""Style "layer" name of the input's frame-to-frame difference: its Gram matrix holds how fast each
bin moves. Matching it keeps the output as smooth in time as the style; without it the strided
transposed convolutions leave a frame-rate checkerboard that no signal has (Griffin-Lim then
cannot reach the stylized magnitudes)."""
INPUT_FEATURES = (SPECTROGRAM, SPECTROGRAM_DELTA)
# Style: Gram matrices of the spectrogram itself and of its frame-to-frame change (the spectral
# envelope, and how smoothly it moves) and of the loss network's first three encoder layers
# (the paper's, which alone did not carry a violin's timbre): README, "The loss network".
STYLE_LAYERS = (SPECTROGRAM, SPECTROGRAM_DELTA, "enc0", "enc1", "enc2")


def input_features(x):
    """Style features of the loss network's input itself: ``{SPECTROGRAM: x, SPECTROGRAM_DELTA: dx/dt}``.

    Parameters
    ----------
    x : array, shape (B, C, T)

    Returns
    -------
    dict of str -> array, shapes (B, C, T) and (B, C, T - 1)
    """
    return {SPECTROGRAM: x, SPECTROGRAM_DELTA: x[:, :, 1:] - x[:, :, :-1]}


def input_features_backward(d_features, shape, dtype):
    """Adjoint of :func:`input_features` for the features present in ``d_features``: (B, C, T) or 0."""
    if not any(name in d_features for name in INPUT_FEATURES):
        return 0
    dx = array_module(next(iter(d_features.values()))).zeros(shape, dtype=dtype)
    if SPECTROGRAM in d_features:
        dx += d_features[SPECTROGRAM]
    if SPECTROGRAM_DELTA in d_features:
        d_delta = d_features[SPECTROGRAM_DELTA]
        dx[:, :, 1:] += d_delta
        dx[:, :, :-1] -= d_delta
    return dx


@dataclass
class TrainingState:
    """Everything a training run needs to continue exactly where it stopped.

    Attributes
    ----------
    params, state : dict of dict of np.ndarray
        The network's parameters and BatchNorm statistics.
    moments : dict of dict of np.ndarray
        Adam's moments per layer, ``{layer: {"W.m": m, "W.v": v, ...}}``.
    step : int
        Steps done.
    rng : dict
        State of the crop generator (``numpy.random.Generator.bit_generator.state``).
    history : np.ndarray, shape (step,) or (step, losses)
        Training loss(es) of each step done.
    """

    params: dict
    state: dict
    moments: dict
    step: int
    rng: dict
    history: np.ndarray


def _update(optimizers, params, grads):
    """One Adam step for every layer that received gradients (each layer has its own optimizer state)."""
    for name, g in grads.items():
        optimizers[name].step(params[name], g)


def _train_loop(step_fn, params, state, rng, backend, *, steps, learning_rate, weight_decay, resume, callback,
                checkpoint, checkpoint_every, betas=(0.9, 0.999), losses=None, updates=None):
    """Run ``step_fn`` from step 0 (or ``resume.step``) to ``steps``, Adam-updating ``params`` in place.

    ``step_fn(rng, step) -> (loss, grads)`` computes one mini-batch; ``grads`` holds the layers
    this step trains (a GAN's steps train different networks). ``params`` and ``state`` are
    ``backend``'s arrays. ``checkpoint(TrainingState)`` is called every ``checkpoint_every``
    steps with numpy copies. ``losses``: None when ``loss`` is one number, else how many it
    gives (a row of the history per step). ``updates(layer, step)``: how many of the first ``step``
    steps updated ``layer`` (Adam's bias correction counts those), None when every step
    updates every layer. Returns the loss history of all steps, resumed ones
    included: (steps,) or (steps, losses).
    """
    steps = check_int("steps", steps, minimum=0)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, minimum=1)
    optimizers = {name: Adam(lr=learning_rate, betas=betas, weight_decay=weight_decay) for name in params}
    history = np.empty((steps,) if losses is None else (steps, losses))
    start = 0
    if resume is not None:
        start = resume.step
        if start > steps:
            raise ParameterError(f"the run to resume already did {start} steps, more than steps={steps}")
        history[:start] = resume.history[:start]
        rng.bit_generator.state = resume.rng
        for name, opt in optimizers.items():
            opt.load_moments({key: backend.xp.array(a) for key, a in resume.moments.get(name, {}).items()},
                             start if updates is None else updates(name, start))
    xp = backend.xp
    for step in range(start, steps):
        with np.errstate(over="ignore", invalid="ignore"):  # reported below, as one error with a remedy
            loss, grads = step_fn(rng, step)
            # the loss, and every gradient: a finite loss with overflowing gradients would write
            # NaN weights into the next checkpoint
            finite = bool(np.all(np.isfinite(loss))) and all(bool(xp.all(xp.isfinite(g))) for layer in grads.values()
                                               for g in layer.values())
            if finite:
                _update(optimizers, params, grads)
        if not finite:
            saved = max(start, step // checkpoint_every * checkpoint_every) if checkpoint is not None else 0
            kept = f"; the checkpoint of step {saved} is kept" if saved else ""
            raise NumericalError(f"training diverged at step {step + 1} (loss {loss}): lower the learning rate "
                                 f"(now {learning_rate:g}){kept}")
        history[step] = loss
        if callback is not None:
            callback(step + 1, loss)
        if checkpoint is not None and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            moments = to_host({name: opt.moments() for name, opt in optimizers.items()}, backend)
            checkpoint(TrainingState(to_host(params, backend), to_host(state, backend), moments, step + 1,
                                     rng.bit_generator.state, history[:step + 1]))
    return history


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
                      weight_decay=1e-4, seed=0, resume=None, callback=None, checkpoint=None, checkpoint_every=200,
                      backend=None):
    """Train the autoencoder to reconstruct spectrogram crops (MSE, Adam with weight decay).

    Parameters
    ----------
    spectrograms : list of np.ndarray, each shape (arch.n_bins, T_i)
        log1p-magnitude spectrograms of the corpus.
    arch : Architecture
    steps : int
        Optimizer steps (one mini-batch each), in total: a resumed run does the rest.
    batch_size : int
        Crops per step (24 in the paper).
    crop : int
        Frames per crop; a multiple of ``arch.stride ** 4``.
    learning_rate, weight_decay : float
        Adam's (1e-3 and 1e-4 in the paper).
    seed : int
        Seeds the initial weights and the crops: the same seed reproduces the run.
    resume : TrainingState or None
        Continue this run (saved by ``checkpoint``); the result equals an uninterrupted run.
    callback : callable or None
        ``callback(step, loss)`` after each step.
    checkpoint : callable or None
        ``checkpoint(TrainingState)`` every ``checkpoint_every`` steps.
    checkpoint_every : int
    backend : module or None
        From ``nstaudio.kernels.get_backend``: where the network runs (crops are drawn on the
        host and moved there); None: the cpu backend. Results are numpy arrays either way.

    Returns
    -------
    params, state : dict
    history : np.ndarray, shape (steps,)
        Training loss per step.
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    backend = _cpu if backend is None else backend
    net = Autoencoder(arch, backend)
    crop = check_int("crop", crop, minimum=net.multiple)
    if crop % net.multiple:
        raise ParameterError(f"crop must be a multiple of {net.multiple}, got {crop}")
    rng = np.random.default_rng(seed)
    params, state = net.init_params(seed=int(rng.integers(2**31)))
    if resume is not None:
        params, state = resume.params, resume.state
    params, state = to_backend(params, backend), to_backend(state, backend)  # copies: the caller's stay as they are

    def step_fn(rng, step):
        x = backend.asarray(random_crops(spectrograms, batch_size, crop, rng), np.float32)
        y, _, caches = net.forward(params, state, x)
        loss, dy = mse(y, x)
        _, grads = net.backward(params, caches, dy)
        return loss, grads

    net.train(True)
    history = _train_loop(step_fn, params, state, rng, backend, steps=steps, learning_rate=learning_rate,
                          weight_decay=weight_decay, resume=resume, callback=callback, checkpoint=checkpoint,
                          checkpoint_every=checkpoint_every)
    net.train(False)
    return to_host(params, backend), to_host(state, backend), history


def style_targets(net, params, state, style, layers):
    """Gram matrices of a style spectrogram at the given encoder layers of the frozen loss network.

    Parameters
    ----------
    net : Autoencoder
        The loss network (switched to eval mode here).
    style : np.ndarray, shape (n_bins, T), T a multiple of ``net.multiple``
    layers : sequence of str
        Encoder layer names, or one of :data:`INPUT_FEATURES` (the network's input itself).

    Returns
    -------
    dict of str -> np.ndarray, each shape (channels, channels)
        On the host, whatever ``net``'s backend (``params`` and ``state`` are that backend's arrays).
    """
    from .layers import gram

    net.train(False)
    x = net.backend.asarray(style[None], np.float32)
    encoder = [name for name in layers if name not in INPUT_FEATURES]
    acts = net.forward(params, state, x, stop_after=max(encoder), keep_caches=False)[1] if encoder else {}
    acts.update(input_features(x))
    return {name: net.backend.to_numpy(gram(acts[name])[0][0]) for name in layers}


def transformer_loss(model, params, state, loss_model, loss_params, loss_state, x, targets, *, alpha, beta,
                     style_layers, content_layer):
    """The transformation network's training loss on one batch, and its gradient.

    ``alpha * MSE(content_layer(T(x)), content_layer(x)) + beta * sum_l MSE(Gram_l(T(x)), targets[l])``,
    the features taken from the frozen loss network (:data:`INPUT_FEATURES`: from its input ``T(x)`` itself).

    Parameters
    ----------
    model, loss_model : Autoencoder
        The transformation network and the loss network (in eval mode).
    params, state : dict
        The transformation network's parameters and BatchNorm statistics (updated in training mode).
    loss_params, loss_state : dict
        The loss network's; never modified.
    x : array, shape (B, n_bins, T)
        Content crops, on the networks' backend.
    targets : dict of str -> (array, float)
        The style's Gram matrices (:func:`style_targets`) as :func:`~nstaudio.nn.losses.gram_factor`
        pairs, the factors on the networks' backend.
    alpha, beta : float
    style_layers : sequence of str
    content_layer : str

    Returns
    -------
    loss : float
    grads : dict, the structure of ``params``
    """
    deepest = max(name for name in (content_layer, *style_layers) if name not in INPUT_FEATURES)  # enc0 < .. < enc3
    _, x_acts, _ = loss_model.forward(loss_params, loss_state, x, stop_after=content_layer, keep_caches=False)
    y, _, caches = model.forward(params, state, x)
    _, y_acts, loss_caches = loss_model.forward(loss_params, loss_state, y, stop_after=deepest)
    y_acts.update(input_features(y))
    content_value, d_content = mse(y_acts[content_layer], x_acts[content_layer])
    total = alpha * content_value
    d_acts = {content_layer: alpha * d_content}
    for name in style_layers:
        value, d_features = gram_mse(y_acts[name], *targets[name])
        total += beta * value
        d_acts[name] = d_acts.get(name, 0) + beta * d_features
    d_input = input_features_backward({name: d_acts.pop(name) for name in INPUT_FEATURES if name in d_acts},
                                      y.shape, y.dtype)
    dy, _ = loss_model.backward(loss_params, loss_caches, None, d_acts)  # the loss network stays frozen
    _, grads = model.backward(params, caches, dy + d_input)
    return total, grads


def train_transformer(content, style, loss_net, *, steps, alpha=100.0, beta=1e4, style_layers=STYLE_LAYERS,
                      content_layer="enc3", batch_size=24, crop=64, learning_rate=1e-3, weight_decay=1e-4, seed=0,
                      resume=None, callback=None, checkpoint=None, checkpoint_every=200, backend=None, arch=None):
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
    steps, batch_size, crop, learning_rate, weight_decay, seed, resume, callback, checkpoint, checkpoint_every, backend
        As in :func:`train_autoencoder`.
    alpha, beta : float
        Content and style weights (paper: 100 and 1e4).
    style_layers : sequence of str
        Encoder layers and :data:`INPUT_FEATURES` whose Gram matrices carry the style
        (default :data:`STYLE_LAYERS`; the paper's are ``("enc0", "enc1", "enc2")``).
    content_layer : str
        The encoder layer whose activations carry the content.
    arch : Architecture or None
        The transformation network's, if not the loss network's: the same arrays (it starts
        from the loss network's weights) with another stride or causal filters.

    Returns
    -------
    params, state : dict
        The transformation network.
    history : np.ndarray, shape (steps,)
    """
    loss_arch, loss_params, loss_state = loss_net
    arch = loss_arch if arch is None else arch
    if arch.array_shapes() != loss_arch.array_shapes():
        raise ParameterError("the transformation network must have the loss network's arrays (it starts from them)")
    batch_size = check_int("batch_size", batch_size, minimum=1)
    backend = _cpu if backend is None else backend
    loss_model, model = Autoencoder(loss_arch, backend), Autoencoder(arch, backend)
    multiple = math.lcm(model.multiple, loss_model.multiple)  # a crop passes through both
    crop = check_int("crop", crop, minimum=multiple)
    if crop % multiple:
        raise ParameterError(f"crop must be a multiple of {multiple}, got {crop}")
    usable = style.shape[1] - style.shape[1] % loss_model.multiple
    if usable < loss_model.multiple:
        raise ParameterError(f"style has {style.shape[1]} frames, fewer than the {loss_model.multiple} the network needs")
    loss_params, loss_state = to_backend(loss_params, backend), to_backend(loss_state, backend)
    targets = {}
    for name, G in style_targets(loss_model, loss_params, loss_state, style[:, :usable], style_layers).items():
        factor, squared_norm = gram_factor(G)  # an eigendecomposition, once, on the host
        targets[name] = backend.xp.array(factor), squared_norm
    if resume is not None:
        source = (resume.params, resume.state)
    elif arch.causal and not loss_arch.causal:  # the loss network's taps at their own offsets in time
        source = (causal_start(loss_net[1], arch), loss_net[2])
    else:
        source = (loss_net[1], loss_net[2])
    params, state = to_backend(source[0], backend), to_backend(source[1], backend)
    rng = np.random.default_rng(seed)

    def step_fn(rng, step):
        x = backend.asarray(random_crops(content, batch_size, crop, rng), np.float32)
        return transformer_loss(model, params, state, loss_model, loss_params, loss_state, x, targets, alpha=alpha,
                                beta=beta, style_layers=style_layers, content_layer=content_layer)

    model.train(True)
    loss_model.train(False)
    history = _train_loop(step_fn, params, state, rng, backend, steps=steps, learning_rate=learning_rate,
                          weight_decay=weight_decay, resume=resume, callback=callback, checkpoint=checkpoint,
                          checkpoint_every=checkpoint_every)
    model.train(False)
    return to_host(params, backend), to_host(state, backend), history


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
    padded = np.pad(X.astype(np.float32), ((0, 0), (0, 0), (overlap, overlap + m)), mode="edge")
    out = np.empty((B, C, T), dtype=np.float32)
    for start in range(0, T, step):
        width = min(step, T - start)
        length = -(-(width + 2 * overlap) // m) * m  # the last chunk is only as long as it needs to be
        y, _, _ = net.forward(params, state, padded[:, :, start:start + length], scratch=thread_scratch("network"))
        out[:, :, start:start + width] = y[:, :, overlap:overlap + width]
    return out
