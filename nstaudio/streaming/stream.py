"""``nstaudio.Stream``: a trained model as an effect, fixed blocks in, the same blocks out."""

import time

import numpy as np

from ..errors import AudioError, ParameterError
from ..kernels import get_backend
from ..kernels.thread_share import limit_threads
from ..limits import MAX_CHANNELS
from ..models import TRAINING_PEAK, Network, load_model
from ..nn.context import CONTEXT_FRAMES
from ..validation import check_choice, check_float, check_int, check_sample_rate
from .collector import age_objects
from .frames import GanFrames, StyleFrames
from .phase import PhaseSynthesis
from .resample import StreamingResampler
from .schedule import deadline, work_ahead

# The phase reconstruction's defaults, by whether the model is causal: (lookahead, open frames
# (None: n_fft // hop - 1), passes). A centred model already waits long for its network, so its
# phase takes RTISI-LA's open frames and 2 passes (most of the gain of 4, at half the cost); a
# causal model exists for its latency, so its phase has no look-ahead and one open frame, refined
# 4 times (docs/decisions.md, "Stream: phase defaults").
PHASE_DEFAULTS = {False: (1, None, 2), True: (0, 1, 4)}
# Hops of latency in which the work of the frames next due is done ahead, a piece per block, by
# the model's kind. A style model's frames come one a hop: one hop. A gan model's come a window's
# hop at a time, and its window's work (the generator, the mel inversion, then the phase of its
# frames) must fit in the shares of the blocks before its first frame is due: 8 hops
# (docs/decisions.md, "Stream: spread").
SPREAD_HOPS = {"style": 1, "gan": 8}
MAX_SPREAD = 64
MAX_PHASE_ITERS = 64
MAX_PHASE_FRAMES = 64
MIN_BLOCK = 64
MAX_BLOCK = 2 ** 20


