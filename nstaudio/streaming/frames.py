"""The model-rate half of a stream, on the way in: samples to stylized magnitude frames.

:class:`SpectrogramFrames` cuts the incoming samples into the frames of a centered STFT
(frame ``f`` covers samples ``f hop - n_fft/2 .. f hop + n_fft/2``, zeros before the start,
as :func:`nstaudio.stft` pads); :class:`StyleFrames` runs a style network on their log1p
magnitudes as they come, :class:`GanFrames` a MelGAN-VC generator on their mel features. Both
give STFT magnitudes; the way back, magnitude frames to samples, is
:class:`nstaudio.streaming.phase.PhaseSynthesis`.
"""

import numpy as np
import scipy.fft

from ..mel import MelInversion
from ..nn.gan_features import crossfade_windows, features, magnitude_in_pieces, mel_basis
from ..nn.melgan import Generator
from ..spectral import from_log_magnitude, get_window, log_magnitude
from .network import IncrementalNetwork

# A gan model's window is a job of pieces that a stream does between its blocks: the smaller the
# longest, the more of them fit in a block's share and the less one that runs long overshoots it.
# The generator's products (all channels in one) are cut into groups of output channels of at
# most this many multiply-adds, and the mel inversion of a window's frames into this many steps of
# its FISTA (the frames cannot be cut instead: a call's cost is mostly per row of the filterbank)
# (docs/decisions.md, "Stream: a gan window's pieces").
GENERATOR_PIECE_MACS = 2 ** 22
MEL_PIECE_STEPS = 10


