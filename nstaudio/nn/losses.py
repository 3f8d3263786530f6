"""Losses of the feedforward method, each ``value, grad = loss(prediction, target)``."""

import numpy as np


def mse(prediction, target):
    """Mean squared error and its gradient with respect to ``prediction`` (any shape)."""
    diff = prediction.astype(np.float64) - target
    return float(np.mean(diff**2)), (2.0 * diff / diff.size).astype(prediction.dtype)
