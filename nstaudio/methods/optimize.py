"""The `optimize` method (Ulyanov & Lebedev 2016): gradient descent on a log1p spectrogram.

The variable is the log1p-magnitude spectrogram of the output, one per content
channel; all channels share one random conv net and one style target.
"""

import numpy as np

from .. import expected, optimizers
from ..errors import ParameterError
from ..features import random_filters
from ..kernels import get_backend
from ..kernels.blas_threads import holds_one_blas_thread
from ..objective import StyleTargets, StyleTransferObjective, style_targets
from ..settings import Setting
from ..validation import check_choice, check_float, check_int
from .optimizing import (
    check_segments,
    conv_memory,
    frames_per_second,
    optimization_settings,
    optimization_steps,
    segment_length,
    spans,
)
from .registry import Method
from .segments import run_in_segments

OPTIMIZERS = ("lbfgs", "plbfgs", "adam")
# "expected": from the expected network's optimum, which the random network then refines
# (docs/decisions.md, "Warm start from the expected network is an option, not the default").
INITS = ("noise", "content", "expected")
# The loss through N random filters (the papers'), or its expectation over the filters in
# closed form (nstaudio.expected).
NETWORKS = ("random", "expected")
# Early stop when the loss fell by less than 0.2 % over the last 10 iterations: within 0.3 % of
# the loss 300 iterations reach (docs/decisions.md, "Early stop: 0.2 % over 10 iterations").
DEFAULT_OPTIMIZER = "plbfgs"
# No bound on the log spectrogram, as in Ulyanov & Lebedev's code; values below 0 are silence.
# A bound at 0 kept the style from moving as far as the reference's (docs/decisions.md, "No bound
# on the log spectrogram").
LOWER_BOUND = None
DEFAULT_TOLERANCE = 2e-3
DEFAULT_TOLERANCE_WINDOW = 10


def seeded_filters(n_filters, bins, width, seed):
    """The random filters (n_filters, bins, width) that :func:`initial_state` draws for ``seed``."""
    return random_filters(n_filters, bins, width, seed=np.random.default_rng(seed).integers(2**63))


def initial_state(shape, *, n_filters, width, init, content=None, seed=0, filters=None):
    """The random filters and starting point a seed gives (shared with the benchmarks' torch runs).

    Parameters
    ----------
    shape : tuple
        (B, C, T) of the variable.
    n_filters, width : int
    init : {"noise", "content"}
        (``"expected"``'s start is :func:`optimize`'s work; here it is the noise.)
    content : np.ndarray, shape ``shape``, needed for ``init="content"``
    seed : int
    filters : np.ndarray or None
        ``seeded_filters(n_filters, C, width, seed)`` drawn before (they are returned as they
        are, not drawn again); the starting point is the same either way.

    Returns
    -------
    W : np.ndarray, shape (n_filters, C, width), float32
    x0 : np.ndarray, shape ``shape``, float32
    """
    rng = np.random.default_rng(seed)
    filter_seed = rng.integers(2**63)  # drawn first, as seeded_filters does
    W = random_filters(n_filters, shape[1], width, seed=filter_seed) if filters is None else filters
    return W, _starting_point(rng, shape, init, content)


def starting_point(shape, *, init, content=None, seed=0):
    """The starting point :func:`initial_state` gives for ``seed``, without drawing the filters."""
    rng = np.random.default_rng(seed)
    rng.integers(2**63)  # the filters' seed, drawn first by initial_state
    return _starting_point(rng, shape, init, content)


def _starting_point(rng, shape, init, content):
    if init in ("noise", "expected"):
        return (rng.random(shape) * 1e-3).astype(np.float32)
    return np.array(content, dtype=np.float32)


