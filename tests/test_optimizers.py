"""The minimisers: bounds, the early-stopping rule, and callbacks."""

import numpy as np
import pytest

from nstaudio import optimizers
from nstaudio.errors import ParameterError


def slow_valley(x):
    """An ill-conditioned quadratic plus a linear term: many iterations to converge, loss > 0."""
    scales = np.logspace(-4, 0, x.size).reshape(x.shape)
    d = x.astype(np.float64) - 1.0
    return float(np.sum(scales * d * d) + 1.0), (2 * scales * d).astype(np.float32)


@pytest.mark.parametrize("minimise", [optimizers.lbfgs, optimizers.projected_lbfgs, optimizers.adam],
                         ids=["lbfgs", "plbfgs", "adam"])
def test_tolerance_stops_early_and_zero_runs_all(minimise):
    x0 = np.zeros((4, 50), np.float32)
    _, full = minimise(slow_valley, x0, iterations=150, tolerance=0.0)
    _, early = minimise(slow_valley, x0, iterations=150, tolerance=1e-2, tolerance_window=5)
    assert full["iterations"] == 150 and not full["converged"]
    assert early["converged"] and 5 < early["iterations"] < 150
    h = early["history"]
    # the rule that fired: less than 1 % decrease over the last 5 iterations, and not before
    assert h[-6] - h[-1] < 1e-2 * h[-1]
    assert all(h[i - 5] - h[i] >= 1e-2 * h[i] for i in range(5, len(h) - 1))


@pytest.mark.parametrize("minimise", [optimizers.lbfgs, optimizers.projected_lbfgs, optimizers.adam],
                         ids=["lbfgs", "plbfgs", "adam"])
def test_lower_bound_and_callback(minimise):
    seen = []
    x, info = minimise(lambda x: slow_valley(x - 3.0), np.ones((3, 4), np.float32), iterations=20,
                       lower=0.0, callback=lambda i, loss: seen.append(i))
    assert x.dtype == np.float32 and np.all(x >= 0)
    assert seen == list(range(1, info["iterations"] + 1))


def test_bad_tolerance():
    with pytest.raises(ParameterError, match="tolerance"):
        optimizers.lbfgs(slow_valley, np.zeros(3, np.float32), iterations=3, tolerance=-1)


def test_projected_lbfgs_matches_scipy_on_a_bounded_quadratic():
    """Minimum of a convex quadratic with some coordinates pinned at the bound: both find it."""
    rng = np.random.default_rng(0)
    target = rng.standard_normal((5, 8)).astype(np.float32)  # negative entries end at the bound 0
    scales = np.logspace(-1, 1, target.size).reshape(target.shape)

    def fun(x):
        d = np.asarray(x, np.float64) - target
        return float(np.sum(scales * d * d)), (2 * scales * d).astype(np.float32)

    x0 = np.ones_like(target)
    x_p, info_p = optimizers.projected_lbfgs(fun, x0, iterations=200)
    x_s, _ = optimizers.lbfgs(fun, x0, iterations=200)
    expected = np.maximum(target, 0)
    np.testing.assert_allclose(x_p, expected, atol=1e-3)
    np.testing.assert_allclose(x_s, expected, atol=1e-3)
    assert info_p["evaluations"] >= info_p["iterations"]


def test_without_a_bound_every_minimiser_finds_the_negative_minimum():
    rng = np.random.default_rng(1)
    target = rng.standard_normal((5, 8)).astype(np.float32)  # about half of it below 0
    scales = np.logspace(-1, 1, target.size).reshape(target.shape)

    def fun(x):
        d = np.asarray(x, np.float64) - target
        return float(np.sum(scales * d * d)), (2 * scales * d).astype(np.float32)

    x0 = np.ones_like(target)
    for minimise in (optimizers.projected_lbfgs, optimizers.lbfgs):
        x, _ = minimise(fun, x0, iterations=200, lower=None)
        np.testing.assert_allclose(x, target, atol=1e-3)
    np.testing.assert_array_equal(x0, np.ones_like(target))  # the start is not written to


def test_projected_lbfgs_without_a_bound_is_the_bound_at_minus_infinity():
    """No bound skips the projection and the free-variable mask; the iterates are the same to the bit."""
    rng = np.random.default_rng(2)
    A = rng.standard_normal((30, 30))
    A = A @ A.T + 0.1 * np.eye(30)
    b = rng.standard_normal(30)

    def fun(x):
        x64 = np.asarray(x, np.float64)
        return float(0.5 * x64 @ A @ x64 - b @ x64), (A @ x64 - b).astype(np.float32)

    x0 = np.zeros(30, np.float32)
    x_none, info_none = optimizers.projected_lbfgs(fun, x0, iterations=25, lower=None)
    x_inf, info_inf = optimizers.projected_lbfgs(fun, x0, iterations=25, lower=-np.inf)
    np.testing.assert_array_equal(x_none, x_inf)
    np.testing.assert_array_equal(info_none["history"], info_inf["history"])
    assert info_none["iterations"] == info_inf["iterations"] > 5 and x_none.min() < 0
