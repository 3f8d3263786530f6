"""Layers over (batch, channels, time) arrays: 1-D convolution, transposed convolution, activations,
BatchNorm, nearest upsampling, dense, Gram.

Shapes: x is (B, C, T) with frequency bins (or features) as channels and frames as time.
Each backward is checked against central finite differences in ``tests/test_nn_layers.py``.

Layers that run hand-written kernels (the convolutions' windows) take a ``backend`` (a module
from ``nstaudio.kernels.get_backend``, default the cpu one) and work on its arrays: numpy for
``cpu`` and ``numpy``, CuPy for ``cuda``; the others work on either.

Every ``forward`` takes an optional ``scratch`` (a ``kernels.cpu.Scratch`` section) for passes
that need no backward: its outputs and temporaries are then reused buffers, valid until the
next pass with the same scratch, and the returned cache must not be used.
"""

import numpy as np

from ..errors import ParameterError
from ..kernels import array_module, cpu as _cpu
from ..validation import check_float, check_int


def _array(backend, scratch, name, shape, dtype):
    """A reused buffer from ``scratch``, else a fresh array of the backend (which a cache may keep)."""
    return backend.xp.empty(shape, dtype) if scratch is None else scratch.get(name, shape, dtype)


# The layers keep activations channel-major: a (B, C, T) activation is a view of a contiguous
# (C, T per item, batch folded in) array, so that a layer's whole batch is one GEMM's columns,
# (C K, B T), with no copy (elementwise layers keep that layout).

def _windows(backend, x, width, stride, padding, T_out, scratch=None):
    """The im2col matrix of the whole batch, (C width, B T_out), of the zero-padded x (B, C, T): its
    windows written channel-major, (C, width, B, T_out), by a kernel (no padded copy of x)."""
    B, C, _ = x.shape
    out = _array(backend, scratch, "cols", (C, width, B, T_out), x.dtype)
    backend.strided_windows_channel_major(x.transpose(1, 0, 2), width, stride, padding, out)
    return out.reshape(C * width, B * T_out)


def _overlap(backend, cols, B, width, stride, padding, length, bias=None, scratch=None):
    """Adjoint of :func:`_windows`: columns (C width, B T) into ``length`` frames, plus a bias per
    channel (a kernel); a channel-major (B, C, length) view."""
    C, T = cols.shape[0] // width, cols.shape[1] // B
    out = _array(backend, scratch, "y", (C, B, length), cols.dtype)
    bias = backend.xp.zeros(C, cols.dtype) if bias is None else bias.astype(cols.dtype, copy=False)
    backend.overlap_windows_channel_major(cols.reshape(C, width, B, T), stride, padding, bias, out)
    return out.transpose(1, 0, 2)


def _fold(backend, a, scratch=None, name="fold"):
    """(B, R, T) -> (R, B T): the batch folded into the columns, so that a layer is one large GEMM
    instead of B small ones (a copy, unless ``a`` is one item or a channel-major view)."""
    B, R, T = a.shape
    channel_major = a.transpose(1, 0, 2)
    if B == 1 or channel_major.flags.c_contiguous:
        return channel_major.reshape(R, B * T)
    out = _array(backend, scratch, name, (R, B, T), a.dtype)
    out[...] = channel_major
    return out.reshape(R, B * T)


