"""Streaming polyphase resampling: blocks in, blocks out, the filter's state kept between them.

The filter is the one :func:`nstaudio.audio.resample` (scipy's ``resample_poly``) uses, a
Kaiser-windowed sinc of ``20 max(up, down) + 1`` taps at the upsampled rate, but applied
causally: output ``n`` is ``sum_k h[k] xu[n down + offset - k]``, ``xu`` the input with
``up - 1`` zeros after each sample. It is computed per phase (``h[r::up]``) from the input
itself, so the zeros cost nothing.
"""

import numpy as np
import scipy.signal

from ..audio import polyphase_ratio


def polyphase_filter(up, down):
    """The anti-aliasing filter of ``resample_poly(x, up, down, window=("kaiser", 5.0))``, times ``up``.

    Returns
    -------
    np.ndarray, shape (20 max(up, down) + 1,), float64
    """
    half = 10 * max(up, down)
    return scipy.signal.firwin(2 * half + 1, 1.0 / max(up, down), window=("kaiser", 5.0)) * up


class StreamingResampler:
    """Resample (channels, n) blocks from ``orig_sr`` to ``target_sr``, any block lengths.

    Parameters
    ----------
    orig_sr, target_sr : int
    channels : int
    backend : module
        Whose ``polyphase_outputs`` runs (``nstaudio.kernels.get_backend``).
    offset : int
        Shifts the output grid ``offset`` upsampled samples later in the input: less delay,
        each output waits that much longer for its input (0 <= offset <= the filter's half length).

    Attributes
    ----------
    up, down : int
        ``target_sr / orig_sr`` in lowest terms (as :func:`nstaudio.audio.polyphase_ratio`).
    delay : float
        How far the output lags the input, in output samples: ``(half - offset) / down``.
    """

    def __init__(self, orig_sr, target_sr, channels, *, backend, offset=0):
        self.up, self.down = polyphase_ratio(orig_sr, target_sr)
        h = polyphase_filter(self.up, self.down)
        self.half = (len(h) - 1) // 2
        if not 0 <= offset <= self.half:
            raise ValueError(f"offset must lie in 0..{self.half}, got {offset}")
        self.offset = offset
        self.delay = (self.half - offset) / self.down
        # phases[r, -1 - j] = h[r + j up]: the taps that meet input q - j for an output at xu index q up + r
        self.taps = -(-len(h) // self.up)
        phases = np.zeros((self.up, self.taps))
        for r in range(self.up):
            taps = h[r::self.up]
            phases[r, self.taps - len(taps):] = taps[::-1]
        self.phases = phases.astype(np.float32)
        self.channels, self.backend = channels, backend
        self.reset()

    def reset(self):
        """Forget all input: the stream starts again from silence."""
        # history[:, i] is input sample history_start + i; samples before 0 are zeros
        self.history = np.zeros((self.channels, self.taps), dtype=np.float32)
        self.history_start = -self.taps
        self.received = 0
        self.produced = 0

    def available(self, received):
        """Outputs computable after ``received`` input samples: those whose last tap is an input already
        there (the zeros stuffed after the last sample are known too). Works on arrays."""
        if np.ndim(received) == 0:  # once a block: no arrays
            return max(0, -((self.offset - int(received) * self.up) // self.down))
        received = np.asarray(received)
        return np.maximum(0, -((self.offset - received * self.up) // self.down))

    def needed(self, outputs):
        """Input samples that ``outputs`` outputs take (the inverse of :meth:`available`)."""
        return 0 if outputs <= 0 else ((outputs - 1) * self.down + self.offset) // self.up + 1

    def process(self, x):
        """Resample the next block.

        Parameters
        ----------
        x : np.ndarray, shape (channels, n), float32

        Returns
        -------
        np.ndarray, shape (channels, m), float32
            The outputs the block completes (``m`` varies with the block's position).
        """
        self.received += x.shape[1]
        self.history = np.concatenate([self.history, np.asarray(x, dtype=np.float32)], axis=1)
        end = self.available(self.received)
        if end == self.produced:
            return np.zeros((self.channels, 0), np.float32)
        y = self.backend.polyphase_outputs(self.history, self.phases, self.produced, end - self.produced, self.up,
                                           self.down, self.offset, self.history_start)
        self.produced = end
        # keep what the next output's window reaches back to
        first_needed = (end * self.down + self.offset) // self.up - self.taps + 1
        drop = max(0, first_needed - self.history_start)
        self.history = self.history[:, drop:]
        self.history_start += drop
        return y
