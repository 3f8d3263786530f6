"""Minimisers for the style-transfer objectives: SciPy's L-BFGS-B and a plain Adam.

Both take ``fun(x) -> (loss, grad)`` on the backend's float32 arrays and keep the
variable non-negative (a log1p magnitude cannot be negative). L-BFGS-B works on a
float64 copy of the variable, as SciPy requires; the conversion happens here, at
the boundary, and nowhere in the hot loop.
"""

import numpy as np
import scipy.optimize

from .errors import NumericalError
from .kernels import array_module
from .validation import check_float, check_int


class _Tracker:
    """Counts evaluations, remembers the losses, reports each iteration and decides when to stop.

    Stopping rule: after iteration ``i >= window``, stop when the loss fell by less than
    ``tolerance`` (relative to the current loss) over the last ``window`` iterations,
    ``loss[i - window] - loss[i] < tolerance * |loss[i]|``. ``tolerance=0`` never stops early.
    """

    def __init__(self, callback, tolerance=0.0, window=20, remedy="lower alpha"):
        self.callback = callback
        self.remedy = remedy
        self.tolerance = check_float("tolerance", tolerance, minimum=0.0)
        self.window = check_int("tolerance_window", window, minimum=1)
        self.evaluations = 0
        self.iterations = 0
        self.loss = np.nan
        self.history = []
        self.converged = False

    def evaluated(self, loss):
        self.evaluations += 1
        self.loss = loss

    def step(self):
        """Record a finished iteration; True when the stopping rule says enough.

        Raises
        ------
        NumericalError
            The iteration's loss is not finite: the run diverged, and its result would be noise
            or NaN. (Trial points of a line search may overflow; accepted iterates may not.)
        """
        if not np.isfinite(self.loss):
            raise NumericalError(f"the optimizer diverged at iteration {self.iterations + 1} (loss {self.loss}); "
                                 f"{self.remedy}")
        self.iterations += 1
        self.history.append(self.loss)
        if self.callback is not None:
            self.callback(self.iterations, self.loss)
        if self.tolerance > 0 and len(self.history) > self.window:
            then, now = self.history[-1 - self.window], self.history[-1]
            self.converged = bool(then - now < self.tolerance * abs(now))
        return self.converged


def lbfgs(fun, x0, *, iterations, lower=0.0, tolerance=0.0, tolerance_window=20, to_numpy=np.asarray,
          callback=None):
    """Minimise with SciPy's L-BFGS-B.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> (loss, grad)``; x and grad have the shape of ``x0``.
    x0 : np.ndarray
        Starting point (any shape).
    iterations : int
        Maximum L-BFGS-B iterations.
    lower : float or None
        Lower bound on every element.
    tolerance : float
        Stop early when the loss fell by less than ``tolerance`` (relative) over the
        last ``tolerance_window`` iterations; 0 runs all ``iterations``.
    tolerance_window : int
    to_numpy : callable
        Brings the backend's gradient to the host.
    callback : callable or None
        ``callback(iteration, loss)`` after every iteration.

    Returns
    -------
    x : np.ndarray, shape of ``x0``, float32
    info : dict
        ``loss`` (last evaluated; NaN if none), ``iterations``, ``evaluations``,
        ``history`` (loss after each iteration), ``converged`` (stopped by the tolerance).
    """
    iterations = check_int("iterations", iterations, minimum=0)
    shape = x0.shape
    tracker = _Tracker(callback, tolerance, tolerance_window)

    def fun64(x):
        loss, grad = fun(x.reshape(shape).astype(np.float32))
        tracker.evaluated(loss)
        return loss, to_numpy(grad).astype(np.float64).ravel()

    x = np.asarray(x0, dtype=np.float64).ravel()
    if iterations > 0:
        bounds = None if lower is None else scipy.optimize.Bounds(lower, np.inf)
        with _overflow_is_checked():
            result = scipy.optimize.minimize(
                fun64, x, jac=True, method="L-BFGS-B", bounds=bounds,
                callback=_stop_when(tracker.step),
                # maxfun well above maxiter: the line search may need a few evaluations per step.
                options={"maxiter": iterations, "maxfun": 2 * iterations + 20},
            )
        x = result.x
        tracker.loss = float(result.fun)
    return _finish(x.reshape(shape), tracker)


