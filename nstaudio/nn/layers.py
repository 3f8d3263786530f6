"""Layers over (batch, channels, time) arrays: 1-D convolution, transposed convolution, ReLU, BatchNorm, Gram.

Shapes: x is (B, C, T) with frequency bins (or features) as channels and frames as time.
Each backward is checked against central finite differences in ``tests/test_nn_layers.py``.
"""

import numpy as np

from ..errors import ParameterError
from ..validation import check_int


def _windows(x, width, stride):
    """(B, C, T) -> (B, C, T_out, width) view of the strided windows."""
    return np.lib.stride_tricks.sliding_window_view(x, width, axis=2)[:, :, ::stride, :]


def _scatter_windows(dwin, stride, length):
    """Adjoint of :func:`_windows`: (B, C, T_out, width) -> (B, C, length), summing overlaps."""
    B, C, T_out, width = dwin.shape
    out = np.zeros((B, C, length), dtype=dwin.dtype)
    for k in range(width):
        out[:, :, k:k + stride * (T_out - 1) + 1:stride] += dwin[:, :, :, k]
    return out


class Conv1d:
    """1-D convolution (cross-correlation) over time, channels mixed.

    Parameters (``params``): ``W`` (C_out, C_in, K), ``b`` (C_out,).
    ``y[b, o, t] = b[o] + sum_{c,k} W[o, c, k] * x_pad[b, c, t*stride + k]``,
    ``T_out = (T + 2 padding - K) // stride + 1``.
    """

    def __init__(self, in_channels, out_channels, width, *, stride=1, padding=0):
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.out_channels = check_int("out_channels", out_channels, minimum=1)
        self.width = check_int("width", width, minimum=1)
        self.stride = check_int("stride", stride, minimum=1)
        self.padding = check_int("padding", padding, minimum=0)

    def init_params(self, rng, dtype=np.float32):
        """He-normal weights (the ReLU follows), zero bias."""
        fan_in = self.in_channels * self.width
        W = rng.standard_normal((self.out_channels, self.in_channels, self.width)) * np.sqrt(2.0 / fan_in)
        return {"W": W.astype(dtype), "b": np.zeros(self.out_channels, dtype=dtype)}

    def output_length(self, T):
        return (T + 2 * self.padding - self.width) // self.stride + 1

    def forward(self, params, x):
        """x (B, C_in, T) -> y (B, C_out, T_out)."""
        if x.shape[2] + 2 * self.padding < self.width:
            raise ParameterError(f"input of {x.shape[2]} frames is shorter than the filter width {self.width}")
        x_pad = np.pad(x, ((0, 0), (0, 0), (self.padding, self.padding)))
        win = _windows(x_pad, self.width, self.stride)
        y = np.tensordot(win, params["W"], axes=([1, 3], [1, 2])).transpose(0, 2, 1)
        y = y + params["b"][None, :, None]
        return np.ascontiguousarray(y, dtype=x.dtype), (win, x_pad.shape[2])

    def backward(self, params, cache, dy):
        """dy (B, C_out, T_out) -> dx (B, C_in, T), grads {W, b}."""
        win, padded_length = cache
        dW = np.tensordot(dy, win, axes=([0, 2], [0, 2]))
        db = dy.sum(axis=(0, 2))
        dwin = np.tensordot(dy, params["W"], axes=([1], [0])).transpose(0, 2, 1, 3)
        dx = _scatter_windows(dwin, self.stride, padded_length)
        dx = dx[:, :, self.padding:padded_length - self.padding]
        return dx.astype(dy.dtype, copy=False), {"W": dW.astype(dy.dtype), "b": db.astype(dy.dtype)}