class SpectrogramFrames:
    """Samples in, the magnitudes of the centered STFT's frames out, as :func:`nstaudio.stft` gives them.

    Parameters
    ----------
    n_fft, hop_length : int
        Hann window of ``n_fft``.
    batch : int
        Audio channels, side by side.
    """

    def __init__(self, *, n_fft, hop_length, batch):
        self.n_fft, self.hop_length, self.batch = n_fft, hop_length, batch
        self.window = get_window("hann", n_fft, n_fft)
        self.none = np.zeros((batch, 1 + n_fft // 2, 0), np.float32)  # no frames (read only)
        self.none.flags.writeable = False
        self.reset()

    def reset(self):
        self.samples = np.zeros((self.batch, self.n_fft // 2), np.float32)
        self.samples_start = -(self.n_fft // 2)  # the index of samples[:, 0]
        self.received = self.frames = 0

    def available(self, received):
        """Frames complete after ``received`` samples (frame f needs samples up to f hop + n_fft/2 - 1; vectorised)."""
        half = self.n_fft // 2
        if np.ndim(received) == 0:  # once a block: no arrays
            return (int(received) - half) // self.hop_length + 1 if received >= half else 0
        received = np.asarray(received)
        return np.where(received >= half, (received - half) // self.hop_length + 1, 0)

    def process(self, x):
        """Take samples (batch, n) float32; return the frames they complete, (batch, 1 + n_fft // 2, m) float32."""
        self.samples = np.concatenate([self.samples, x], axis=1)
        self.received += x.shape[1]
        end = self.available(self.received)
        if end == self.frames:
            return self.none
        first = self.frames * self.hop_length - self.n_fft // 2 - self.samples_start
        span = self.samples[:, first:first + (end - self.frames - 1) * self.hop_length + self.n_fft]
        frames = np.lib.stride_tricks.sliding_window_view(span, self.n_fft, axis=1)[:, ::self.hop_length]
        # as nstaudio.stft computes them: float32 frames, complex64 spectra
        spectra = scipy.fft.rfft(frames * self.window, axis=-1).astype(np.complex64, copy=False)
        self.frames = end
        drop = end * self.hop_length - self.n_fft // 2 - self.samples_start
        self.samples = self.samples[:, drop:]
        self.samples_start += drop
        return np.ascontiguousarray(np.abs(spectra).transpose(0, 2, 1))


def _magnitude(frames):
    """A style network's log1p-magnitude frames as magnitudes, float64 (below 0 is silence, as feedforward)."""
    return from_log_magnitude(np.maximum(np.asarray(frames, dtype=np.float64), 0.0))


class StyleFrames:
    """Samples in, the style network's output frames out, equal to the offline ``feedforward``'s.

    Parameters
    ----------
    arch, params, state
        The trained style network.
    n_fft, hop_length : int
        The spectrogram settings it was trained with (Hann window of ``n_fft``).
    batch : int
        Audio channels, run side by side.
    context : int
        Copies of the first frame the offline network puts before it (the overlap of
        :func:`nstaudio.nn.inference.apply_network`), so that the first frames agree too. Only those
        the network reaches back to are fed (:attr:`context`), in whole stride periods so that
        the stride grid stays where it was.
    backend : module
        Whose kernels the network runs.
    """

    def __init__(self, arch, params, state, *, n_fft, hop_length, batch, context, backend):
        self.batch = batch
        self.spectrogram = SpectrogramFrames(n_fft=n_fft, hop_length=hop_length, batch=batch)
        self.network = IncrementalNetwork(arch, params, state, batch, backend=backend)
        period = arch.stride ** 4
        reach = -(-self.network.reach_back() // period) * period
        self.context = min(-(-context // period) * period, reach)  # the offline overlap, as apply_network rounds it
        self.reset()

    def reset(self):
        self.spectrogram.reset()
        self.network.reset(skip=self.context)  # the outputs of the copies are not needed

    def available(self, received):
        """Stylized frames out after ``received`` samples (vectorised)."""
        frames = self.spectrogram.available(received)
        fed = np.where(frames > 0, frames + self.context, 0)
        return np.maximum(0, self.network.available(fed) - self.context)

    def process(self, x, limit=None):
        """Take samples (batch, n) float32; return the stylized magnitude frames they complete,
        (batch, 1 + n_fft // 2, m) float64: no more than ``limit`` frames in all, if given (the
        network's work waits until its frames are due)."""
        first = self.spectrogram.frames == 0
        frames = log_magnitude(self.spectrogram.process(x))
        if first and frames.shape[2]:
            frames = np.concatenate([np.repeat(frames[:, :, :1], self.context, axis=2), frames], axis=2)
        return _magnitude(self.network.process(frames, None if limit is None else limit + self.context))

    def step(self, limit=None, piece=None):
        """One frame of one layer of the work ``limit`` frames need (None: of any there is to do):
        ``(worked, frames completed)``; ``piece``, :meth:`next_piece`'s answer, if the caller has it."""
        worked, out = self.network.step(None if limit is None else limit + self.context, piece)
        return worked, _magnitude(out)

    def next_piece(self, limit=None):
        """What :meth:`step` would do: the network layer it would run a frame of, or None for nothing."""
        return self.network.next_piece(None if limit is None else limit + self.context)


class GanFrames:
    """Samples in, a MelGAN-VC generator's frames out, equal to the offline ``gan`` method's.

    The frames' mel features go through the generator in half-overlapping windows of the
    length it was trained on, crossfaded (:func:`nstaudio.nn.gan_features.apply_generator`); a
    frame is out once the last window over it has run, and goes back from mel bands to STFT
    magnitudes with the frames that window finished. A window's work is a job of pieces (the
    generator's products in groups of output channels, then the blend, then the mel inversion
    a few steps at a time), so that a stream can do it between its blocks.

    Parameters
    ----------
    model : Network
        A ``gan`` model.
    batch : int
    backend : module
        Whose ``mel_fista_start`` and ``mel_fista_steps`` invert the mel bands.
    """

    def __init__(self, model, *, batch, backend):
        sr, n_fft, hop_length = model.spectrogram_settings
        self.model, self.batch, self.n_fft, self.backend = model, batch, n_fft, backend
        self.spectrogram = SpectrogramFrames(n_fft=n_fft, hop_length=hop_length, batch=batch)
        self.basis = mel_basis(sr, n_fft, model.arch.n_mels)
        self.inversion = MelInversion(self.basis)
        self.window = model.arch.frames
        self.hop = self.window // 2
        self.weight = crossfade_windows(1, self.window)[1].astype(np.float32)
        self.generator = Generator(model.arch)
        self.weights = self.generator.weights(model.params, model.state)  # spectrally normalised once, not per window
        self.reset()

    def reset(self):
        self.spectrogram.reset()
        # features[:, :, i] and blend[:, :, i] are padded frame features_start + i; the padding is
        # ``hop`` copies of the first frame, as apply_generator pads
        self.features = np.zeros((self.batch, self.model.arch.n_mels, 0), np.float32)
        self.features_start = 0
        self.blend = np.zeros((self.batch, self.model.arch.n_mels, 0), np.float64)
        self.windows = 0  # windows whose job is done, their frames out
        self.job, self.piece = None, 0  # the window being run (a generator from _window) and its next piece
        self.out = []  # frames out, not yet returned

    def available(self, received):
        """Frames out after ``received`` samples (vectorised): those no later window reaches."""
        frames = self.spectrogram.available(received)
        padded = np.where(frames > 0, frames + self.hop, 0)
        windows = np.maximum(0, (padded - self.window) // self.hop + 1)
        return np.maximum(0, (windows - 1) * self.hop)

    def _windows_for(self, limit):
        """Windows that the first ``limit`` frames out take (a frame is out once the next window has run; none
        is out after the first window alone, which is half padding)."""
        return -(-limit // self.hop) + 1 if limit > 0 else 0

    def _wanted(self, limit):
        """Windows to have run: those whose features are in, no more than ``limit`` frames take."""
        padded = self.features_start + self.features.shape[2]
        runnable = max(0, (padded - self.window) // self.hop + 1)
        return runnable if limit is None else min(runnable, max(self.windows, self._windows_for(limit)))

    def next_piece(self, limit=None):
        """What :meth:`step` would do: the place of the piece in its window's job, or None for nothing."""
        if self.job is not None:
            return self.piece
        return 0 if self._wanted(limit) > self.windows else None

    def step(self, limit=None, piece=None):
        """One piece of a window's job, of the windows ``limit`` frames need (None: of any there is to
        run): ``(worked, frames completed)`` (``piece``: :meth:`next_piece`'s answer, not needed here)."""
        if self.next_piece(limit) is None:
            return False, self._take()
        self._advance()
        return True, self._take()

    def process(self, x, limit=None):
        """Take samples (batch, n) float32; return the stylized magnitude frames they complete,
        (batch, 1 + n_fft // 2, m) float32 (no more than ``limit`` in all, if given: windows wait until
        their frames are due)."""
        first = self.spectrogram.frames == 0
        magnitude = self.spectrogram.process(x)
        if magnitude.shape[2]:
            unit = features(magnitude, self.basis, self.n_fft)
            if first:
                unit = np.concatenate([np.repeat(unit[:, :, :1], self.hop, axis=2), unit], axis=2)
            self.features = np.concatenate([self.features, unit], axis=2)
        wanted = self._wanted(limit)
        while self.windows < wanted:
            self._advance()
        return self._take()

    def _advance(self):
        """Do the next piece of the current window's job, starting the next window's if none is running."""
        if self.job is None:
            self.job, self.piece = self._window(self.windows), 0
        self.piece += 1
        finished = object()
        if next(self.job, finished) is finished:
            self.job = None

    def _window(self, k):
        """Window ``k``'s job: the generator's blocks, then the blend and the frames it finishes, then their
        mel inversion (a generator that stops after each piece). Both run on all channels at once (which
        costs less than a channel at a time), in pieces (:data:`GENERATOR_PIECE_MACS`,
        :data:`MEL_PIECE_STEPS`), for the stream to fit them between its blocks."""
        start = k * self.hop - self.features_start
        window = self.features[:, :, start:start + self.window]
        y, _ = yield from self.generator.forward_in_pieces(self.model.params, self.model.state, window,
                                                           training=False, weights=self.weights,
                                                           max_macs=GENERATOR_PIECE_MACS)
        yield True
        grow = k * self.hop + self.window - self.features_start - self.blend.shape[2]
        if grow > 0:
            self.blend = np.concatenate([self.blend, np.zeros(self.blend.shape[:2] + (grow,))], axis=2)
        self.blend[:, :, start:start + self.window] += y * self.weight
        # padded frames before the next window's start are final; the first ``hop`` are padding
        final = max((k + 1) * self.hop - self.features_start, 0)
        done = self.blend[:, :, :final].astype(np.float32)[:, :, max(0, self.hop - self.features_start):]
        self.blend, self.features = self.blend[:, :, final:], self.features[:, :, final:]
        self.features_start += final
        if done.shape[2]:
            yield True
            magnitude = yield from magnitude_in_pieces(done, self.basis, self.n_fft, inversion=self.inversion,
                                                       backend=self.backend, steps=MEL_PIECE_STEPS)
            self.out.append(magnitude)
        self.windows = k + 1

    def _take(self):
        """The frames out since the last call, (batch, 1 + n_fft // 2, m)."""
        if not self.out:
            return np.zeros((self.batch, 1 + self.n_fft // 2, 0), np.float32)
        out, self.out = np.concatenate(self.out, axis=2), []
        return out