class Stream:
    """Stylize audio as it comes: block in, block out, at a constant latency.

    The blocks are resampled to the model's rate by a polyphase filter with kept state, cut
    into STFT frames, run through the model frame by frame (each new frame from cached
    activations, with the look-ahead the architecture needs), given phase by real-time Phase
    Gradient Heap Integration (refined by RTISI-LA passes, ``phase_iters``) and overlap-added
    back into samples, then resampled back. The model's output frames equal the offline
    ``stylize(model=...)``'s for the same input; each output sample is exactly
    :attr:`latency` samples behind its input sample, whatever the block size. Unlike
    ``stylize``, the stream cannot see the whole recording: it takes the input's level from
    ``input_gain`` and does not match the output's loudness to the input's.

    Parameters
    ----------
    model : Network or str or os.PathLike
        A trained model (``nstaudio.train_style``, ``nstaudio.train_gan``, ``nstaudio.load_model``)
        or its file. A style model runs frame by frame from cached activations; a gan model's
        generator runs on half-overlapping windows of the length it was trained on, crossfaded,
        as the offline ``gan`` method does, each as soon as its frames are in.
    channels : int
        Audio channels of every block (each runs through the model on its own).
    block_size : int
        Samples per channel in every block, at least 64.
    sr : int or None
        The blocks' sample rate; None: the model's.
    device : {"auto", "cpu", "numpy"}
        The kernels: numba's (``"auto"``, ``"cpu"``) or the numpy reference. One frame's work
        is a few small matrix products, so the stream runs on the CPU.
    input_gain : float or None
        The gain the input takes before the network, undone after it: the network was trained
        on recordings peaking at ``TRAINING_PEAK`` (-1 dBFS). None: ``TRAINING_PEAK``, right for
        input that peaks at full scale; raise it for a quieter source (offline, ``stylize``
        measures the whole recording's peak, which a stream cannot).
    lookahead : {1, 0} or None
        Frames of look-ahead of the phase-gradient estimate: 1 (centred) or 0 (causal, one hop
        less latency).
    phase_iters : int or None
        Passes of real-time iterative refinement (RTISI-LA) of each frame's phase while the
        ``phase_frames`` frames after it come in (that many hops more latency); 0 keeps the
        real-time PGHI phase alone.
    phase_frames : int or None
        Frames kept open for that refinement.
        The three default (None) by the model: for a causal model (``train_style(causal=True)``,
        trained for low latency) 0, 4 passes and 1 frame; else 1, 2 passes and
        ``n_fft // hop_length - 1`` frames (:data:`PHASE_DEFAULTS`, from the benchmark).
    spread : int or None
        Hops of latency in which the work of the frames next due is done ahead, a piece at a
        time in the blocks before they are due: more spreads a burst of work (a gan model's
        window) over more blocks. None: by the model's kind (:data:`SPREAD_HOPS`).
    seed : int
        Seeds the random phase of the quietest coefficients.

    Attributes
    ----------
    latency : int
        Samples (at ``sr``) by which the output trails the input.
    latency_parts : dict
        What the latency is made of, in samples at ``sr``: ``window`` (one STFT frame), ``network``
        (the architecture's look-ahead, at its worst), ``phase`` (the look-ahead of the phase reconstruction),
        ``resampling`` (both filters' delay), ``spread`` (``spread`` hops, in which a frame's work
        is spread over the blocks before it is due) and ``alignment`` (the rest: the hop and the
        stride grid that blocks fall on).

    Notes
    -----
    A host that calls :meth:`process` from its audio thread should hold BLAS to one thread from
    the construction on (a gan model's generator multiplies through it, and its threads'
    wake-ups stall a product now and then; the construction measures the pieces of work) and
    keep the objects made before out of Python's full collections (``gc.freeze()``), as
    ``nstaudio stream --live`` (:func:`nstaudio.streaming.live.run_live`) does.

    Examples
    --------
    >>> stream = nstaudio.Stream("violin.npz", channels=2, block_size=512, sr=44100)
    >>> out = [stream.process(block) for block in blocks]   # each (2, 512) float32
    >>> tail = stream.flush()                               # (2, stream.latency)
    """

    def __init__(self, model, *, channels=1, block_size=512, sr=None, device="auto", input_gain=None, lookahead=None,
                 phase_iters=None, phase_frames=None, spread=None, seed=0):
        self.model = model = checked_model(model)
        sr_model, n_fft, hop_length = model.spectrogram_settings
        self.channels = check_int("channels", channels, minimum=1, maximum=MAX_CHANNELS)
        self.block_size = check_int("block_size", block_size, minimum=MIN_BLOCK, maximum=MAX_BLOCK)
        self.sr = sr_model if sr is None else check_sample_rate(sr)
        check_choice("device", device, ("auto", "cpu", "numpy"))
        backend = get_backend("cpu" if device == "auto" else device)
        self.input_gain = np.float32(TRAINING_PEAK if input_gain is None else
                                     check_float("input_gain", input_gain, minimum=1e-6, maximum=1e6))
        phase_frames = self._phase_options(lookahead, phase_iters, phase_frames)
        self._frames, self._period = self._model_frames(backend)
        self._synthesis = PhaseSynthesis(n_fft=n_fft, hop_length=hop_length, batch=self.channels,
                                         lookahead=self.lookahead, iterations=self.phase_iters,
                                         open_frames=phase_frames, seed=seed, backend=backend)
        resampling = self._resamplers(backend)
        # the slack in which the work of the next frames is spread over the blocks before they are due
        self.spread = check_int("spread", SPREAD_HOPS[model.kind] if spread is None else spread, minimum=1,
                                maximum=MAX_SPREAD)
        self._slack = -(-self.spread * hop_length * self.sr // sr_model)
        self._measure_latency(resampling)
        self._warm_up()
        # the objects made so far (this construction's, and the caller's imports) become old now, not in
        # the stream's blocks
        age_objects()

    def _phase_options(self, lookahead, phase_iters, phase_frames):
        """Set :attr:`lookahead` and :attr:`phase_iters`, defaulted by the model (:data:`PHASE_DEFAULTS`);
        return the open frames (None: the synthesis's default)."""
        default_lookahead, default_frames, default_iters = PHASE_DEFAULTS[getattr(self.model.arch, "causal", False)]
        self.lookahead = int(check_choice("lookahead", default_lookahead if lookahead is None else lookahead, (0, 1)))
        self.phase_iters = check_int("phase_iters", default_iters if phase_iters is None else phase_iters, minimum=0,
                                     maximum=MAX_PHASE_ITERS)
        return default_frames if phase_frames is None else check_int("phase_frames", phase_frames, minimum=1,
                                                                      maximum=MAX_PHASE_FRAMES)

    def _model_frames(self, backend):
        """``(frames, period)``: the model's frames (samples in, stylized frames out) and the frames between
        its bursts of output (the generator's windows, the strided bottleneck's frames)."""
        model = self.model
        if model.kind == "gan":
            frames = GanFrames(model, batch=self.channels, backend=backend)
            return frames, frames.hop
        _, n_fft, hop_length = model.spectrogram_settings
        frames = StyleFrames(*model.triple, n_fft=n_fft, hop_length=hop_length, batch=self.channels,
                             context=CONTEXT_FRAMES, backend=backend)
        return frames, model.arch.stride ** 4

    def _resamplers(self, backend):
        """Set the resamplers to the model's rate and back (None where ``sr`` is the model's); return both
        filters' delay, in samples at ``sr``."""
        sr_model = self.model.spectrogram_settings[0]
        self._to_model = self._from_model = None
        if self.sr == sr_model:
            return 0
        self._to_model = StreamingResampler(self.sr, sr_model, self.channels, backend=backend)
        # both ways have the same filter length (20 max(up, down) + 1); the way back is shifted by
        # under one sample so that the two filters delay by whole samples
        up, both_halves = self._to_model.up, 2 * self._to_model.half
        offset = both_halves % up
        self._from_model = StreamingResampler(sr_model, self.sr, self.channels, backend=backend, offset=offset)
        return (both_halves - offset) // up

    def _measure_latency(self, resampling):
        """Set :attr:`latency`, :attr:`latency_parts` and the silence the output starts with."""
        _, n_fft, hop_length = self.model.spectrogram_settings
        received = self._scan()
        self._padding = self._worst_shortfall(received) + self._slack  # silence the output starts with
        self.latency = self._padding + resampling
        ratio = self.sr / self.model.spectrogram_settings[0]
        window = int(round(n_fft * ratio))
        network = int(round(self._network_lookahead(received) * hop_length * ratio))
        phase = int(round((self.lookahead + self._synthesis.refine) * hop_length * ratio))
        self.latency_parts = dict(window=window, network=network, phase=phase, resampling=resampling,
                                  spread=self._slack,
                                  alignment=self.latency - window - network - phase - resampling - self._slack)

    def _warm_up(self):
        """Compile and load every kernel now, not in the first blocks of a live stream: in blocks, so that
        the arrays take every layout they will take (numba compiles one version per layout). This also
        measures the pieces of work ahead (a property of the machine, kept over resets): the records
        kept are the second pass's, as the first pass's include what a first call costs (numba's
        dispatch of a new layout, a first product's buffers), which would hold that work back for
        dozens of blocks (docs/decisions.md, "Stream: warm-up")."""
        sr_model, n_fft, _ = self.model.spectrogram_settings
        blocks = -(-(self.latency + self.sr * n_fft // sr_model) // self.block_size) + 1
        for _ in range(2):
            self._piece_times = {}  # kind of piece of work ahead -> the longest lately (seconds)
            self.reset()
            for _ in range(blocks):
                self._run(np.zeros((self.channels, self.block_size), np.float32), self.block_size)
        self.reset()

    def reset(self):
        """Forget all input: the next block is a stream's first."""
        for stage in (self._to_model, self._frames, self._synthesis, self._from_model):
            if stage is not None:
                stage.reset()
        self._pending = np.zeros((self.channels, self._padding), np.float32)
        self._emitted = 0

    def process(self, block):
        """Stylize the next block.

        Parameters
        ----------
        block : np.ndarray, shape (channels, block_size), or (block_size,) for one channel
            Finite floating-point samples at ``sr``.

        Returns
        -------
        np.ndarray, same shape, float32
            The output :attr:`latency` samples behind (silence until the first input comes through).
        """
        x = self._check_block(block)
        out = self._run(x, self.block_size)
        return out[0] if np.ndim(block) == 1 else out

    def flush(self):
        """The output still owed after the last block, as if silence followed; then :meth:`reset`.

        Returns
        -------
        np.ndarray, shape (channels, latency) float32
        """
        out = self._run(np.zeros((self.channels, self.latency), np.float32), self.latency)
        self.reset()
        return out

    def _run(self, x, n):
        # One frame's work is too small to share out: the thread pool's start-up would cost more
        # than it saves, and a live effect's audio thread should not wait on other threads.
        with limit_threads(1):
            return self._run_here(x, n)

    def _run_here(self, x, n):
        started = time.perf_counter()
        y = x * self.input_gain
        if self._to_model is not None:
            y = self._to_model.process(y)
        # What this call's output needs is done now (frames a strided network completes in a
        # burst wait until then; before the latency's padding is out, nothing is due). Then,
        # within a share of the block's duration, work goes on ahead on what the next hop needs,
        # a piece at a time (nstaudio.streaming.schedule). (Work further ahead would fill every
        # block up to that share, and leave it no room for the machine's hiccups.) Each network
        # frame is its own matrix product, so the output does not depend on when the pieces are done.
        wanted = self._emitted + n - self._padding  # output samples this call must complete
        due = self._model_samples(wanted) if wanted > 0 else None
        frames = self._frames.process(y, limit=self._frames_for(due))
        if due is None:
            self._synthesis.push(frames)
            y = self._synthesis.take()
        else:
            y = self._synthesis.process(frames, until=due)
        # (at the start, as soon as they come, the frames the first output takes)
        ahead = self._model_samples(max(wanted, 1) + self._slack)
        target = self._synthesis.frames_for(ahead)
        work_ahead(lambda: self._next_piece(target, ahead), deadline(started, n, self.sr), self._piece_times)
        y = np.concatenate([y, self._synthesis.take()], axis=1)
        if self._from_model is not None:
            y = self._from_model.process(y)
        return self._emit(y / self.input_gain, n)

    def _next_piece(self, target, ahead):
        """The next piece of work ahead, as :func:`~nstaudio.streaming.schedule.work_ahead` takes it: the
        phase of the frames there are, until the samples ``ahead`` are final, else the model's work on its
        first ``target`` frames (a frame of a layer, a piece of a generator's window); None for none."""
        piece = self._synthesis.next_piece() if self._synthesis.final() < ahead else None
        if piece is not None:
            return ("phase", piece), self._synthesis.step
        piece = self._frames.next_piece(target)
        if piece is None:
            return None
        return ("frames", piece), lambda: self._synthesis.push(self._frames.step(target, piece)[1])

    def _emit(self, y, n):
        """Queue output samples ``y`` (channels, m) behind those still pending; return the next ``n``."""
        self._pending = np.concatenate([self._pending, y], axis=1)
        self._emitted += n
        if self._pending.shape[1] < n:  # the latency is the worst case over every input length: never
            raise RuntimeError(f"nstaudio bug: stream underrun, {self._pending.shape[1]} samples ready, {n} due")
        out, self._pending = self._pending[:, :n], self._pending[:, n:]
        return np.ascontiguousarray(out, dtype=np.float32)

    def _frames_for(self, samples):
        """The model's frames that ``samples`` final model-rate samples take; none for None (nothing due)."""
        return 0 if samples is None else self._synthesis.frames_for(samples)

    def _model_samples(self, samples):
        """Model-rate samples that ``samples`` output samples (before the latency's padding) take."""
        return samples if self._from_model is None else self._from_model.needed(samples)

    def _check_block(self, block):
        x = np.asarray(block)
        shape = (self.channels, self.block_size)
        if x.ndim == 1 and self.channels == 1:
            x = x[np.newaxis]
        if x.shape != shape:
            raise ParameterError(f"block must have shape {shape} (channels, block_size), got {np.shape(block)}")
        if x.dtype.kind != "f":
            raise ParameterError(f"block must hold floating-point samples (full scale 1.0), got {x.dtype}")
        if not np.all(np.isfinite(x)):
            raise AudioError("block holds NaN or infinite samples")
        return x.astype(np.float32)

    def _produced(self, received):
        """Output samples (at ``sr``, before the latency's padding) ready after ``received`` input samples."""
        y = received if self._to_model is None else self._to_model.available(received)
        y = self._synthesis.available(self._frames.available(y))
        return y if self._from_model is None else self._from_model.available(y)

    def _worst_shortfall(self, received):
        """The most the ready output ever trails the input, over the input lengths ``received`` (from
        :meth:`_scan`): the blocks land on the hop and stride grids in every way, so every length is tried
        up to where it repeats."""
        return int(np.max(received - self._produced(received)))

    def _scan(self):
        """Input lengths (at ``sr``) past the start by several periods of the network's and the hop's grids."""
        sr_model, n_fft, hop_length = self.model.spectrogram_settings
        frames = 2 * CONTEXT_FRAMES + 8 * self._period + 16
        return np.arange(int((n_fft + frames * hop_length) * self.sr / sr_model) + 64 * self.sr // sr_model + 1)

    def _network_lookahead(self, received):
        """The model's worst look-ahead, in frames, once past the start: frames in, frames not yet out."""
        at_model_rate = received if self._to_model is None else self._to_model.available(received)
        frames_in = self._frames.spectrogram.available(at_model_rate)
        lag = frames_in - self._frames.available(at_model_rate)
        return int(np.max(lag[len(lag) // 2:]))


def checked_model(model):
    """The style or gan model a stream runs.

    Parameters
    ----------
    model : Network or str or os.PathLike
        The model, or its file.

    Returns
    -------
    Network

    Raises
    ------
    ParameterError
        A Network of another kind than ``style`` or ``gan``.
    """
    if not isinstance(model, Network):
        return load_model(model, kind=("style", "gan"))
    if model.kind not in ("style", "gan"):
        raise ParameterError(f"Stream runs style models (nstaudio.train_style) and gan models (nstaudio.train_gan), "
                             f"got a {model.kind} model")
    return model