class Conv1d:
    """1-D convolution (cross-correlation) over time, channels mixed.

    Parameters (``params``): ``W`` (C_out, C_in, K), ``b`` (C_out,).
    ``y[b, o, t] = b[o] + sum_{c,k} W[o, c, k] * x_pad[b, c, t*stride + k]``,
    ``T_out = (T + 2 padding - K) // stride + 1``. One GEMM on the im2col columns of the whole batch.
    ``causal=True`` pads ``K - 1`` zeros before the input and none after (``padding`` is then
    ignored): output ``t`` sees inputs up to ``t*stride``, and ``T_out = (T - 1) // stride + 1``.
    """

    def __init__(self, in_channels, out_channels, width, *, stride=1, padding=0, causal=False, backend=None):
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.out_channels = check_int("out_channels", out_channels, minimum=1)
        self.width = check_int("width", width, minimum=1)
        self.stride = check_int("stride", stride, minimum=1)
        self.causal = bool(causal)
        # the windows kernels pad both ends alike: a causal layer pads K - 1 and stops its output
        # before the windows would reach the padding after the input
        self.padding = self.width - 1 if self.causal else check_int("padding", padding, minimum=0)
        self.backend = _cpu if backend is None else backend

    def init_params(self, rng, dtype=np.float32):
        """He-normal weights (the ReLU follows), zero bias."""
        fan_in = self.in_channels * self.width
        W = rng.standard_normal((self.out_channels, self.in_channels, self.width)) * np.sqrt(2.0 / fan_in)
        return {"W": W.astype(dtype), "b": np.zeros(self.out_channels, dtype=dtype)}

    def output_length(self, T):
        if self.causal:
            return (T - 1) // self.stride + 1
        return (T + 2 * self.padding - self.width) // self.stride + 1

    def windows(self, x, scratch=None):
        """The im2col matrix of x (B, C_in, T): (C_in width, B T_out), what :meth:`forward` multiplies the
        weights, (C_out, C_in width), by."""
        return _windows(self.backend, x, self.width, self.stride, self.padding, self.output_length(x.shape[2]),
                        scratch)

    def forward(self, params, x, scratch=None, cols=None):
        """x (B, C_in, T) -> y (B, C_out, T_out). ``cols``: x's im2col matrix, :meth:`windows`' (made once for
        the groups of output channels a stream computes, each its own product)."""
        if x.shape[2] + 2 * self.padding < self.width:
            raise ParameterError(f"input of {x.shape[2]} frames is shorter than the filter width {self.width}")
        B, C, T = x.shape
        T_out = self.output_length(T)
        if cols is None:
            cols = self.windows(x, scratch)
        W = params["W"].astype(x.dtype, copy=False)
        C_out = W.shape[0]  # out_channels, or the rows of them that W holds (a stream's pieces)
        y = self.backend.matmul(W.reshape(C_out, -1), cols,
                                out=_array(self.backend, scratch, "y", (C_out, B * T_out), x.dtype))
        y = y.reshape(C_out, B, T_out).transpose(1, 0, 2)
        y += params["b"].astype(x.dtype, copy=False)[:, None]
        return y, (cols, T)

    def backward(self, params, cache, dy, *, need_input=True, need_params=True):
        """dy (B, C_out, T_out) -> dx (B, C_in, T), grads {W, b}.

        ``need_input=False`` skips dx (None: a network's first layer), ``need_params=False`` the
        grads ({}: a network that does not train in this step); each is one GEMM.
        """
        cols, T = cache  # (C_in K, B T_out)
        B, _, T_out = dy.shape
        W = params["W"].astype(dy.dtype, copy=False).reshape(self.out_channels, -1)
        dy_folded = _fold(self.backend, dy)
        grads = {}
        if need_params:
            dW = self.backend.matmul(dy_folded, cols.astype(dy.dtype, copy=False).T)
            grads = {"W": dW.reshape(params["W"].shape), "b": dy.sum(axis=(0, 2))}
        if not need_input:
            return None, grads
        dcols = self.backend.matmul(W.T, dy_folded)
        return _overlap(self.backend, dcols, B, self.width, self.stride, self.padding, T), grads