@holds_one_blas_thread
def optimize(content, styles, *, filters=None, style_weights=None, alpha=1e-2, iterations=300, n_filters=4096,
             width=11, optimizer=DEFAULT_OPTIMIZER, init="noise", learning_rate=0.03, tolerance=DEFAULT_TOLERANCE,
             tolerance_window=DEFAULT_TOLERANCE_WINDOW, temporal_weight=0.0, spectral_weight=0.0, network="random",
             seed=0, device="auto", gram_form="auto", expected_targets=None, callback=None):
    """Find log-magnitude spectrograms with the content of ``content`` and the style of ``styles``.

    Parameters
    ----------
    content : np.ndarray, shape (B, C, T)
        log1p-magnitude spectrogram of each content channel.
    styles : list of np.ndarray, each shape (C, Ts_i), StyleTargets or ExpectedStyleTargets
        log1p-magnitude spectrograms of the style recordings, or their targets under
        ``filters`` (:func:`style_analysis`), computed once for many contents (ExpectedStyleTargets
        for ``network="expected"``).
    filters : np.ndarray, shape (n_filters, C, width), or None
        The seed's filters (:func:`seeded_filters`), drawn before; needed with StyleTargets.
    style_weights : sequence of float or None
        Relative weights of the styles; None weighs them equally (StyleTargets carry theirs).
    alpha : float
        Content weight (0: style only).
    iterations : int
        Most optimizer iterations.
    n_filters, width : int
        Random conv layer: N filters of K frames.
    optimizer : {"plbfgs", "lbfgs", "adam"}
        nstaudio's L-BFGS on the backend's arrays (the default: less time per iteration, no
        host round trip on a GPU, and on the measured clips, both bounded at 0 then, a lower
        loss than SciPy's at equal iterations); SciPy's L-BFGS-B (the papers'); Adam. All
        without a bound (:data:`LOWER_BOUND`).
    init : {"noise", "content", "expected"}
        Start from small non-negative noise (the papers), from the content, or (the random
        network only) from the optimum the expected network reaches from that noise, with the
        same settings.
    learning_rate : float
        Adam's step size.
    tolerance : float
        Stop before ``iterations`` when the loss fell by less than this fraction over the
        last ``tolerance_window`` iterations; 0 always runs all ``iterations``.
    tolerance_window : int
    temporal_weight, spectral_weight : float
        Verma & Smith's energy envelopes (see :mod:`nstaudio.objective`): the output's energy
        per frame held to the content's, its energy per frequency to the styles'; 0 leaves them out.
    network : {"random", "expected"}
        The loss through ``n_filters`` random filters, or its expectation over them in closed
        form (:mod:`nstaudio.expected`: no filters; cost and memory grow as T^2).
    seed : int
        Seeds the filters and the initial noise.
    device : {"auto", "numpy", "cpu", "cuda"}
    gram_form : {"auto", "nxn", "kernel"}
        The random network's Gram form (``network="random"`` only).
    expected_targets : ExpectedStyleTargets or None
        For ``init="expected"`` when ``styles`` are StyleTargets (:func:`style_analysis` makes both).
    callback : callable or None
        ``callback(iteration, loss)`` after each iteration; with ``init="expected"`` the expected
        network's iterations before them are ``callback(iteration, loss, stage="warm start")``.

    Returns
    -------
    X : np.ndarray, shape (B, C, T), float32
        Optimised log1p-magnitude spectrograms. They are optimized without a bound (see
        :data:`LOWER_BOUND`), so values below 0 may occur; they stand for silence
        (``np.expm1(np.maximum(X, 0))`` is the magnitude, as the ``optimize`` method takes it).
    info : dict
        ``loss``, ``content_loss``, ``style_loss``, ``temporal_loss``, ``spectral_loss``, ``initial_loss``,
        ``initial_style_loss``, ``iterations``, ``evaluations``, ``history``, ``converged`` (stopped by the tolerance),
        ``backend``, ``gram_form`` (``"expected"`` for the expected network).
    """
    check_int("iterations", iterations, minimum=0)
    check_int("n_filters", n_filters, minimum=1)
    check_int("width", width, minimum=1)
    check_float("alpha", alpha, minimum=0.0)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_choice("init", init, INITS)
    check_choice("network", network, NETWORKS)
    backend = get_backend(device)
    content = np.asarray(content, dtype=np.float32)
    settings = dict(alpha=alpha, iterations=iterations, n_filters=n_filters, width=width, optimizer=optimizer,
                    learning_rate=learning_rate, tolerance=tolerance, tolerance_window=tolerance_window,
                    temporal_weight=temporal_weight, spectral_weight=spectral_weight, seed=seed)
    if network == "expected":
        if init == "expected":
            raise ParameterError("init='expected' starts the random network from the expected network's "
                                 "optimum; with network='expected' start from noise or the content")
        return _optimize_expected(backend, content, styles, init=init, style_weights=style_weights,
                                  callback=callback, **settings)
    if isinstance(styles, expected.ExpectedStyleTargets):
        raise ParameterError("style targets of network='expected' do not serve random filters")
    warm_start = None
    if init == "expected":
        warm_start = _warm_start(content, styles, expected_targets, backend, style_weights=style_weights,
                                 device=device, callback=callback, **settings)
    if isinstance(styles, StyleTargets) and filters is None:
        raise ParameterError("style targets need the filters they were computed with (filters=)")
    if filters is not None and filters.shape != (n_filters, content.shape[1], width):
        raise ParameterError(f"filters of shape {filters.shape} for n_filters={n_filters}, "
                             f"{content.shape[1]} bins and width={width}")
    W, x0 = initial_state(content.shape, n_filters=n_filters, width=width, init=init, content=content, seed=seed,
                          filters=filters)
    x0 = x0 if warm_start is None else warm_start
    objective = StyleTransferObjective(backend, W, content, styles, style_weights=style_weights, alpha=alpha,
                                       gram_form=gram_form, temporal_weight=temporal_weight,
                                       spectral_weight=spectral_weight)
    del W  # the objective keeps its own layout of the filters
    return _minimize(objective, backend, x0, optimizer, iterations, learning_rate, tolerance, tolerance_window,
                     callback)


