"""A trained autoencoder run frame by frame: each new output frame from cached activations.

Every layer keeps the input frames its future outputs still need (its receptive field) and
computes an output frame as soon as the input frames under its filter are there, straight from
the weights and just those frames. Frames before the stream began are the zeros
the offline network's padding gives, so a stream of frames yields exactly the frames one
pass over the whole spectrogram would, only later: :meth:`IncrementalNetwork.available`
says how much later (the look-ahead the architecture needs).

Each output frame is its own matrix product, whatever number of frames a call brings: the
rounding of a product depends on its shape, so the frames (and the phase reconstruction that
follows them, which carries rounding differences far) do not depend on the block size.

A live stream computes a frame of a layer every few milliseconds, so the layers keep their
frames time-major, ``(frames, channels, batch)``: the frames under a filter are then one
contiguous block, which is the product's right-hand side as it lies (the weights are reordered
to match once); the product is the backend's ``frame_product`` (numba's: one thread, no BLAS
dispatch), and ReLU and BatchNorm run in place on its output.
"""

import numpy as np

from ..nn.autoencoder import Autoencoder
from ..nn.layers import Conv1d

_UNLIMITED = np.iinfo(np.int64).max


def _nonnegative(x):
    """``max(0, x)`` for a count or an array of them."""
    return np.maximum(0, x) if isinstance(x, np.ndarray) else max(0, x)


