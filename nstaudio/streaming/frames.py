"""The model-rate half of a stream: samples to stylized magnitude frames, and magnitude frames back to samples.

:class:`SpectrogramFrames` cuts the incoming samples into the frames of a centered STFT
(frame ``f`` covers samples ``f hop - n_fft/2 .. f hop + n_fft/2``, zeros before the start,
as :func:`nstaudio.stft` pads); :class:`StyleFrames` runs a style network on their log1p
magnitudes as they come, :class:`GanFrames` a MelGAN-VC generator. :class:`PhaseSynthesis`
gives each stylized frame a phase by real-time Phase Gradient Heap Integration (Prusa &
Holighaus 2017), refines it by RTISI-LA passes and overlap-adds it into samples.
"""

import numpy as np
import scipy.fft

from ..spectral import _TINY, HANN_GAMMA, PGHI_TOLERANCE, from_log_magnitude, get_window, log_magnitude
from .network import IncrementalNetwork

# A gan model's window is a job of pieces that a stream does between its blocks: the smaller the
# longest, the more of them fit in a block's share and the less one that runs long overshoots it.
# The generator's products (all channels in one) are cut into groups of output channels of at
# most this many multiply-adds (its largest layer, 57 M in stereo, into 14), and the mel inversion
# of a window's frames into this many steps of its FISTA (30 steps at once took 0.7-1.1 ms, over
# the share of a block of 256 samples; the frames cannot be cut instead: a call's cost is mostly
# per row of the filterbank, 0.4 ms for one frame). On the 2-core benchmark machine no piece takes
# over 0.4 ms, and a stereo window's 37 pieces 5.4 ms.
GENERATOR_PIECE_MACS = 2 ** 22
MEL_PIECE_STEPS = 10