def adam(fun, x0, *, iterations, learning_rate=0.03, beta1=0.9, beta2=0.999, eps=1e-8, lower=0.0,
         tolerance=0.0, tolerance_window=20, xp=np, callback=None):
    """Minimise with Adam (Kingma & Ba), projecting onto ``x >= lower`` after each step.

    Parameters
    ----------
    fun, x0, iterations, lower, tolerance, tolerance_window, callback
        As in :func:`lbfgs`.
    learning_rate : float
        Step size (0.03, as in the Adam baselines of the audio style-transfer papers).
    beta1, beta2, eps : float
        Adam's moment decay rates and denominator guard.
    xp : module
        Array module of the backend (numpy or cupy); the state stays on the device.

    Returns
    -------
    x : np.ndarray, float32
    info : dict
    """
    iterations = check_int("iterations", iterations, minimum=0)
    learning_rate = check_float("learning_rate", learning_rate, minimum=0.0, strict_minimum=True)
    tracker = _Tracker(callback, tolerance, tolerance_window,
                       remedy=f"lower the learning rate (now {learning_rate:g})")
    x = xp.asarray(x0, dtype=xp.float32).copy()
    m = xp.zeros_like(x)
    v = xp.zeros_like(x)
    with _overflow_is_checked():
        for t in range(1, iterations + 1):
            loss, grad = fun(x)
            tracker.evaluated(loss)
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * grad * grad
            step = learning_rate * np.sqrt(1 - beta2**t) / (1 - beta1**t)
            x -= step * m / (xp.sqrt(v) + eps)
            if lower is not None:
                xp.maximum(x, lower, out=x)
            if tracker.step():
                break
    return _finish(x, tracker)


def _line_search(fun, tracker, x, f, g, direction, slope, lower, xp, dot, max_evaluations=20):
    """Weak-Wolfe search along the projected path ``max(x + t d, lower)`` (the line ``x + t d`` if lower is None).

    Backtracks (halves t) until the Armijo condition holds for the distance actually moved;
    if the very first trial already holds but the slope along d is still steep (curvature
    condition, c2 = 0.9), doubles t instead, keeping the best point: the first iterations,
    whose unit-length step is far too short, then grow quickly, as in L-BFGS-B's line search.

    Returns
    -------
    (x_new, f_new, g_new) or None when no decrease was found.
    """
    step, best, growing = 1.0, None, True
    for _ in range(max_evaluations):
        x_new = x + step * direction
        if lower is not None:
            xp.maximum(x_new, lower, out=x_new)
        f_new, g_new = fun(x_new)
        tracker.evaluated(f_new)
        armijo = f_new <= f + 1e-4 * dot(g, x_new - x)
        if armijo and (best is None or f_new < best[1]):
            best = (x_new, f_new, g_new)
        if not armijo:
            if best is not None:
                return best  # the previous, shorter step was the last good one
            growing = False
            step *= 0.5
        elif not growing or dot(g_new, direction) >= 0.9 * slope:
            return best
        else:
            step *= 2.0
    return best


def _overflow_is_checked():
    """Silence numpy's overflow warnings in an optimizer loop, whose tracker reports divergence instead.

    A diverging run overflows float32 somewhere in the objective; the warning would say so
    in numpy's words, mid-progress-bar, and the run would go on to write noise. The tracker
    checks every accepted loss and raises :class:`NumericalError` with a remedy instead.
    """
    return np.errstate(over="ignore", invalid="ignore")


def _stop_when(step):
    """An L-BFGS-B callback that runs ``step`` and ends the run when it returns True."""
    def callback(xk):
        if step():
            raise StopIteration  # SciPy >= 1.11 ends the minimisation and returns this iterate
    return callback


def _finish(x, tracker):
    if tracker.evaluations and not np.isfinite(tracker.loss):
        raise NumericalError(f"the optimizer ended on a loss of {tracker.loss} after {tracker.iterations} "
                             f"iterations; {tracker.remedy}")
    xp = array_module(x)
    if not bool(xp.all(xp.isfinite(x))):  # the last step itself may overflow after a finite loss
        raise NumericalError(f"the optimizer's result stopped being finite after {tracker.iterations} iterations; "
                             f"{tracker.remedy}")
    info = {"loss": tracker.loss, "iterations": tracker.iterations, "evaluations": tracker.evaluations,
            "history": np.asarray(tracker.history), "converged": tracker.converged}
    return x.astype(np.float32), info  # numpy or cupy alike