def _optimize_expected(backend, content, styles, *, init, style_weights, alpha, iterations, n_filters, width,
                       optimizer, learning_rate, tolerance, tolerance_window, temporal_weight, spectral_weight, seed,
                       callback):
    """:func:`optimize` through the expected network (``network="expected"``)."""
    if isinstance(styles, StyleTargets):
        raise ParameterError("style targets of random filters do not serve network='expected'")
    if not isinstance(styles, expected.ExpectedStyleTargets):
        styles = expected.expected_style_targets(backend, styles, width=width, style_weights=style_weights)
    elif styles.width != width:
        raise ParameterError(f"style targets for width {styles.width}, not {width}")
    x0 = starting_point(content.shape, init=init, content=content, seed=seed)
    objective = expected.ExpectedStyleTransferObjective(
        backend, content, styles, n_filters=n_filters, alpha=alpha, temporal_weight=temporal_weight,
        spectral_weight=spectral_weight)
    return _minimize(objective, backend, x0, optimizer, iterations, learning_rate, tolerance, tolerance_window,
                     callback)


def _warm_start(content, styles, expected_targets, backend, *, style_weights, device, callback, width, **settings):
    """``init="expected"``'s start: the optimum the expected network reaches from noise with these settings."""
    if expected_targets is None:
        if isinstance(styles, StyleTargets):
            raise ParameterError("init='expected' needs the style spectrograms; analyse the style with "
                                 "init='expected'")
        expected_targets = expected.expected_style_targets(backend, styles, width=width, style_weights=style_weights)
    warm_start, _ = optimize(content, expected_targets, width=width, init="noise", network="expected", device=device,
                             callback=None if callback is None else (
                                 lambda i, loss: callback(i, loss, stage="warm start")), **settings)
    return warm_start


def _minimize(objective, backend, x0, optimizer, iterations, learning_rate, tolerance, tolerance_window, callback):
    """Run ``optimizer`` on ``objective`` from ``x0``; the (X, info) of :func:`optimize`."""
    initial_loss, _ = objective(x0)
    initial_style = objective.last_parts["style"]
    stopping = dict(lower=LOWER_BOUND, tolerance=tolerance, tolerance_window=tolerance_window, callback=callback)
    if optimizer == "lbfgs":
        X, info = optimizers.lbfgs(objective, x0, iterations=iterations, to_numpy=backend.to_numpy, **stopping)
    elif optimizer == "plbfgs":
        X, info = optimizers.projected_lbfgs(objective, backend.asarray(x0, np.float32), iterations=iterations,
                                             xp=backend.xp, **stopping)
    else:
        X, info = optimizers.adam(objective, x0, iterations=iterations, learning_rate=learning_rate,
                                  xp=backend.xp, **stopping)
    X = backend.to_numpy(X)
    final_loss, _ = objective(X)
    info.update(loss=final_loss, content_loss=objective.last_parts["content"],
                style_loss=objective.last_parts["style"], temporal_loss=objective.last_parts["temporal"],
                spectral_loss=objective.last_parts["spectral"], initial_loss=initial_loss,
                initial_style_loss=initial_style, backend=backend.name, gram_form=objective.gram_form)
    return X, info