class _IncrementalLayer:
    """What both layers keep: the input frames their next outputs need, time-major, from frame ``first`` on
    (frames before 0 are the zeros a whole pass pads with), and how many outputs they gave.

    Subclasses give ``stride``, ``width``, ``out_channels``, ``zeros_before`` (input frames before 0 that
    outputs meet), ``available``, ``needed``, ``earliest`` and ``_window(j)``: the weights of output ``j``,
    and its first input frame and their count.

    A stream starts with copies of its first frame (the context the offline network puts
    before it) after the zeros of the padding: outputs whose frames are all copies of one frame
    equal one another, so the layer keeps, beside each frame, where its run of equal frames
    began, and the last output (per set of weights) of a window within one run, and gives
    that output again instead of computing the same product once per copy.
    """

    def __init__(self, layer, params, norm):
        self.stride, self.width, self.padding = layer.stride, layer.width, layer.padding
        self.out_channels = layer.out_channels
        self.is_encoder = isinstance(layer, Conv1d)
        self.bias = params["b"].astype(np.float32)[:, None]
        # ReLU, then BatchNorm with its running statistics, as (y - mean) * scale + beta per channel
        self.norm = None
        if norm is not None:
            bn_params, bn_state, eps = norm
            scale = bn_params["gamma"] / np.sqrt(bn_state["running_var"].astype(np.float64) + eps)
            self.norm = tuple(np.asarray(v, dtype=np.float32)[:, None]
                              for v in (bn_state["running_mean"], scale, bn_params["beta"]))

    def start(self, batch, channels, backend, input_start=0, output_start=0, fed_from=None):
        """Begin a stream whose outputs before ``output_start`` are not needed: no input before ``input_start``
        is kept, nor is any of those outputs computed. The first frame pushed will be frame ``fed_from``
        (default ``input_start``: the frames of a layer before that start there)."""
        self.batch, self.backend, self.input_start, self.output_start = batch, backend, input_start, output_start
        self.frames = np.zeros((max(16, 4 * self.width), channels, batch), np.float32)
        self.first = -self.zeros_before if input_start == 0 else input_start  # the index of frames[0]
        self.end = self.zeros_before if input_start == 0 else 0  # frames[:end] are held
        self.received = input_start if fed_from is None else fed_from
        self.produced = output_start
        self._ready = int(self.available(self.received))
        # run_of[i]: the index of the first frame of frames[i]'s run of equal frames (the zeros are one)
        self.run_of = np.full(self.frames.shape[0], self.first, np.int64)
        self.repeated = {}  # id(weights) -> (run, the output of a window within that run)

    def push(self, x):
        """Keep new input frames, ``x`` (m, channels, batch) (those before the input start are not needed)."""
        unneeded = min(x.shape[0], max(0, self.input_start - self.received))
        self.received += unneeded
        x = x[unneeded:]
        if x.shape[0]:
            self._keep(x)
        self._ready = int(self.available(self.received))

    def _keep(self, x):
        """Hold frames ``x`` (m >= 1, channels, batch) after those held, each with its run of equal frames."""
        m = x.shape[0]
        if self.end + m > self.frames.shape[0]:
            self._make_room(m)
        # each new frame's run: its predecessor's if equal to it, else its own
        equal = np.zeros(m, bool)
        equal[1:] = np.all(x[1:] == x[:-1], axis=(1, 2))
        if self.end:
            equal[0] = np.array_equal(x[0], self.frames[self.end - 1])
        starts = np.where(equal, np.iinfo(np.int64).min, self.first + self.end + np.arange(m))
        if equal[0]:
            starts[0] = self.run_of[self.end - 1]
        self.run_of[self.end:self.end + m] = np.maximum.accumulate(starts)
        self.frames[self.end:self.end + m] = x
        self.end += m
        self.received += m

    def _make_room(self, m):
        """Drop the frames no output still needs; grow if the rest and ``m`` more do not fit in half."""
        drop = min(max(0, int(self.earliest(self.produced)) - self.first), self.end)
        kept = self.end - drop
        if kept + m > self.frames.shape[0] // 2:
            grown = np.zeros((2 * (kept + m), *self.frames.shape[1:]), np.float32)
            grown[:kept] = self.frames[drop:self.end]
            runs = np.zeros(grown.shape[0], np.int64)
            runs[:kept] = self.run_of[drop:self.end]
            self.frames, self.run_of = grown, runs
        else:  # numpy copies overlapping ranges safely
            self.frames[:kept] = self.frames[drop:self.end]
            self.run_of[:kept] = self.run_of[drop:self.end]
        self.first += drop
        self.end = kept

    def ready(self):
        """Outputs computable from the frames received."""
        return self._ready

    def run(self, limit, products=None):
        """The outputs computable now, at most ``limit`` in all (never fewer than given), each from its own
        product, after ReLU and BatchNorm where the layer has them: (m, out_channels, batch). With
        ``products``, no more than that many products (outputs given again from equal frames are free)."""
        end = max(self.produced, min(self.ready(), limit))
        out = np.empty((end - self.produced, self.out_channels, self.batch), np.float32)
        done = 0
        for i in range(end - self.produced):
            W, start, count = self._window(self.produced + i)
            y = out[i]
            run = self._run_of(start, count)
            earlier = self.repeated.get(id(W))
            if run is not None and earlier is not None and earlier[0] == run:  # the same frames as before
                y[...] = earlier[1]
                continue
            if products is not None and done == products:
                end, out = self.produced + i, out[:i]
                break
            done += 1
            self.backend.frame_product(W, self._frames(start, count), y)
            y += self.bias
            if self.norm is not None:
                mean, scale, beta = self.norm
                np.maximum(y, 0.0, out=y)
                y -= mean
                y *= scale
                y += beta
            if run is not None:
                self.repeated[id(W)] = (run, y.copy())
        self.produced = end
        return out

    def _run_of(self, start, count):
        """The run of equal frames that input frames ``start .. start + count - 1`` all belong to, or None."""
        if not count:
            return None
        first, last = self.run_of[start - self.first], self.run_of[start + count - 1 - self.first]
        return int(first) if first == last else None

    def _frames(self, start, count):
        """Input frames ``start .. start + count - 1`` as the rows of a product, (count channels, batch)."""
        first = start - self.first
        return self.frames[first:first + count].reshape(-1, self.batch)