class ConvTranspose1d:
    """Transposed 1-D convolution: the adjoint of :class:`Conv1d` in its input, plus a bias.

    Parameters: ``W`` (C_in, C_out, K) (torch's layout), ``b`` (C_out,).
    ``y_full[b, o, t*stride + k] += sum_c W[c, o, k] x[b, c, t]``, then ``padding`` frames are
    cut from each end of ``y_full`` and the bias is added;
    ``T_out = (T - 1) stride - 2 padding + K + output_padding``. ``causal=True`` cuts nothing
    from the start and keeps ``T_out = T stride`` frames (``padding`` and ``output_padding`` are
    then ignored): output ``t`` sees inputs up to ``t // stride``.
    """

    def __init__(self, in_channels, out_channels, width, *, stride=1, padding=0, output_padding=0, causal=False,
                 backend=None):
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.out_channels = check_int("out_channels", out_channels, minimum=1)
        self.width = check_int("width", width, minimum=1)
        self.stride = check_int("stride", stride, minimum=1)
        self.causal = bool(causal)
        self.padding = 0 if self.causal else check_int("padding", padding, minimum=0)
        self.output_padding = 0 if self.causal else check_int("output_padding", output_padding, minimum=0,
                                                               maximum=self.stride - 1)
        self.backend = _cpu if backend is None else backend

    def init_params(self, rng, dtype=np.float32):
        fan_in = self.in_channels * self.width // self.stride
        W = rng.standard_normal((self.in_channels, self.out_channels, self.width)) * np.sqrt(2.0 / max(fan_in, 1))
        return {"W": W.astype(dtype), "b": np.zeros(self.out_channels, dtype=dtype)}

    def output_length(self, T):
        if self.causal:
            return T * self.stride
        return (T - 1) * self.stride - 2 * self.padding + self.width + self.output_padding

    def forward(self, params, x, scratch=None):
        """x (B, C_in, T) -> y (B, C_out, T_out)."""
        B, _, T = x.shape
        W = params["W"].astype(x.dtype, copy=False).reshape(self.in_channels, -1)
        dcols = self.backend.matmul(W.T, _fold(self.backend, x, scratch, "x_folded"),
                                    out=_array(self.backend, scratch, "cols", (W.shape[1], B * T), x.dtype))
        y = _overlap(self.backend, dcols, B, self.width, self.stride, self.padding, self.output_length(T), params["b"],
                     scratch)
        return y, x

    def backward(self, params, cache, dy):
        """dy (B, C_out, T_out) -> dx (B, C_in, T), grads {W, b}."""
        x = cache
        B, _, T = x.shape
        cols = _windows(self.backend, dy, self.width, self.stride, self.padding, T)  # (C_out K, B T)
        W = params["W"].astype(dy.dtype, copy=False).reshape(self.in_channels, -1)
        dx = self.backend.matmul(W, cols).reshape(self.in_channels, B, T).transpose(1, 0, 2)
        dW = self.backend.matmul(_fold(self.backend, x.astype(dy.dtype, copy=False)), cols.T).reshape(params["W"].shape)
        db = dy.sum(axis=(0, 2))
        return dx, {"W": dW, "b": db}


class ReLU:
    """``max(x, 0)``; no parameters."""

    def init_params(self, rng, dtype=np.float32):
        return {}

    def forward(self, params, x, scratch=None):
        y = array_module(x).maximum(x, 0, out=None if scratch is None else scratch.get("relu", x.shape, x.dtype))
        return y, (y > 0 if scratch is None else None)

    def backward(self, params, cache, dy):
        return dy * cache, {}


class LeakyReLU:
    """``x`` where positive, ``slope * x`` elsewhere (``max(x, slope x)`` for a slope in [0, 1]); no
    parameters (MelGAN-VC's slope: 0.2)."""

    def __init__(self, slope=0.2):
        self.slope = check_float("slope", slope, minimum=0.0, maximum=1.0)

    def init_params(self, rng, dtype=np.float32):
        return {}

    def forward(self, params, x, scratch=None):
        y = x * x.dtype.type(self.slope)
        array_module(x).maximum(x, y, out=y)
        return y, x > 0

    def backward(self, params, cache, dy):
        return array_module(dy).where(cache, dy, dy * dy.dtype.type(self.slope)), {}


class Tanh:
    """``tanh(x)``; no parameters."""

    def init_params(self, rng, dtype=np.float32):
        return {}

    def forward(self, params, x, scratch=None):
        y = array_module(x).tanh(x)
        return y, y

    def backward(self, params, cache, dy):
        return dy * (1 - cache * cache), {}


