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
"""

import numpy as np

from ..nn.autoencoder import Autoencoder
from ..nn.layers import Conv1d


class _IncrementalLayer:
    """What both layers keep: the input frames their next outputs need, from ``history_start`` on
    (frames before 0 are the zeros a whole pass pads with), and how many outputs they gave."""

    zeros_before = 0  # input frames before 0 that outputs meet

    def start(self, batch, channels, dtype):
        self.history = np.zeros((batch, channels, self.zeros_before), dtype)
        self.history_start = -self.zeros_before
        self.received = self.produced = 0

    def _take(self, x, limit):
        """Keep the new input frames; the outputs computable now, at most ``limit`` in all (and never fewer
        than were given)."""
        self.history = np.concatenate([self.history, x], axis=2)
        self.received += x.shape[2]
        return max(self.produced, min(int(self.available(self.received)), limit))

    def _forget_before(self, first_needed):
        """Drop the input frames before ``first_needed`` (those not here yet are dropped as they come)."""
        drop = min(first_needed - self.history_start, self.history.shape[2])
        if drop > 0:
            self.history = self.history[:, :, drop:]
            self.history_start += drop


class _IncrementalConv(_IncrementalLayer):
    """A strided convolution with ``padding`` zeros before frame 0, run as its input grows."""

    def __init__(self, layer):
        self.stride, self.width, self.padding = layer.stride, layer.width, layer.padding
        self.out_channels = layer.out_channels
        self.zeros_before = self.padding

    def prepare(self, params):
        """The weights as one output frame's product takes them: (C_out, C_in K), and the bias (C_out, 1)."""
        W = params["W"]
        return np.ascontiguousarray(W.reshape(W.shape[0], -1), dtype=np.float32), params["b"].astype(np.float32)[:, None]

    def available(self, received):
        """Outputs computable from ``received`` input frames (output j needs input j s - p + K - 1)."""
        return np.maximum(0, (np.asarray(received) + self.padding - self.width) // self.stride + 1)

    def needed(self, outputs):
        """Input frames that the first ``outputs`` outputs take."""
        return 0 if outputs <= 0 else (outputs - 1) * self.stride - self.padding + self.width

    def earliest(self, output):
        """The earliest input frame output frame ``output`` depends on (vectorised)."""
        return np.asarray(output) * self.stride - self.padding

    def process(self, prepared, x, limit):
        end = self._take(x, limit)
        W, b = prepared
        frames = []
        for j in range(self.produced, end):  # one frame a product: see IncrementalNetwork
            first = j * self.stride - self.padding - self.history_start
            window = self.history[:, :, first:first + self.width]  # (B, C_in, K)
            columns = window.transpose(1, 2, 0).reshape(-1, window.shape[0])  # (C_in K, B), W's order
            frames.append((W @ columns + b).T[:, :, np.newaxis])
        self.produced = end
        self._forget_before(int(self.earliest(end)))  # the next output's first input
        return _joined(frames, x.shape[0], self.out_channels, x.dtype)


class _IncrementalTransposed(_IncrementalLayer):
    """A transposed convolution whose first ``padding`` output frames are cut, run as its input grows."""

    def __init__(self, layer):
        self.stride, self.width, self.padding = layer.stride, layer.width, layer.padding
        self.out_channels = layer.out_channels
        self.zeros_before = -(-self.width // self.stride)  # input frames that meet one output frame, at most

    def prepare(self, params):
        """Per phase ``r`` of a full output frame (its index mod the stride): the taps ``k = r, r + s, ...``
        that meet it, their weights side by side as one product takes them, (C_out, C_in taps), and the bias."""
        W = params["W"]  # (C_in, C_out, K)
        phases = []
        for r in range(self.stride):
            taps = np.arange(r, self.width, self.stride)
            stacked = W[:, :, taps].transpose(1, 0, 2).reshape(W.shape[1], -1)  # (C_out, C_in taps)
            phases.append((taps, np.ascontiguousarray(stacked, dtype=np.float32)))
        return phases, params["b"].astype(np.float32)[:, None]

    def available(self, received):
        """Outputs computable from ``received`` input frames (output i needs input (i + p) // s)."""
        return np.maximum(0, np.asarray(received) * self.stride - self.padding)

    def needed(self, outputs):
        """Input frames that the first ``outputs`` outputs take."""
        return 0 if outputs <= 0 else (outputs - 1 + self.padding) // self.stride + 1

    def earliest(self, output):
        """The earliest input frame output frame ``output`` depends on (vectorised)."""
        return -(-(np.asarray(output) + self.padding - self.width + 1) // self.stride)

    def process(self, prepared, x, limit):
        end = self._take(x, limit)
        phases, b = prepared
        frames = []
        for i in range(self.produced, end):  # one frame a product: see IncrementalNetwork
            # full (uncut) output frame f = sum over taps k = f mod s, + s, ... of W[:, :, k]^T x[(f - k) / s]
            f = i + self.padding
            taps, W = phases[f % self.stride]
            if not len(taps):  # a filter narrower than the stride: the bias alone
                frames.append(np.broadcast_to(b.T[:, :, np.newaxis], (x.shape[0], self.out_channels, 1)))
                continue
            inputs = (f - taps) // self.stride - self.history_start  # (taps,), each here or a zero before 0
            columns = self.history[:, :, inputs].transpose(1, 2, 0).reshape(-1, x.shape[0])  # (C_in taps, B)
            frames.append((W @ columns + b).T[:, :, np.newaxis])
        self.produced = end
        self._forget_before(int(self.earliest(end)))  # the next output's first input
        return _joined(frames, x.shape[0], self.out_channels, x.dtype)


def _joined(frames, batch, channels, dtype):
    """Output frames (batch, channels, 1) side by side; (batch, channels, 0) for none."""
    return np.concatenate(frames, axis=2) if frames else np.zeros((batch, channels, 0), dtype)


class IncrementalNetwork:
    """An :class:`~nstaudio.nn.autoencoder.Autoencoder` in inference mode, fed frames as they come.

    Parameters
    ----------
    arch : Architecture
    params, state : dict
        The trained network's parameters and BatchNorm statistics (numpy arrays).
    batch : int
        Spectrograms run side by side (audio channels).
    """

    def __init__(self, arch, params, state, batch):
        net = Autoencoder(arch)
        net.train(False)
        self.params, self.state, self.batch = params, state, batch
        self.n_bins = arch.n_bins
        self.layers = []  # (name, incremental layer, its BatchNorm or None, its input channels)
        for name, layer, bn in net.layers:
            step = _IncrementalConv(layer) if isinstance(layer, Conv1d) else _IncrementalTransposed(layer)
            self.layers.append((name, step, net.norms[name] if bn else None, layer.in_channels))
        self.relu = net.relu
        self.prepared = {name: step.prepare(params[name]) for name, step, _, _ in self.layers}
        self.reset()

    def reset(self):
        """Forget every frame: the next one is the stream's first."""
        for _, step, _, channels in self.layers:
            step.start(self.batch, channels, np.float32)

    def available(self, received):
        """Output frames computable from ``received`` input frames (vectorised); ``received - available``
        is the look-ahead at that point."""
        count = np.asarray(received)
        for _, step, _, _ in self.layers:
            count = step.available(count)
        return count

    def reach_back(self):
        """How many input frames before an output frame's own it depends on, at most (past the start)."""
        period = self.layers[0][1].stride ** 4
        outputs = np.arange(8 * period, 12 * period)
        earliest = outputs
        for _, step, _, _ in reversed(self.layers):
            earliest = step.earliest(earliest)
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
            ``m`` frames, those after the ones already returned, equal to one pass's.
        """
        h = np.asarray(frames, dtype=np.float32)
        for layer, layer_limit in zip(self.layers, self._limits(limit)):
            h = self._run(layer, h, layer_limit)
        return h

    def step(self, limit):
        """Compute one frame of one layer: the lowest that has one to do (an encoder layer whenever its input
        is there, a decoder layer within ``limit``'s needs).

        Returns
        -------
        worked : bool
            False when nothing is left to do within ``limit``.
        frames : np.ndarray, shape (batch, n_bins, m), float32
            The network's output frames this completed (m is 0 or 1).
        """
        empty = np.zeros((self.batch, self.n_bins, 0), np.float32)
        limits = self._limits(limit, eager=True)
        for i, (layer, layer_limit) in enumerate(zip(self.layers, limits)):
            step = layer[1]
            if step.produced < min(int(step.available(step.received)), layer_limit):
                h = self._run(layer, np.zeros(step.history.shape[:2] + (0,), np.float32), step.produced + 1)
                if i == len(self.layers) - 1:
                    return True, h
                following = self.layers[i + 1]
                self._run(following, h, following[1].produced)  # handed on, not computed further
                return True, empty
        return False, empty

    def _limits(self, limit, *, eager=False):
        """Each layer's limit for the network's ``limit``: the frames the ones after it need (None: all).

        ``eager``: the encoder's, all it can (work ahead runs it as its input comes, a frame at a
        time); the decoder, which completes stride ** depth frames at once, waits for need.
        """
        limits = []
        for _, step, _, _ in reversed(self.layers):
            unlimited = limit is None or (eager and isinstance(step, _IncrementalConv))
            limits.append(np.iinfo(np.int64).max if unlimited else limit)
            limit = None if limit is None else step.needed(limit)
        return limits[::-1]

    def _run(self, layer, h, limit):
        """Feed ``h`` to ``layer`` and return its new output frames (at most ``limit`` in all), after ReLU and
        BatchNorm where the layer has them."""
        name, step, norm, _ = layer
        h = step.process(self.prepared[name], h, limit)
        if norm is not None and h.shape[2]:
            h = self.relu.forward({}, h)[0]
            h = norm.forward(self.params[f"bn_{name}"], h, self.state[f"bn_{name}"])[0]
        return h
