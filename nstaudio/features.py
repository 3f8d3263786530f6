"""The random feature network of Ulyanov & Lebedev: one 1-D conv layer, fixed random filters."""

import numpy as np

from .validation import check_int


def random_filters(n_filters, n_bins, width, *, seed=0, dtype=np.float32):
    """Random conv filters, scaled normal (Glorot/He-style), as in Ulyanov & Lebedev's code.

    ``std = sqrt(2) * sqrt(2 / ((n_bins + n_filters) * width))``: Glorot's fan-in + fan-out
    scale with He's sqrt(2) gain for the ReLU that follows.

    Parameters
    ----------
    n_filters : int
        N, number of filters.
    n_bins : int
        C, input channels (frequency bins).
    width : int
        K, filter width in frames.
    seed : int
        Seed for ``numpy.random.default_rng``; the same seed gives the same filters everywhere.
    dtype : numpy dtype
        Of the filters returned.

    Returns
    -------
    np.ndarray, shape (n_filters, n_bins, width)
    """
    n_filters = check_int("n_filters", n_filters, minimum=1)
    n_bins = check_int("n_bins", n_bins, minimum=1)
    width = check_int("width", width, minimum=1)
    std = np.sqrt(2.0) * np.sqrt(2.0 / ((n_bins + n_filters) * width))
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    # Draw in the target precision: 4096 x 1025 x 11 float64 draws would be a 370 MB temporary.
    draw_dtype = dtype if dtype in (np.float32, np.float64) else np.float64
    W = rng.standard_normal((n_filters, n_bins, width), dtype=draw_dtype)
    W *= draw_dtype.type(std)
    return W.astype(dtype, copy=False)
