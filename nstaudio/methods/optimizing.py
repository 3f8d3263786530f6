"""What the optimizing methods (`optimize`, `timedomain`) share: their settings and their memory bound.

Both optimize a variable through one random conv layer with a content and a Gram style term,
so they take the same settings with defaults of their own; :func:`optimization_settings` builds
each method's declarations (:mod:`nstaudio.settings`) from those defaults.
"""

from .. import expected
from ..errors import ParameterError
from ..settings import Setting
from .segments import segment_spans

# Beyond 1e6 (10^8 times the default) the content term outweighs any style by so much that the
# output is the content; larger values only overflow float32 on the way there.
MAX_ALPHA = 1e6
# Adam steps in log1p-magnitude units (0..~10) or in samples (-1..1): a step above 10 is no search.
MAX_LEARNING_RATE = 10.0
# Segments of a long content (nstaudio.methods.segments), in seconds (docs/decisions.md, "Segments").
SEGMENT_SECONDS = 8.0
SEGMENT_OVERLAP_SECONDS = 1.0
MAX_SEGMENT_SECONDS = 24 * 3600.0


def optimization_settings(*, alpha, n_filters, width, optimizers, optimizer, learning_rate, tolerance,
                          tolerance_window, inits, init_help, iterations=300):
    """The settings of an optimizing method, with its defaults.

    Parameters
    ----------
    alpha, n_filters, width, optimizer, learning_rate, tolerance, tolerance_window, iterations
        The method's defaults.
    optimizers, inits : tuple of str
        The optimizers and starting points it takes.
    init_help : str
        What its starting points are.

    Returns
    -------
    tuple of Setting
        The envelope weights are refused by a method that does not take them; the rest are ignored
        there (one batch may give them to items of several methods).
    """
    common = dict(ignored_elsewhere=True)
    return (
        Setting("alpha", float, "Content weight; 0 keeps only the style.", default=alpha, minimum=0.0,
                maximum=MAX_ALPHA, **common),
        Setting("iterations", int, "Most optimizer iterations (the run stops earlier once the loss stops "
                "improving).", default=iterations, minimum=0, maximum=1_000_000, **common),
        Setting("tolerance", float, "Stop when the loss fell by less than this fraction over --tol-window "
                "iterations; 0 runs all --iterations.", default=tolerance, flag="--tol", minimum=0.0, maximum=1.0,
                **common),
        Setting("tolerance_window", int, "Iterations over which --tol is measured.", default=tolerance_window,
                flag="--tol-window", minimum=1, maximum=1_000_000, **common),
        Setting("temporal_weight", float, "Weight of Verma & Smith's temporal envelope: the output's energy per "
                "frame held to the content's.", default=0.0, minimum=0.0, maximum=MAX_ALPHA),
        Setting("spectral_weight", float, "Weight of Verma & Smith's spectral envelope: the output's energy per "
                "frequency held to the style's.", default=0.0, minimum=0.0, maximum=MAX_ALPHA),
        Setting("n_filters", int, "Random conv filters.", default=n_filters, flag="--filters", minimum=1,
                maximum=65536, **common),
        Setting("width", int, "Filter width in frames.", default=width, minimum=1, maximum=1024, **common),
        Setting("optimizer", str, "plbfgs: nstaudio's L-BFGS on the backend's arrays; lbfgs: SciPy's L-BFGS-B "
                "(the papers'); adam.", default=optimizer, choices=optimizers, **common),
        Setting("learning_rate", float, "Adam step size.", default=learning_rate, minimum=0.0, strict_minimum=True,
                maximum=MAX_LEARNING_RATE, **common),
        Setting("init", str, init_help, default="noise", choices=inits, **common),
        Setting("segment", float, "Seconds per segment: a longer content is optimized in overlapping segments "
                "against one style target, crossfaded; 0 optimizes it whole.", default=SEGMENT_SECONDS, minimum=0.0,
                maximum=MAX_SEGMENT_SECONDS, **common),
        Setting("segment_overlap", float, "Seconds two neighbouring segments share, crossfaded (a third of a "
                "segment at most).", default=SEGMENT_OVERLAP_SECONDS, minimum=0.0, maximum=MAX_SEGMENT_SECONDS, **common),
    )


def optimization_steps(options, length, per_second):
    """The steps an optimizing method's progress counts to (``Method.steps``): its iterations in every segment.

    Parameters
    ----------
    options : dict
    length : int
        The content's length in the method's units (frames or samples).
    per_second : float
        Those units per second.
    """
    return options["iterations"] * len(spans(options, length, per_second))


def spans(options, length, per_second):
    """The segments (:func:`~nstaudio.methods.segments.segment_spans`) of a content ``length`` units long
    (``per_second`` of them per second) at the ``segment`` and ``segment_overlap`` of ``options``."""
    segment, overlap = segment_units(options, per_second)
    return segment_spans(length, segment, overlap)


def segment_units(options, per_second):
    """``segment`` and ``segment_overlap`` of ``options`` in units of ``per_second`` per second (0: no segments),
    the overlap no more than a third of the segment."""
    segment = max(1, round(options["segment"] * per_second)) if options["segment"] > 0 else 0
    return segment, min(round(options["segment_overlap"] * per_second), segment // 3)


def check_segments(options, per_second, minimum):
    """ParameterError unless every segment holds at least ``minimum`` units (segments are cut evenly,
    so one may be half a segment long)."""
    segment, _ = segment_units(options, per_second)
    if 0 < segment < 2 * minimum:
        raise ParameterError(f"segment: {options['segment']} s is shorter than {2 * minimum / per_second:.3f} s "
                             f"(segments may be cut to half that, and the filter width needs "
                             f"{minimum / per_second:.3f} s)")


def segment_length(options, length, per_second):
    """The longest stretch the method optimizes at once: one segment's length, or the whole ``length``."""
    start, stop = spans(options, length, per_second)[0]
    return stop - start


def frames_per_second(options):
    """STFT frames per second at the working rate and hop of ``options``."""
    return options["sr_work"] / options["hop_length"]


def conv_memory(options, channels, frames, style_frames, bins):
    """Bytes a random-conv method holds at least: filters, features of every channel and style, optimizer vectors.

    A lower bound (the fast FIR leaves, scratch and SciPy's own arrays come on top), so that
    only settings that surely cannot fit are refused. With ``network="expected"`` (options
    without one are the random network): :func:`nstaudio.expected.memory` in place of the
    filters and features; with ``init="expected"``, the larger of the two stages.
    """
    copies = {"lbfgs": 2 * (2 * 10 + 5), "plbfgs": 2 * 10 + 5, "adam": 4}[options["optimizer"]]  # SciPy's: float64
    vectors = 4 * copies * channels * bins * frames  # the optimizer's
    expected_network = vectors + expected.memory(channels, frames, style_frames, bins)
    if options.get("network") == "expected":
        return expected_network
    n_filters = options["n_filters"]
    random_network = vectors + 4 * (n_filters * bins * options["width"]                 # the filters
                                    + 3 * n_filters * (channels * frames + style_frames))  # features, gradient, targets
    return max(random_network, expected_network) if options.get("init") == "expected" else random_network
