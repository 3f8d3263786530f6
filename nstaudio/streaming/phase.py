"""Magnitude frames back to samples as they come: real-time PGHI, RTISI-LA passes and overlap-add.

:class:`FramePhase` gives one frame at a time its phase by real-time Phase Gradient Heap
Integration (Prusa & Holighaus 2017), :class:`OverlapAdd` keeps the signal the frames
overlap-add into, and :class:`PhaseSynthesis` joins them: it holds each frame back for the
look-ahead its phase gradient needs, then refines the frames still open by RTISI-LA passes
(Zhu, Beauregard & Wyse 2007), a piece of work at a time.
"""

import numpy as np
import scipy.fft

from ..spectral import _TINY, HANN_GAMMA, PGHI_TOLERANCE, get_window

# Log-magnitudes are clamped this many nepers below the loudest coefficient so far, as nstaudio.pghi does.
LOG_RANGE = 11.0


class FramePhase:
    """Real-time PGHI: each frame's phase grown from the previous frame's along the phase gradient.

    The gradient comes from the log-magnitudes, through a Gaussian-window approximation of the
    Hann window (as :func:`nstaudio.pghi`); its time derivative is a centred difference when the
    following frame is given (one frame of look-ahead), a backward one when not.

    Parameters
    ----------
    n_fft, hop_length : int
    batch : int
        Audio channels, side by side.
    tolerance : float
        Coefficients below ``tolerance`` times the loudest so far get random phase.
    seed : int
        Seeds that random phase.
    backend : module
        Whose ``heap_integrate_frame`` runs.
    """

    def __init__(self, *, n_fft, hop_length, batch, tolerance, seed, backend):
        self.n_fft, self.batch, self.tolerance, self.seed, self.backend = n_fft, batch, tolerance, seed, backend
        gamma = HANN_GAMMA * n_fft ** 2
        bins = np.arange(1 + n_fft // 2)
        self.time_base = hop_length * 2 * np.pi * bins / n_fft
        self.time_scale = hop_length * n_fft / gamma
        self.freq_scale = -gamma / (n_fft * hop_length)
        self.reset()

    def reset(self):
        """Forget all frames: the next is a stream's first."""
        bins = 1 + self.n_fft // 2
        self.rng = np.random.default_rng(self.seed)
        # the heap integration's (bins, 2) inputs per channel, column 0 the last frame phased,
        # column 1 the next: magnitude, phase advance per frame, phase
        self.pairs = tuple(np.zeros((self.batch, bins, 2)) for _ in range(3))
        self.previous_log = np.zeros((self.batch, bins))  # the last frame's log-magnitude, before clamping
        self.peak = np.zeros(self.batch)

    def phase(self, magnitude, following, *, first):
        """Give the next frame its phase: a generator that stops after each channel's heap integration.

        Parameters
        ----------
        magnitude : np.ndarray, shape (batch, bins), float64
            The frame's magnitudes.
        following : np.ndarray, shape (batch, bins), or None
            The frame after it (the look-ahead), or None for none.
        first : bool
            Whether this is the stream's first frame (no frame before it).

        Yields
        ------
        True
            After each channel's heap integration.

        Returns
        -------
        np.ndarray, shape (batch, bins), float64
            The frame's phase (the generator's return value).
        """
        # the loudest coefficient up to the look-ahead: what this frame sees, however the frames came in
        self.peak = np.maximum(self.peak, magnitude.max(axis=1))
        if following is not None:
            self.peak = np.maximum(self.peak, following.max(axis=1))
        raw_log = np.log(np.maximum(magnitude, _TINY))
        freq_step = self._gradients(magnitude, raw_log, following, first)
        pair_magnitude, pair_time_step, pair_phase = self.pairs
        for b in range(self.batch):
            self.backend.heap_integrate_frame(pair_magnitude[b], pair_time_step[b], freq_step[b],
                                              self.tolerance * self.peak[b], pair_phase[b])
            yield True  # a piece of work done
        for pair in self.pairs:
            pair[:, :, 0] = pair[:, :, 1]
        self.previous_log = raw_log
        return pair_phase[:, :, 1]

    def continue_from(self, phase):
        """Let the next frame grow from ``phase`` (batch, bins), the last frame's refined phase."""
        self.pairs[2][:, :, 0] = phase

    def _gradients(self, magnitude, raw_log, following, first):
        """Fill column 1 of :attr:`pairs` for the next frame; return its phase advance per bin, (batch, bins)."""
        floor = np.log(np.maximum(self.peak, _TINY))[:, None] - LOG_RANGE
        log_magnitude = np.maximum(raw_log, floor)
        d_bin = np.zeros_like(log_magnitude)  # zero at DC and Nyquist: the spectrum is symmetric about them
        d_bin[:, 1:-1] = 0.5 * (log_magnitude[:, 2:] - log_magnitude[:, :-2])
        if following is not None:
            after = np.maximum(np.log(np.maximum(following, _TINY)), floor)
            d_frame = (after - log_magnitude if first else
                       0.5 * (after - np.maximum(self.previous_log, floor)))
        else:
            d_frame = (np.zeros_like(log_magnitude) if first else
                       log_magnitude - np.maximum(self.previous_log, floor))
        freq_step = self.freq_scale * d_frame
        pair_magnitude, pair_time_step, pair_phase = self.pairs
        pair_magnitude[:, :, 1] = magnitude
        pair_time_step[:, :, 1] = self.time_base + self.time_scale * d_bin
        pair_phase[:, :, 1] = 2 * np.pi * self.rng.random(magnitude.shape)
        return freq_step


class OverlapAdd:
    """The signal that windowed frames overlap-add into, normalised by their summed squared windows.

    Parameters
    ----------
    n_fft, hop_length : int
        Frame ``f`` covers samples ``f hop - n_fft/2 .. f hop + n_fft/2`` (a centered STFT's), under a Hann window.
    batch : int
    backend : module
        Whose ``overlap_add_frames`` and ``normalized_frames`` run.
    """

    def __init__(self, *, n_fft, hop_length, batch, backend):
        self.n_fft, self.hop_length, self.batch, self.backend = n_fft, hop_length, batch, backend
        self.window = get_window("hann", n_fft, n_fft).astype(np.float64)
        self.window_squared = self.window ** 2
        self.reset()

    def reset(self):
        """Forget the signal: the next frame added is a stream's first."""
        # output[:, i] and weight[i] (the summed squared windows) are sample start + i
        self.output = np.zeros((self.batch, 0), np.float64)
        self.weight = np.zeros(0, np.float64)
        self.start = -(self.n_fft // 2)
        self.emitted = 0  # samples returned (those before 0, half of frame 0, never are)

    def add(self, frame, spectrum):
        """Overlap-add frame ``frame``'s windowed inverse FFT of ``spectrum`` (batch, bins), and its squared
        window (a frame's window counts once, however often its spectrum changes)."""
        offset = self._offset(frame)
        grow = offset + self.n_fft - self.weight.shape[0]
        if grow > 0:  # room for a few frames more at once: growing copies what is there
            grow += 4 * self.hop_length
            self.output = np.concatenate([self.output, np.zeros((self.batch, grow))], axis=1)
            self.weight = np.concatenate([self.weight, np.zeros(grow)])
        signal = scipy.fft.irfft(spectrum[:, np.newaxis], n=self.n_fft, axis=-1)
        self.backend.overlap_add_frames(self.output, signal, self.window, offset, self.hop_length)
        self.weight[offset:offset + self.n_fft] += self.window_squared

    def frames(self, first, count):
        """The windowed, normalised signal under frames ``first .. first + count - 1``: (batch, count, n_fft)."""
        return self.backend.normalized_frames(self.output, self.weight, self.window, self._offset(first),
                                              self.hop_length, count, _TINY)

    def change(self, first, spectra):
        """Add to the signal the windowed inverse FFTs of ``spectra`` (batch, count, bins), the changes of frames
        ``first ..`` (the inverse FFT is linear: a frame's contribution changes by that of its change)."""
        self.backend.overlap_add_frames(self.output, scipy.fft.irfft(spectra, n=self.n_fft, axis=-1), self.window,
                                        self._offset(first), self.hop_length)

    def take(self, final):
        """The samples from the last call's end up to ``final`` (no frame will reach them again), (batch, m)
        float32."""
        if final <= self.emitted:
            return np.zeros((self.batch, 0), np.float32)
        out = self.output[:, self.emitted - self.start:final - self.start]
        weight = self.weight[self.emitted - self.start:final - self.start]
        out = np.where(weight > _TINY, out / np.where(weight > _TINY, weight, 1.0), out).astype(np.float32)
        self.emitted = max(self.emitted, final)
        drop = max(0, final - self.start)
        self.output, self.weight = self.output[:, drop:], self.weight[drop:]
        self.start += drop
        return out

    def _offset(self, frame):
        """Where frame ``frame`` starts in :attr:`output`."""
        return frame * self.hop_length - self.n_fft // 2 - self.start


class PhaseSynthesis:
    """Magnitude frames in, samples out: real-time PGHI, RTISI-LA passes and overlap-add.

    Frame ``f``'s phase grows from frame ``f - 1``'s along the phase gradient the
    log-magnitudes give (:class:`FramePhase`), and is fixed once frame ``f + lookahead`` is
    there: the time derivative of the log-magnitude is a centred difference with one frame of
    look-ahead, a backward one without.

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
        Whose ``heap_integrate_frame``, ``overlap_add_frames``, ``normalized_frames`` and
        ``keep_magnitude`` run.
    """

    def __init__(self, *, n_fft, hop_length, batch, lookahead=1, iterations=0, open_frames=None,
                 tolerance=PGHI_TOLERANCE, seed=0, backend):
        self.n_fft, self.hop_length, self.batch = n_fft, hop_length, batch
        self.lookahead, self.iterations, self.backend = lookahead, iterations, backend
        if open_frames is None:  # RTISI-LA's: those that overlap the next frame
            open_frames = max(1, -(-n_fft // hop_length) - 1)
        self.refine = open_frames if iterations else 0
        self.frame_phase = FramePhase(n_fft=n_fft, hop_length=hop_length, batch=batch, tolerance=tolerance,
                                      seed=seed, backend=backend)
        self.overlap_add = OverlapAdd(n_fft=n_fft, hop_length=hop_length, batch=batch, backend=backend)
        self.reset()

    def reset(self):
        bins = 1 + self.n_fft // 2
        self.frame_phase.reset()
        self.overlap_add.reset()
        self.pending = np.zeros((self.batch, bins, 0), np.float64)  # magnitudes waiting for their look-ahead
        self.job = None  # the frame being synthesized, a generator from _synthesize
        self.piece = 0  # the next piece of its work: a channel's phase, the overlap-add, a refinement pass
        self.frames = 0  # frames final (overlap-added for good)
        self.phased = 0  # frames with a phase, final or still refined
        # frames frames..phased-1, being refined: their spectra and magnitudes, (batch, frames, bins)
        self.open = np.zeros((self.batch, 0, bins), np.complex128)
        self.open_magnitude = np.zeros((self.batch, 0, bins))

    def available(self, frames):
        """Samples final after ``frames`` magnitude frames came in (vectorised)."""
        done = np.maximum(0, np.asarray(frames) - self.lookahead - self.refine)
        return np.maximum(0, done * self.hop_length - self.n_fft // 2)

    def process(self, magnitude, until=None):
        """Take magnitude frames (batch, bins, n), non-negative; return the samples now final, (batch, m) float32.

        ``until`` (a sample count) stops once the samples returned in all reach it: frames wait
        until their samples are due, so that work that arrives in bursts (a strided network
        completes several frames at once) is spread over the calls. None: all there is.
        """
        self.push(magnitude)
        while (until is None or self.final() < until) and self.step():
            pass
        return self.take()

    def push(self, magnitude):
        """Queue magnitude frames (batch, bins, n), non-negative, for :meth:`step`."""
        if not magnitude.shape[2]:
            return
        self.pending = np.concatenate([self.pending, np.asarray(magnitude, dtype=np.float64)], axis=2)

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
        return self.overlap_add.take(self.final())

    def frames_for(self, samples):
        """Magnitude frames (look-ahead included) that ``samples`` final samples take."""
        return -(-(samples + self.n_fft // 2) // self.hop_length) + self.lookahead + self.refine

    def final(self):
        """Samples before this get no more frames."""
        return self.frames * self.hop_length - self.n_fft // 2

    def _synthesize(self, magnitude, following):
        """Give the next frame (``self.phased``; magnitude (batch, bins)) its phase, overlap-add it and refine
        the open frames: a generator that stops after each piece of that work (:meth:`step`)."""
        phase = yield from self.frame_phase.phase(magnitude, following, first=self.phased == 0)
        # the new frame joins the open ones and the overlap-added signal
        spectrum = magnitude * np.exp(1j * phase)
        self.overlap_add.add(self.phased, spectrum)
        self.open = np.concatenate([self.open, spectrum[:, np.newaxis, :]], axis=1)
        self.open_magnitude = np.concatenate([self.open_magnitude, magnitude[:, np.newaxis, :]], axis=1)
        self.phased += 1
        if self.iterations:
            yield True  # the overlap-add, a piece of its own
            for _ in range(self.iterations):
                self._refine()
                yield True
            self.frame_phase.continue_from(np.angle(self.open[:, -1]))  # the next frame grows from the refined phase
        if self.open.shape[1] > self.refine:  # the oldest open frame is final (contiguous: refined in place)
            self.open = np.ascontiguousarray(self.open[:, 1:])
            self.open_magnitude = np.ascontiguousarray(self.open_magnitude[:, 1:])
            self.frames += 1

    def _refine(self):
        """One RTISI-LA pass: every open frame takes the phase of the signal under it (all frames from the
        same signal, so that the pass is one batch of FFTs)."""
        estimate = scipy.fft.rfft(self.overlap_add.frames(self.frames, self.open.shape[1]), axis=-1)
        change = self.backend.keep_magnitude(self.open, self.open_magnitude, estimate)  # self.open in place
        self.overlap_add.change(self.frames, change)