class _IncrementalConv(_IncrementalLayer):
    """A strided convolution with ``padding`` zeros before frame 0, run as its input grows."""

    def __init__(self, layer, params, norm):
        super().__init__(layer, params, norm)
        self.zeros_before = self.padding
        W = params["W"]  # (C_out, C_in, K) -> (C_out, K C_in), the frames' order
        self.weights = np.ascontiguousarray(W.transpose(0, 2, 1).reshape(W.shape[0], -1), dtype=np.float32)

    def available(self, received):
        """Outputs computable from ``received`` input frames (output j needs input j s - p + K - 1)."""
        return _nonnegative((received + self.padding - self.width) // self.stride + 1)

    def needed(self, outputs):
        """Input frames that the first ``outputs`` outputs take."""
        return 0 if outputs <= 0 else (outputs - 1) * self.stride - self.padding + self.width

    def earliest(self, output):
        """The earliest input frame output frame ``output`` depends on (vectorised)."""
        return output * self.stride - self.padding

    def _window(self, j):
        return self.weights, j * self.stride - self.padding, self.width


class _IncrementalTransposed(_IncrementalLayer):
    """A transposed convolution whose first ``padding`` output frames are cut, run as its input grows."""

    def __init__(self, layer, params, norm):
        super().__init__(layer, params, norm)
        self.zeros_before = -(-self.width // self.stride)  # input frames that meet one output frame, at most
        # Full output frame f sums W[:, :, k]^T x[(f - k) / s] over the taps k = f mod s, + s, ...: with the
        # taps from the last down, their inputs are consecutive frames, oldest first. Per phase r: the
        # taps' weights side by side as the frames lie, (C_out, taps C_in), and how many taps.
        W = params["W"]  # (C_in, C_out, K)
        self.phases = []  # a filter narrower than the stride has phases without taps: those frames are the bias
        for r in range(self.stride):
            taps = np.arange(r, self.width, self.stride)[::-1]
            stacked = W[:, :, taps].transpose(1, 2, 0).reshape(W.shape[1], -1)  # (C_out, taps C_in)
            self.phases.append((np.ascontiguousarray(stacked, dtype=np.float32), len(taps)))

    def available(self, received):
        """Outputs computable from ``received`` input frames (output i needs input (i + p) // s)."""
        return _nonnegative(received * self.stride - self.padding)

    def needed(self, outputs):
        """Input frames that the first ``outputs`` outputs take."""
        return 0 if outputs <= 0 else (outputs - 1 + self.padding) // self.stride + 1

    def earliest(self, output):
        """The earliest input frame output frame ``output`` depends on (vectorised)."""
        return -(-(output + self.padding - self.width + 1) // self.stride)

    def _window(self, i):
        f = i + self.padding  # the full (uncut) output frame
        W, taps = self.phases[f % self.stride]
        last = (f - f % self.stride) // self.stride  # the input the smallest tap meets
        return W, last - taps + 1, taps


class IncrementalNetwork:
    """An :class:`~nstaudio.nn.autoencoder.Autoencoder` in inference mode, fed frames as they come.

    Parameters
    ----------
    arch : Architecture
    params, state : dict
        The trained network's parameters and BatchNorm statistics (numpy arrays).
    batch : int
        Spectrograms run side by side (audio channels).
    backend : module
        Whose ``frame_product`` computes the frames (``nstaudio.kernels.get_backend``).
    """

    def __init__(self, arch, params, state, batch, *, backend):
        net = Autoencoder(arch)
        self.batch, self.n_bins, self.backend = batch, arch.n_bins, backend
        self.layers = []
        for name, layer, bn in net.layers:
            norm = (params[f"bn_{name}"], state[f"bn_{name}"], net.norms[name].eps) if bn else None
            kind = _IncrementalConv if isinstance(layer, Conv1d) else _IncrementalTransposed
            self.layers.append(kind(layer, params[name], norm))
        self._in_channels = [layer.in_channels for _, layer, _ in net.layers]
        self.reset()

    def reset(self, skip=0):
        """Forget every frame: the next one is the stream's first. No output frame before ``skip`` is needed
        (those of the copies a stream starts with), nor any frame of a layer that only those would need."""
        starts, needed = [], skip
        for layer in reversed(self.layers):
            earliest = max(0, int(layer.earliest(needed))) if needed > 0 else 0
            starts.append((earliest, needed))
            needed = earliest
        for i, (layer, channels, (input_start, output_start)) in enumerate(zip(self.layers, self._in_channels,
                                                                             reversed(starts))):
            layer.start(self.batch, channels, self.backend, input_start, output_start, fed_from=0 if i == 0 else None)

    def available(self, received):
        """Output frames computable from ``received`` input frames (vectorised); ``received - available``
        is the look-ahead at that point."""
        count = np.asarray(received)
        for layer in self.layers:
            count = layer.available(count)
        return count

    def reach_back(self):
        """How many input frames before an output frame's own it depends on, at most (past the start)."""
        period = self.layers[0].stride ** 4
        outputs = np.arange(8 * period, 12 * period)
        earliest = outputs
        for layer in reversed(self.layers):
            earliest = layer.earliest(earliest)
        return int(np.max(outputs - earliest))

    def process(self, frames, limit=None):
        """Feed input frames; return the output frames they complete.

        Parameters
        ----------
        frames : np.ndarray, shape (batch, n_bins, n), float32
        limit : int or None
            Compute no output frame past this many in all (nor any layer's frame that only those
            would need): frames a strided decoder completes in a burst can wait until they are due,
            and :meth:`step` can do them one at a time before.

        Returns
        -------
        np.ndarray, shape (batch, n_bins, m), float32
            ``m`` frames, those after the ones already returned (and from :meth:`reset`'s ``skip``
            on), equal to one pass's.
        """
        if not frames.shape[2] and limit is not None and self.layers[-1].produced >= limit:
            return frames  # nothing new, and all that is needed is out (once a block, mostly)
        h = np.ascontiguousarray(np.transpose(frames, (2, 1, 0)), dtype=np.float32)
        for layer, layer_limit in zip(self.layers, self._limits(limit)):
            layer.push(h)
            h = layer.run(layer_limit)
        return np.ascontiguousarray(h.transpose(2, 1, 0))

    def step(self, limit=None, piece=None):
        """Compute one frame of one layer: the lowest that has one to do (an encoder layer whenever its input
        is there, a decoder layer within ``limit``'s needs; None: any).

        Returns
        -------
        worked : bool
            False when nothing is left to do within ``limit``.
        frames : np.ndarray, shape (batch, n_bins, m), float32
            The network's output frames this completed (m is 1 but where the layer gave outputs
            of equal frames again, which cost nothing, beside it; else 0).

        ``piece``: :meth:`next_piece`'s answer for the same ``limit``, if the caller has it.
        """
        limits = self._limits(limit, eager=True)
        i = self._next(limits) if piece is None else piece
        if i is None:
            return False, np.zeros((self.batch, self.n_bins, 0), np.float32)
        h = self.layers[i].run(limits[i], products=1)  # with the copies of one frame before it, if any
        if i == len(self.layers) - 1:
            return True, np.ascontiguousarray(h.transpose(2, 1, 0))
        self.layers[i + 1].push(h)  # handed on, not computed further
        return True, np.zeros((self.batch, self.n_bins, 0), np.float32)

    def next_piece(self, limit=None):
        """The layer :meth:`step` would compute a frame of (its index), or None for nothing."""
        return self._next(self._limits(limit, eager=True))

    def _next(self, limits):
        for i, (layer, layer_limit) in enumerate(zip(self.layers, limits)):
            if layer.produced < min(layer.ready(), layer_limit):
                return i
        return None

    def _limits(self, limit, *, eager=False):
        """Each layer's limit for the network's ``limit``: the frames the ones after it need (None: all).

        ``eager``: the encoder's, all it can (work ahead runs it as its input comes, a frame at a
        time); the decoder, which completes stride ** depth frames at once, waits for need.
        """
        limits = []
        for layer in reversed(self.layers):
            unlimited = limit is None or (eager and layer.is_encoder)
            limits.append(_UNLIMITED if unlimited else limit)
            if limit is not None:  # (outputs before the layer's start are never computed: they need nothing)
                limit = layer.needed(limit) if limit > layer.output_start else layer.input_start
        return limits[::-1]
