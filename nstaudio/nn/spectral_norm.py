"""Spectral normalisation (Miyato et al. 2018): a weight divided by its largest singular value.

The layer uses ``W / sigma`` with ``sigma = u^T W v`` estimated by power iteration on the
weight seen as a matrix (its first axis against the rest). The vectors ``u`` and ``v`` are
state, not parameters: :func:`power_iteration` refines them once per training step (as
torch's ``spectral_norm`` and MelGAN-VC do), and every forward pass in between uses them as
constants, so a pass is a plain function of the weight and its gradient is exact for it
(``tests/test_gan.py`` checks it against finite differences).
"""


from ..kernels import array_module

EPS = 1e-12


def _matrix(W):
    return W.reshape(W.shape[0], -1)


def _unit(x):
    return x / (float(array_module(x).linalg.norm(x)) + EPS)


def init_state(W, rng):
    """Starting ``{"u", "v"}`` for the weight ``W`` (out, ...): a random ``u`` and one power iteration.

    Returns
    -------
    dict with ``u`` (out,) and ``v`` (prod of W.shape[1:],), the dtype of ``W``
    """
    u = rng.standard_normal(W.shape[0]).astype(W.dtype)
    u, v = power_iteration(W, u)
    return {"u": u, "v": v}


def power_iteration(W, u):
    """One power-iteration step from ``u``: ``v = W^T u / |.|``, ``u = W v / |.|``.

    Parameters
    ----------
    W : array, shape (out, ...)
    u : array, shape (out,)

    Returns
    -------
    u : array, shape (out,)
    v : array, shape (prod(W.shape[1:]),)
    """
    Wm = _matrix(W)
    v = _unit(Wm.T @ u)
    return _unit(Wm @ v), v


def problem(W, u, v, tolerance=1e-3):
    """What is wrong with spectral-norm vectors read from a file, or None: they must be unit vectors
    and give a finite, positive ``sigma = u^T W v`` (a forged zero vector would divide by 0)."""
    for name, x in (("u", u), ("v", v)):
        norm = float(array_module(x).linalg.norm(x))
        if not abs(norm - 1.0) <= tolerance:
            return f"{name} has norm {norm:.6g}, not 1"
    sigma = float(u @ (_matrix(W) @ v))
    if not 0.0 < sigma < float("inf"):
        return f"the spectral norm estimate is {sigma:.6g}, not positive"
    return None


def normalize(W, u, v):
    """``W / sigma`` with ``sigma = u^T W v``, and the cache for :func:`normalize_backward`."""
    sigma = float(u @ (_matrix(W) @ v))
    W_bar = W / W.dtype.type(sigma)
    return W_bar, (W_bar, u, v, sigma)


def normalize_backward(cache, dW_bar):
    """Gradient with respect to ``W`` from the one with respect to ``W / sigma`` (``u``, ``v`` held constant).

    ``d/dW = (dW_bar - <dW_bar, W_bar> u v^T) / sigma``.
    """
    W_bar, u, v, sigma = cache
    inner = float((dW_bar * W_bar).sum())
    dW = dW_bar.reshape(W_bar.shape[0], -1) / dW_bar.dtype.type(sigma)  # a new (out, rest) array
    dW -= dW.dtype.type(inner / sigma) * u[:, None] * v[None, :]
    return dW.reshape(W_bar.shape)