def style_analysis(styles, options):
    """The seed's filters and the styles' targets under them: what every content stylized with
    these styles and settings shares (``Method.prepare``).

    Parameters
    ----------
    styles : list of np.ndarray, each shape (C, Ts_i)
    options : dict
        The resolved settings (n_filters, width, seed, style_weights, device; network and init,
        "random" and "noise" where absent).

    Returns
    -------
    (filters, StyleTargets, ExpectedStyleTargets or None): the last for ``init="expected"``; for
    ``network="expected"`` (None, ExpectedStyleTargets, None)
    """
    backend = get_backend(options["device"])
    network = options.get("network", "random")
    expected_targets = None
    if network == "expected" or options.get("init") == "expected":
        expected_targets = expected.expected_style_targets(backend, styles, width=options["width"],
                                                           style_weights=options["style_weights"])
    if network == "expected":
        return None, expected_targets, None
    bins = styles[0].shape[0]
    W = seeded_filters(options["n_filters"], bins, options["width"], options["seed"])
    targets = style_targets(backend, W, styles, style_weights=options["style_weights"])
    return W, targets, expected_targets


def _run(content, prepared, options, model, callback):
    filters, targets, expected_targets = prepared

    def one(segment, report):
        return optimize(
            segment, targets, filters=filters, expected_targets=expected_targets, alpha=options["alpha"],
            iterations=options["iterations"], n_filters=options["n_filters"], width=options["width"],
            optimizer=options["optimizer"], init=options["init"], learning_rate=options["learning_rate"],
            tolerance=options["tolerance"], tolerance_window=options["tolerance_window"],
            temporal_weight=options["temporal_weight"], spectral_weight=options["spectral_weight"],
            network=options["network"], seed=options["seed"], device=options["device"], callback=report)

    # values below 0 are silence: the pipeline clamps them (LOWER_BOUND), after the crossfades
    return run_in_segments(one, content, spans(options, content.shape[-1], frames_per_second(options)),
                           options["iterations"], callback)


METHOD = Method(
    name="optimize",
    summary="Ulyanov & Lebedev: optimize the log spectrogram through one random conv layer, then Griffin-Lim",
    needs="style", input="log_spectrogram", output="log_spectrogram",
    # Chosen from the quality benchmark (docs/decisions.md, "optimize: 4096 filters, width 11, alpha
    # 0.01, envelopes off" and "Griffin-Lim from PGHI's phase, 16 iterations").
    settings=optimization_settings(
        alpha=1e-2, n_filters=4096, width=11, optimizers=OPTIMIZERS, optimizer=DEFAULT_OPTIMIZER,
        learning_rate=0.03, tolerance=DEFAULT_TOLERANCE, tolerance_window=DEFAULT_TOLERANCE_WINDOW, inits=INITS,
        init_help="Start from noise (the papers), from the content, or (optimize's random network) from the "
                  "optimum the expected network reaches from that noise: 0.33-0.86 of the time.",
    ) + (Setting("network", str, "random: the loss through --filters random filters; expected: its expectation over "
                 "the random filters in closed form, no filters, 10-30x faster on clips of seconds, time and memory "
                 "growing as the square of the length.", default="random", choices=NETWORKS),),
    hop_divisor=4, phase_iters=16, phase_init="pghi",
    steps=lambda options, length: optimization_steps(options, length, frames_per_second(options)),
    run=_run, min_frames=lambda options: options["width"],
    validate=lambda options: check_segments(options, frames_per_second(options), options["width"]),
    prepare=style_analysis, style_settings=("n_filters", "width", "seed", "device", "network"),
    memory=lambda options, channels, frames, style_frames: conv_memory(
        options, channels, segment_length(options, frames, frames_per_second(options)), style_frames,
        options["n_fft"] // 2 + 1),
)
