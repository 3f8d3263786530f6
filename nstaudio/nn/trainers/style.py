"""Training a style model: a transformation network that gives any content one style (AutoStyle).

The transformation network starts from the loss network's weights and learns against the
frozen loss network: its content features (one encoder layer's activations) and its style
features (Gram matrices of encoder layers and of the input itself). :func:`train_transformer`
trains it on spectrograms (arrays in, parameters out); :func:`train_style` on recordings,
resumably, into a model file of kind ``"style"``.
"""

import dataclasses
import math

import numpy as np

from ...errors import ParameterError
from ...kernels import array_module, cpu as _cpu, get_backend
from ...kernels.blas_threads import holds_one_blas_thread
from ...validation import check_float, check_int
from ..autoencoder import Architecture, Autoencoder, causal_start, to_backend, to_host
from ..corpus import corpus_spectrograms, log_spectrograms, random_crops
from ..layers import gram
from ..losses import gram_factor, gram_mse, mse
from ..model_file import Model, default_lossnet, describe_kind
from ..training import check_training_options, digest, train_loop, train_resumable

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
# (the paper's, which alone do not carry a violin's timbre): docs/decisions.md, "Style layers".
STYLE_LAYERS = (SPECTROGRAM, SPECTROGRAM_DELTA, "enc0", "enc1", "enc2")
CONTENT_LAYER = "enc3"


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
        As in :func:`nstaudio.nn.trainers.lossnet.train_autoencoder`.
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
    lossnet, transformer = Autoencoder(loss_arch, backend), Autoencoder(arch, backend)
    multiple = math.lcm(transformer.multiple, lossnet.multiple)  # a crop passes through both
    crop = check_int("crop", crop, minimum=multiple)
    if crop % multiple:
        raise ParameterError(f"crop must be a multiple of {multiple}, got {crop}")
    usable = style.shape[1] - style.shape[1] % lossnet.multiple
    if usable < lossnet.multiple:
        raise ParameterError(f"style has {style.shape[1]} frames, fewer than the {lossnet.multiple} the network needs")
    loss_params, loss_state = to_backend(loss_params, backend), to_backend(loss_state, backend)
    targets = {}
    for name, G in style_targets(lossnet, loss_params, loss_state, style[:, :usable], style_layers).items():
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
        return transformer_loss(transformer, params, state, lossnet, loss_params, loss_state, x, targets, alpha=alpha,
                                beta=beta, style_layers=style_layers, content_layer=content_layer)

    transformer.train(True)
    lossnet.train(False)
    history = train_loop(step_fn, params, state, rng, backend, steps=steps, learning_rate=learning_rate,
                         weight_decay=weight_decay, resume=resume, callback=callback, checkpoint=checkpoint,
                         checkpoint_every=checkpoint_every)
    transformer.train(False)
    return to_host(params, backend), to_host(state, backend), history


def check_train_style(*, lossnet=None, steps=2000, alpha=100.0, beta=1e4, batch_size=24, crop=64, learning_rate=1e-3,
                      weight_decay=1e-4, seed=0, checkpoint=None, checkpoint_every=200, resume=False, causal=False,
                      stride=None, device="auto"):
    """Check :func:`train_style`'s settings before any data is read (the CLI calls it before the corpus).

    Returns
    -------
    steps : int
    options : dict
    lossnet : Model
        The one given, or the shipped one.
    alpha, beta : float
    backend : module
    arch : Architecture
        The style model's: the loss network's, made causal or given another stride if asked.
    """
    lossnet = default_lossnet() if lossnet is None else lossnet
    if not isinstance(lossnet, Model) or lossnet.kind != "lossnet":
        got = describe_kind(lossnet.kind) if isinstance(lossnet, Model) else type(lossnet).__name__
        raise ParameterError(f"lossnet must be a loss network, got a {got}")
    stride = lossnet.arch.stride if stride is None else check_int("stride", stride, minimum=1,
                                                                    maximum=Architecture.MAX_STRIDE)
    arch = dataclasses.replace(lossnet.arch, causal=causal, stride=stride)  # which checks causal
    # crops pass through both networks: a multiple of both stride products
    multiple = math.lcm(lossnet.arch.stride ** 4, stride ** 4)
    steps, options = check_training_options(steps, batch_size, crop, learning_rate, weight_decay, seed, checkpoint,
                                            checkpoint_every, resume, crop_multiple=multiple, kind="style")
    alpha = check_float("alpha", alpha, minimum=0.0, maximum=1e12)
    beta = check_float("beta", beta, minimum=0.0, maximum=1e12)
    return steps, options, lossnet, alpha, beta, get_backend(device), arch