class SpectrogramFrames:
    """Samples in, the log1p magnitudes of the centered STFT's frames out, as :func:`nstaudio.stft` gives them.

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
        return np.ascontiguousarray(log_magnitude(spectra).transpose(0, 2, 1))


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
        :func:`nstaudio.nn.train.apply_network`), so that the first frames agree too. Only those
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
        """Take samples (batch, n) float32; return the stylized log1p-magnitude frames they complete,
        (batch, 1 + n_fft // 2, m) float32: no more than ``limit`` frames in all, if given (the
        network's work waits until its frames are due)."""
        first = self.spectrogram.frames == 0
        log_magnitude = self.spectrogram.process(x)
        if first and log_magnitude.shape[2]:
            log_magnitude = np.concatenate([np.repeat(log_magnitude[:, :, :1], self.context, axis=2),
                                            log_magnitude], axis=2)
        out = self.network.process(log_magnitude, None if limit is None else limit + self.context)
        return np.maximum(out, 0)  # a log1p magnitude is never negative (as feedforward)

    def step(self, limit=None, piece=None):
        """One frame of one layer of the work ``limit`` frames need (None: of any there is to do):
        ``(worked, frames completed)``; ``piece``, :meth:`next_piece`'s answer, if the caller has it."""
        worked, out = self.network.step(None if limit is None else limit + self.context, piece)
        return worked, np.maximum(out, 0)

    def next_piece(self, limit=None):
        """What :meth:`step` would do: the network layer it would run a frame of, or None for nothing."""
        return self.network.next_piece(None if limit is None else limit + self.context)


class GanFrames:
    """Samples in, a MelGAN-VC generator's frames out, equal to the offline ``gan`` method's.

    The frames' mel features go through the generator in half-overlapping windows of the
    length it was trained on, crossfaded (:func:`nstaudio.methods.gan.apply_generator`); a
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
        from ..methods.gan import crossfade_windows, mel_basis
        from ..mel import MelInversion
        from ..nn.melgan import Generator

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
        """Take samples (batch, n) float32; return the stylized log1p-magnitude frames they complete,
        (batch, 1 + n_fft // 2, m) float32 (no more than ``limit`` in all, if given: windows wait until
        their frames are due)."""
        from ..methods.gan import features

        first = self.spectrogram.frames == 0
        log_magnitude = self.spectrogram.process(x)
        if log_magnitude.shape[2]:
            unit = features(from_log_magnitude(log_magnitude), self.basis, self.n_fft)
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
        mel inversion (a generator that stops after each piece). Both run on all channels at once (a
        channel at a time cost a stereo window 6.4 ms instead of 5.4), in pieces
        (:data:`GENERATOR_PIECE_MACS`, :data:`MEL_PIECE_STEPS`), for the stream to fit them between its
        blocks."""
        from ..methods.gan import magnitude_in_pieces

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
            self.out.append(np.log1p(magnitude))
        self.windows = k + 1

    def _take(self):
        """The frames out since the last call, (batch, 1 + n_fft // 2, m)."""
        if not self.out:
            return np.zeros((self.batch, 1 + self.n_fft // 2, 0), np.float32)
        out, self.out = np.concatenate(self.out, axis=2), []
        return out


class PhaseSynthesis:
    """Magnitude frames in, samples out: real-time PGHI, RTISI-LA passes and overlap-add.

    Frame ``f``'s phase grows from frame ``f - 1``'s along the phase gradient the
    log-magnitudes give (a Gaussian-window approximation of the Hann window, as
    :func:`nstaudio.pghi`), and is fixed once frame ``f + lookahead`` is there: the time
    derivative of the log-magnitude is a centred difference with one frame of look-ahead, a
    backward one without.

    With ``iterations`` above 0 each frame's phase is then refined while the next frames come
    in, as real-time iterative spectrogram inversion with look-ahead does (RTISI-LA, Zhu, Beauregard
    & Wyse 2007): the ``open_frames`` frames not yet final, started from their PGHI phase, take
    the phase of the signal all frames so far overlap-add into, ``iterations`` times for every
    new frame, and the oldest becomes final (that many frames more look-ahead).

    Parameters
    ----------
    n_fft, hop_length : int
    batch : int
    lookahead : {0, 1}
        Frames of look-ahead of the phase-gradient estimate.
    iterations : int
        RTISI-LA passes per frame; 0 keeps the PGHI phase as it is.
    open_frames : int or None
        Frames kept open for refinement (each a hop of latency); None: ``n_fft // hop_length - 1``.
    tolerance : float
        Coefficients below ``tolerance`` times the loudest so far get random phase.
    seed : int
        Seeds that random phase.
    backend : module
        Whose ``heap_integrate_frame`` runs.
    """

    def __init__(self, *, n_fft, hop_length, batch, lookahead=1, iterations=0, open_frames=None,
                 tolerance=PGHI_TOLERANCE, seed=0, backend):
        self.n_fft, self.hop_length, self.batch = n_fft, hop_length, batch
        self.lookahead, self.tolerance, self.seed, self.backend = lookahead, tolerance, seed, backend
        self.iterations = iterations
        if open_frames is None:  # RTISI-LA's: those that overlap the next frame
            open_frames = max(1, -(-n_fft // hop_length) - 1)
        self.refine = open_frames if iterations else 0
        self.window = get_window("hann", n_fft, n_fft).astype(np.float64)
        self.window_squared = self.window ** 2
        gamma = HANN_GAMMA * n_fft ** 2
        bins = np.arange(1 + n_fft // 2)
        self.time_base = hop_length * 2 * np.pi * bins / n_fft
        self.time_scale = hop_length * n_fft / gamma
        self.freq_scale = -gamma / (n_fft * hop_length)
        self.reset()

    def reset(self):
        bins = 1 + self.n_fft // 2
        self.rng = np.random.default_rng(self.seed)
        self.pending = np.zeros((self.batch, bins, 0), np.float64)  # magnitudes waiting for their look-ahead
        # the heap integration's (bins, 2) inputs per channel, column 0 the last frame synthesized:
        # magnitude, phase advance per frame, phase
        self.pairs = tuple(np.zeros((self.batch, bins, 2)) for _ in range(3))
        self.previous_log = np.zeros((self.batch, bins))  # the last frame's log-magnitude, before clamping
        self.job = None  # the frame being synthesized, a generator from _synthesize
        self.piece = 0  # the next piece of its work: a channel's phase, the overlap-add, a refinement pass
        self.peak = np.zeros(self.batch)
        self.frames = 0  # frames final (overlap-added for good)
        self.phased = 0  # frames with a phase, final or still refined
        # frames frames..phased-1, being refined: their spectra and magnitudes, (batch, frames, bins)
        self.open = np.zeros((self.batch, 0, bins), np.complex128)
        self.open_magnitude = np.zeros((self.batch, 0, bins))
        # output[:, i] and weight[i] (the summed squared windows) are sample output_start + i
        self.output = np.zeros((self.batch, 0), np.float64)
        self.weight = np.zeros(0, np.float64)
        self.output_start = -(self.n_fft // 2)
        self.emitted = 0  # samples returned (those before 0, half of frame 0, never are)

    def available(self, frames):
        """Samples final after ``frames`` magnitude frames came in (vectorised)."""
        done = np.maximum(0, np.asarray(frames) - self.lookahead - self.refine)
        return np.maximum(0, done * self.hop_length - self.n_fft // 2)

    def process(self, log_magnitude, until=None):
        """Take log1p-magnitude frames (batch, bins, n); return the samples now final, (batch, m) float32.

        ``until`` (a sample count) stops once the samples returned in all reach it: frames wait
        until their samples are due, so that work that arrives in bursts (a strided network
        completes several frames at once) is spread over the calls. None: all there is.
        """
        self.push(log_magnitude)
        while (until is None or self.final() < until) and self.step():
            pass
        return self.take()

    def push(self, log_magnitude):
        """Queue log1p-magnitude frames (batch, bins, n) for :meth:`step`."""
        if not log_magnitude.shape[2]:
            return
        magnitude = from_log_magnitude(np.maximum(np.asarray(log_magnitude, dtype=np.float64), 0.0))
        self.pending = np.concatenate([self.pending, magnitude], axis=2)

    def step(self):
        """Do one piece of a frame's work (one channel's phase, the overlap-add, or one refinement pass); False if
        there is none.

        A live stream does a few pieces per block ahead of need, so that no block does a whole
        frame's work for all its channels at once.
        """
        if self.job is None:
            if self.pending.shape[2] <= self.lookahead:
                return False
            self.job = self._synthesize(self.pending[:, :, 0], self.pending[:, :, 1] if self.lookahead else None)
            self.pending = self.pending[:, :, 1:]
            self.piece = 0
        self.piece += 1
        if next(self.job, None) is None:  # the generator ended: the frame is overlap-added
            self.job = None
        return True

    def next_piece(self):
        """Which piece of a frame's work :meth:`step` would do (its place in the frame's pieces, 0 for the
        first channel's phase), or None for nothing."""
        if self.job is None:
            return 0 if self.pending.shape[2] > self.lookahead else None
        return self.piece

    def take(self):
        """The samples that became final since the last call, (batch, m) float32."""
        final = self.final()
        if final <= self.emitted:
            return np.zeros((self.batch, 0), np.float32)
        out = self.output[:, self.emitted - self.output_start:final - self.output_start]
        weight = self.weight[self.emitted - self.output_start:final - self.output_start]
        out = np.where(weight > _TINY, out / np.where(weight > _TINY, weight, 1.0), out).astype(np.float32)
        self.emitted = max(self.emitted, final)
        drop = max(0, final - self.output_start)
        self.output, self.weight = self.output[:, drop:], self.weight[drop:]
        self.output_start += drop
        return out

    def frames_for(self, samples):
        """Magnitude frames (look-ahead included) that ``samples`` final samples take."""
        return -(-(samples + self.n_fft // 2) // self.hop_length) + self.lookahead + self.refine

    def final(self):
        """Samples before this get no more frames."""
        return self.frames * self.hop_length - self.n_fft // 2

    def _synthesize(self, magnitude, following):
        """Give the next frame (``self.phased``; magnitude (batch, bins)) its phase, overlap-add it and refine
        the open frames: a generator that stops after each piece of that work (:meth:`step`)."""
        # the loudest coefficient up to the look-ahead: what this frame sees, however the frames came in
        self.peak = np.maximum(self.peak, magnitude.max(axis=1))
        if following is not None:
            self.peak = np.maximum(self.peak, following.max(axis=1))
        # log-magnitudes clamped 11 nepers below the peak, as nstaudio.pghi does
        floor = np.log(np.maximum(self.peak, _TINY))[:, None] - 11.0
        raw_log = np.log(np.maximum(magnitude, _TINY))
        log_magnitude = np.maximum(raw_log, floor)
        d_bin = np.zeros_like(log_magnitude)  # zero at DC and Nyquist: the spectrum is symmetric about them
        d_bin[:, 1:-1] = 0.5 * (log_magnitude[:, 2:] - log_magnitude[:, :-2])
        if following is not None:
            after = np.maximum(np.log(np.maximum(following, _TINY)), floor)
            d_frame = (after - log_magnitude if self.phased == 0 else
                       0.5 * (after - np.maximum(self.previous_log, floor)))
        else:
            d_frame = (np.zeros_like(log_magnitude) if self.phased == 0 else
                       log_magnitude - np.maximum(self.previous_log, floor))
        freq_step = self.freq_scale * d_frame
        # (batch, bins, 2) pairs: column 0 the previous frame, column 1 this one
        pair_magnitude, pair_time_step, pair_phase = self.pairs
        pair_magnitude[:, :, 1] = magnitude
        pair_time_step[:, :, 1] = self.time_base + self.time_scale * d_bin
        pair_phase[:, :, 1] = 2 * np.pi * self.rng.random(magnitude.shape)
        for b in range(self.batch):
            self.backend.heap_integrate_frame(pair_magnitude[b], pair_time_step[b], freq_step[b],
                                              self.tolerance * self.peak[b], pair_phase[b])
            yield True  # a piece of work done: :meth:`step` returns here
        for pair in self.pairs:
            pair[:, :, 0] = pair[:, :, 1]
        self.previous_log = raw_log
        # the new frame joins the open ones and the overlap-added signal
        spectrum = magnitude * np.exp(1j * pair_phase[:, :, 1])
        self._add(self.phased, spectrum)
        self.open = np.concatenate([self.open, spectrum[:, np.newaxis, :]], axis=1)
        self.open_magnitude = np.concatenate([self.open_magnitude, magnitude[:, np.newaxis, :]], axis=1)
        self.phased += 1
        if self.iterations:
            yield True  # the overlap-add, a piece of its own
            for _ in range(self.iterations):
                self._refine()
                yield True
            pair_phase[:, :, 0] = np.angle(self.open[:, -1])  # the next frame grows from the refined phase
        if self.open.shape[1] > self.refine:  # the oldest open frame is final (contiguous: refined in place)
            self.open = np.ascontiguousarray(self.open[:, 1:])
            self.open_magnitude = np.ascontiguousarray(self.open_magnitude[:, 1:])
            self.frames += 1

    def _add(self, frame, spectrum):
        """Overlap-add frame ``frame``'s windowed inverse FFT of ``spectrum`` (batch, bins), and its squared
        window (a frame's window counts once, however often its spectrum changes)."""
        offset = frame * self.hop_length - self.n_fft // 2 - self.output_start
        grow = offset + self.n_fft - self.weight.shape[0]
        if grow > 0:  # room for a few frames more at once: growing copies what is there
            grow += 4 * self.hop_length
            self.output = np.concatenate([self.output, np.zeros((self.batch, grow))], axis=1)
            self.weight = np.concatenate([self.weight, np.zeros(grow)])
        signal = scipy.fft.irfft(spectrum[:, np.newaxis], n=self.n_fft, axis=-1)
        self.backend.overlap_add_frames(self.output, signal, self.window, offset, self.hop_length)
        self.weight[offset:offset + self.n_fft] += self.window_squared

    def _refine(self):
        """One RTISI-LA pass: every open frame takes the phase of the signal under it (all frames from the
        same signal, so that the pass is one batch of FFTs)."""
        count = self.open.shape[1]
        offset = self.frames * self.hop_length - self.n_fft // 2 - self.output_start
        segments = self.backend.normalized_frames(self.output, self.weight, self.window, offset, self.hop_length,
                                                  count, _TINY)
        estimate = scipy.fft.rfft(segments, axis=-1)  # (batch, count, bins)
        change = self.backend.keep_magnitude(self.open, self.open_magnitude, estimate)  # self.open in place
        # the inverse FFT is linear: each frame's contribution changes by that of the change
        self.backend.overlap_add_frames(self.output, scipy.fft.irfft(change, n=self.n_fft, axis=-1), self.window,
                                        offset, self.hop_length)