class Upsample1d:
    """Nearest-neighbour upsampling in time: every frame repeated ``factor`` times; no parameters."""

    def __init__(self, factor=2):
        self.factor = check_int("factor", factor, minimum=1)

    def init_params(self, rng, dtype=np.float32):
        return {}

    def forward(self, params, x, scratch=None):
        """x (B, C, T) -> y (B, C, factor T)."""
        return array_module(x).repeat(x, self.factor, axis=2), None

    def backward(self, params, cache, dy):
        """The adjoint: the sum over each frame's copies."""
        B, C, T = dy.shape
        return dy.reshape(B, C, T // self.factor, self.factor).sum(axis=3), {}


class Dense:
    """Fully connected layer on flattened inputs: ``y = x W^T + b``.

    Parameters: ``W`` (out_features, in_features), ``b`` (out_features,). Inputs of any shape
    (B, ...) are flattened to (B, in_features).
    """

    def __init__(self, in_features, out_features):
        self.in_features = check_int("in_features", in_features, minimum=1)
        self.out_features = check_int("out_features", out_features, minimum=1)

    def init_params(self, rng, dtype=np.float32):
        """He-uniform weights (as MelGAN-VC's), zero bias."""
        limit = np.sqrt(6.0 / self.in_features)
        W = rng.uniform(-limit, limit, (self.out_features, self.in_features))
        return {"W": W.astype(dtype), "b": np.zeros(self.out_features, dtype=dtype)}

    def forward(self, params, x, scratch=None):
        """x (B, ...) with in_features values per item -> y (B, out_features)."""
        flat = x.reshape(x.shape[0], -1)
        y = flat @ params["W"].astype(x.dtype, copy=False).T
        y += params["b"].astype(x.dtype, copy=False)
        return y, (flat, x.shape)

    def backward(self, params, cache, dy, *, need_input=True, need_params=True):
        """dy (B, out_features) -> dx (shape of x), grads {W, b} (either skipped as in :meth:`Conv1d.backward`)."""
        flat, shape = cache
        dx = (dy @ params["W"].astype(dy.dtype, copy=False)).reshape(shape) if need_input else None
        grads = {"W": dy.T @ flat.astype(dy.dtype, copy=False), "b": dy.sum(axis=0)} if need_params else {}
        return dx, grads


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

    def forward(self, params, x, state=None, scratch=None):
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
        inv_std = 1.0 / array_module(x).sqrt(var + self.eps)
        if scratch is not None:  # no backward: in place in one buffer, no x_hat kept
            y = array_module(x).subtract(x, mean[None, :, None], out=scratch.get("bn", x.shape, x.dtype))
            y *= (params["gamma"] * inv_std).astype(x.dtype)[None, :, None]
            y += params["beta"].astype(x.dtype, copy=False)[None, :, None]
            return y, None
        x_hat = ((x - mean[None, :, None]) * inv_std[None, :, None]).astype(x.dtype)
        y = params["gamma"][None, :, None] * x_hat + params["beta"][None, :, None]
        return y.astype(x.dtype), (x_hat, inv_std.astype(x.dtype), self.training)

    def backward(self, params, cache, dy):
        x_hat, inv_std, training = cache
        dgamma = (dy * x_hat).sum(axis=(0, 2))
        dbeta = dy.sum(axis=(0, 2))
        g = (params["gamma"] * inv_std)[None, :, None]
        if training:
            n = dy.shape[0] * dy.shape[2]
            dx = g * (dy - dbeta[None, :, None] / n - x_hat * dgamma[None, :, None] / n)
        else:
            dx = g * dy
        return dx.astype(dy.dtype), {"gamma": dgamma.astype(dy.dtype), "beta": dbeta.astype(dy.dtype)}


def gram(F):
    """Gram matrices ``F F^T / T`` per batch item: (B, C, T) -> (B, C, C), with its cache."""
    return (F @ F.transpose(0, 2, 1)) / F.shape[2], F  # matmul: batched BLAS, unlike einsum


def gram_backward(cache, dG):
    """``dF = (dG + dG^T) F / T`` for :func:`gram`."""
    F = cache
    return ((dG + dG.transpose(0, 2, 1)) @ F) / F.shape[2]