@holds_one_blas_thread
def train_style(style, corpus, sr, *, style_sr=None, lossnet=None, steps=2000, alpha=100.0, beta=1e4, batch_size=24,
                crop=64, learning_rate=1e-3, weight_decay=1e-4, seed=0, callback=None, checkpoint=None,
                checkpoint_every=200, resume=False, labels=None, causal=False, stride=None, device="auto"):
    """Train a style model: a transformation network that gives any content the style of ``style``.

    Parameters
    ----------
    style : np.ndarray, shape (samples,) or (channels, samples)
        The style recording.
    corpus : list of np.ndarray
        Content recordings to train on (speech, instruments...).
    sr : int or list of int
        Sample rate(s) of the corpus.
    style_sr : int or None
        Sample rate of ``style``; default ``sr`` (when that is one number).
    lossnet : Model or None
        Frozen loss network; default the shipped one. Its spectrogram settings are used.
    steps : int
    alpha, beta : float
        Content and style weights (paper: 100 and 1e4).
    batch_size, crop, learning_rate, weight_decay, seed, callback, checkpoint, checkpoint_every, resume, labels, device
        As in :func:`nstaudio.train_lossnet`.
    causal : bool
        Train a causal style model (:class:`~nstaudio.nn.autoencoder.Architecture`): no output
        frame depends on a later input frame, so :class:`nstaudio.Stream` runs it with no
        network look-ahead. The loss network, which only judges, stays as it is.
    stride : int or None
        The style model's stride (default the loss network's); a causal model wants 1.

    Returns
    -------
    Model
        Of kind ``"style"``.
    """
    steps, options, lossnet, alpha, beta, backend, arch = check_train_style(
        lossnet=lossnet, steps=steps, alpha=alpha, beta=beta, batch_size=batch_size, crop=crop,
        learning_rate=learning_rate, weight_decay=weight_decay, seed=seed, checkpoint=checkpoint,
        checkpoint_every=checkpoint_every, resume=resume, causal=causal, stride=stride, device=device)
    sr_work, n_fft, hop_length = lossnet.spectrogram_settings
    if style_sr is None:
        if isinstance(sr, (list, tuple)):
            raise ParameterError("style_sr is needed when the corpus clips have several rates")
        style_sr = sr
    style_spec = log_spectrograms([style], style_sr, sr_work=sr_work, n_fft=n_fft, hop_length=hop_length,
                                  name="style")[0]
    specs = corpus_spectrograms(corpus, sr, sr_work, n_fft, hop_length, options["crop"], labels)
    lossnet_arrays = [a for layer in (*lossnet.params.values(), *lossnet.state.values()) for a in layer.values()]
    settings = dict(sr_work=sr_work, n_fft=n_fft, hop_length=hop_length, alpha=alpha, beta=beta,
                    style_layers=list(STYLE_LAYERS), **options,
                    corpus=digest(specs), style=digest([style_spec]), lossnet=digest(lossnet_arrays))
    if arch != lossnet.arch:  # (only then: a run begun before the option existed still resumes)
        settings["architecture"] = arch.to_dict()
    return train_resumable("style", lambda **kw: train_transformer(specs, style_spec, lossnet.triple, backend=backend,
                                                                   arch=arch, **kw),
                           arch, settings, steps=steps, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                           resume=resume, callback=callback, alpha=alpha, beta=beta, style_layers=STYLE_LAYERS,
                           content_layer=CONTENT_LAYER, **options)