class ConvTranspose1d:
    """Transposed 1-D convolution: the adjoint of :class:`Conv1d` in its input, plus a bias.

    Parameters: ``W`` (C_in, C_out, K) (torch's layout), ``b`` (C_out,).
    ``T_out = (T - 1) stride - 2 padding + K + output_padding``.
    """

    def __init__(self, in_channels, out_channels, width, *, stride=1, padding=0, output_padding=0):
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.out_channels = check_int("out_channels", out_channels, minimum=1)
        self.width = check_int("width", width, minimum=1)
        self.stride = check_int("stride", stride, minimum=1)
        self.padding = check_int("padding", padding, minimum=0)
        self.output_padding = check_int("output_padding", output_padding, minimum=0, maximum=self.stride - 1)

    def init_params(self, rng, dtype=np.float32):
        fan_in = self.in_channels * self.width // self.stride
        W = rng.standard_normal((self.in_channels, self.out_channels, self.width)) * np.sqrt(2.0 / max(fan_in, 1))
        return {"W": W.astype(dtype), "b": np.zeros(self.out_channels, dtype=dtype)}

    def output_length(self, T):
        return (T - 1) * self.stride - 2 * self.padding + self.width + self.output_padding

    def forward(self, params, x):
        """x (B, C_in, T) -> y (B, C_out, T_out)."""
        T = x.shape[2]
        full_length = (T - 1) * self.stride + self.width + self.output_padding
        dwin = np.tensordot(x, params["W"], axes=([1], [0])).transpose(0, 2, 1, 3)  # (B, C_out, T, K)
        full = _scatter_windows(dwin, self.stride, full_length)
        y = full[:, :, self.padding:full_length - self.padding] + params["b"][None, :, None]
        return np.ascontiguousarray(y, dtype=x.dtype), (x, full_length)

    def backward(self, params, cache, dy):
        """dy (B, C_out, T_out) -> dx (B, C_in, T), grads {W, b}."""
        x, full_length = cache
        dfull = np.zeros(dy.shape[:2] + (full_length,), dtype=dy.dtype)
        dfull[:, :, self.padding:full_length - self.padding] = dy
        win = _windows(dfull, self.width, self.stride)[:, :, :x.shape[2], :]  # (B, C_out, T, K)
        dx = np.tensordot(win, params["W"], axes=([1, 3], [1, 2])).transpose(0, 2, 1)
        dW = np.tensordot(x, win, axes=([0, 2], [0, 2]))  # (C_in, C_out, K)
        db = dy.sum(axis=(0, 2))
        return np.ascontiguousarray(dx, dtype=dy.dtype), {"W": dW.astype(dy.dtype), "b": db.astype(dy.dtype)}


class ReLU:
    """``max(x, 0)``; no parameters."""

    def init_params(self, rng, dtype=np.float32):
        return {}

    def forward(self, params, x):
        y = np.maximum(x, 0)
        return y, y > 0

    def backward(self, params, cache, dy):
        return dy * cache, {}


class BatchNorm1d:
    """Batch normalisation per channel over (batch, time), with running statistics for eval mode.

    Parameters: ``gamma``, ``beta`` (C,). State (not trained): ``running_mean``, ``running_var``.
    ``training`` chooses batch statistics (and updates the running ones) or the running ones.
    """

    def __init__(self, channels, *, momentum=0.1, eps=1e-5):
        self.channels = check_int("channels", channels, minimum=1)
        self.momentum = momentum
        self.eps = eps
        self.training = True

    def init_params(self, rng, dtype=np.float32):
        return {"gamma": np.ones(self.channels, dtype), "beta": np.zeros(self.channels, dtype)}

    def init_state(self, dtype=np.float32):
        return {"running_mean": np.zeros(self.channels, dtype), "running_var": np.ones(self.channels, dtype)}

    def forward(self, params, x, state=None):
        """x (B, C, T) -> y; in training mode updates ``state`` (if given) in place."""
        if self.training:
            mean = x.mean(axis=(0, 2), dtype=np.float64)
            var = x.var(axis=(0, 2), dtype=np.float64)
            if state is not None:
                n = x.shape[0] * x.shape[2]
                unbiased = var * n / max(n - 1, 1)
                state["running_mean"] *= 1 - self.momentum
                state["running_mean"] += self.momentum * mean.astype(x.dtype)
                state["running_var"] *= 1 - self.momentum
                state["running_var"] += self.momentum * unbiased.astype(x.dtype)
        else:
            mean, var = state["running_mean"].astype(np.float64), state["running_var"].astype(np.float64)
        inv_std = 1.0 / np.sqrt(var + self.eps)
        x_hat = ((x - mean[None, :, None]) * inv_std[None, :, None]).astype(x.dtype)
        y = params["gamma"][None, :, None] * x_hat + params["beta"][None, :, None]
        return y.astype(x.dtype), (x_hat, inv_std.astype(x.dtype), self.training)

    def backward(self, params, cache, dy):
        x_hat, inv_std, training = cache
        dgamma = np.sum(dy * x_hat, axis=(0, 2))
        dbeta = np.sum(dy, axis=(0, 2))
        g = (params["gamma"] * inv_std)[None, :, None]
        if training:
            n = dy.shape[0] * dy.shape[2]
            dx = g * (dy - dbeta[None, :, None] / n - x_hat * dgamma[None, :, None] / n)
        else:
            dx = g * dy
        return dx.astype(dy.dtype), {"gamma": dgamma.astype(dy.dtype), "beta": dbeta.astype(dy.dtype)}


def gram(F):
    """Gram matrices ``F F^T / T`` per batch item: (B, C, T) -> (B, C, C), with its cache."""
    return np.matmul(F, F.transpose(0, 2, 1)) / F.shape[2], F  # matmul: batched BLAS, unlike einsum


def gram_backward(cache, dG):
    """``dF = (dG + dG^T) F / T`` for :func:`gram`."""
    F = cache
    return np.matmul(dG + dG.transpose(0, 2, 1), F) / F.shape[2]
