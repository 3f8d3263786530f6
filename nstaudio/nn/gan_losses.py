"""MelGAN-VC's losses, each ``value, gradient(s) = loss(...)`` (float64 values, gradients in the input's dtype).

- critic: hinge, ``(mean(max(1 - D(b), 0)) + mean(max(1 + D(G(a)), 0))) / 2``;
- generator: ``-mean(D(G(a)))``;
- identity: ``mean|G(b) - b|``;
- TraVeL (transformation vector learning): with ``t = S(a1) - S(a3)`` and ``t' = S(G(a1)) - S(G(a3))``,
  ``mean((t - t')^2) - mean_i cos(t_i, t'_i)``: the generator keeps the siamese network's
  vector between two thirds, in length and direction;
- siamese margin: ``mean_i max(m - ||t_i||, 0)^2``, so that the siamese vectors do not collapse.
"""

import numpy as np

from ..kernels import array_module

EPS = 1e-12


def _mean(x):
    return float(x.astype(np.float64).mean())


def hinge_critic(real, fake):
    """Critic's hinge loss on its scores of style crops ``real`` and generated crops ``fake`` (each (B, 1)).

    Returns
    -------
    value : float
    d_real, d_fake : arrays of the scores' shapes
    """
    xp = array_module(real)
    over_real, over_fake = 1 - real, 1 + fake
    value = (_mean(xp.maximum(over_real, 0)) + _mean(xp.maximum(over_fake, 0))) / 2
    d_real = -(over_real > 0).astype(real.dtype) / (2 * real.size)
    d_fake = (over_fake > 0).astype(fake.dtype) / (2 * fake.size)
    return value, d_real, d_fake


def generator_adversarial(fake):
    """``-mean(D(G(a)))`` and its gradient with respect to the scores (B, 1)."""
    return -_mean(fake), array_module(fake).full(fake.shape, -1.0 / fake.size, dtype=fake.dtype)


def identity(generated, target):
    """``mean|generated - target|`` and its gradient with respect to ``generated``."""
    diff = generated - target
    return _mean(array_module(diff).abs(diff)), (array_module(diff).sign(diff) / diff.size).astype(generated.dtype)


def _norms(t):
    return array_module(t).sqrt((t.astype(np.float64) ** 2).sum(axis=1, keepdims=True))


def travel(t, t_generated):
    """TraVeL: ``mean((t - t')^2) - mean_i cos(t_i, t'_i)`` for vectors (B, D).

    Returns
    -------
    value : float
    d_t, d_t_generated : arrays (B, D)
    """
    B = t.shape[0]
    diff = (t - t_generated).astype(np.float64)
    na, nb = _norms(t) + EPS, _norms(t_generated) + EPS
    a, b = t.astype(np.float64), t_generated.astype(np.float64)
    cos = (a * b).sum(axis=1, keepdims=True) / (na * nb)
    value = float((diff**2).mean()) - float(cos.mean())
    d_square = 2 * diff / diff.size
    d_a = b / (na * nb) - cos * a / na**2
    d_b = a / (na * nb) - cos * b / nb**2
    return value, (d_square - d_a / B).astype(t.dtype), (-d_square - d_b / B).astype(t.dtype)


def siamese_margin(t, margin=2.0):
    """``mean_i max(margin - ||t_i||, 0)^2`` for vectors (B, D), and its gradient (B, D)."""
    norms = _norms(t) + EPS
    short = array_module(t).maximum(margin - norms, 0)
    value = float((short**2).mean())
    grad = -2 * short * t.astype(np.float64) / norms / t.shape[0]
    return value, grad.astype(t.dtype)