def _two_loop(q, pairs, free, bounded, free_norm, dot):
    """L-BFGS's two-loop recursion on the free variables only (the reduced quasi-Newton matrix), in place on
    ``q`` (the gradient, 0 on the frozen variables): the quasi-Newton step, to be negated.

    Each pair's curvature is measured on the free variables and the pair kept only if it is
    positive. ``q`` stays 0 on the frozen variables, so plain products with it are free-variable
    ones and no masked copy of the history is kept.
    """
    reduced = []  # (s, y, 1 / (s.y)_free, (y.y)_free)
    for s, y, _ in pairs:
        y_free = y * free if bounded else y
        sy, yy = dot(s, y_free), dot(y_free, y_free)
        if sy > 1e-10 * yy:
            reduced.append((s, y, 1.0 / sy, yy))
    alphas = []
    for s, y, rho, _ in reversed(reduced):
        a = rho * dot(s, q)
        q -= a * y
        if bounded:
            q *= free
        alphas.append(a)
    if reduced:
        _, _, rho, yy = reduced[-1]
        q *= 1.0 / (rho * yy)
    else:
        q /= free_norm  # first step: unit length, as SciPy's L-BFGS-B
    for (s, y, rho, _), a in zip(reduced, reversed(alphas)):
        q += s * (a - rho * dot(y, q))
        if bounded:
            q *= free
    return q


def projected_lbfgs(fun, x0, *, iterations, lower=0.0, memory=10, tolerance=0.0, tolerance_window=20, xp=np,
                    callback=None):
    """L-BFGS with the bound ``x >= lower`` (if any) handled by projection, on the backend's float32 arrays.

    A light stand-in for SciPy's L-BFGS-B: variables at the bound whose gradient pushes
    outwards are frozen for the step; the two-loop recursion, with the correction pairs
    restricted to the free variables (the reduced quasi-Newton matrix), gives the direction
    on the rest; a weak-Wolfe line search along the projected path (see
    :func:`_line_search`) picks the step. Everything stays in the backend's arrays (no float64 host copy), so
    an iteration costs a few vector passes instead of SciPy's ~0.1 s per 10 s of audio.

    Parameters
    ----------
    fun, x0, iterations, lower, tolerance, tolerance_window, callback
        As in :func:`lbfgs`.
    memory : int
        Correction pairs kept (SciPy's ``maxcor``, default 10).
    xp : module
        Array module of the backend.

    Returns
    -------
    x : array, float32
    info : dict
        As :func:`lbfgs`.
    """
    iterations = check_int("iterations", iterations, minimum=0)
    memory = check_int("memory", memory, minimum=1)
    tracker = _Tracker(callback, tolerance, tolerance_window)
    bounded = lower is not None
    x = xp.maximum(xp.asarray(x0, dtype=xp.float32), lower) if bounded else xp.array(x0, dtype=xp.float32)
    f, g = fun(x)
    tracker.evaluated(f)
    pairs = []  # (s, y, 1 / y.s), oldest first

    def dot(a, b):
        return float(xp.vdot(a.ravel(), b.ravel()))

    with _overflow_is_checked():
        for _ in range(iterations):
            if bounded:
                frozen = (x <= lower) & (g > 0)
                # 1 on the free variables, 0 on the frozen: masking by this product is one vector pass, where a
                # boolean index or xp.where takes ~20x as long (a branch per element; 75 ms an iteration at 6 s).
                free = (~frozen).astype(x.dtype)
                q = xp.where(frozen, 0, g)  # once: exact zeros even where g is not finite
            else:  # every variable is free: no mask to apply
                free, q = 1, g.copy()
            free_norm = np.sqrt(dot(q, q))
            if free_norm == 0:
                break  # stationary: no free variable has a gradient
            steepest = q / free_norm
            q = _two_loop(q, pairs, free, bounded, free_norm, dot)
            direction = -q
            slope = dot(g, direction)
            if slope >= 0:  # the curvature pairs went stale: restart from steepest descent
                pairs.clear()
                direction = -steepest
                slope = -free_norm
            accepted = _line_search(fun, tracker, x, f, g, direction, slope, lower, xp, dot)
            if accepted is None:
                break  # no decrease along this direction: converged as far as float32 allows
            x_new, f_new, g_new = accepted
            s, y = x_new - x, g_new - g
            sy = dot(s, y)
            if sy > 1e-10 * dot(y, y):  # keep only pairs with positive curvature
                pairs.append((s, y, 1.0 / sy))
                if len(pairs) > memory:
                    pairs.pop(0)
            x, f, g = x_new, f_new, g_new
            tracker.loss = f
            if tracker.step():
                break
    tracker.loss = f
    return _finish(x, tracker)
