"""Networks of the `feedforward` method: training them from audio, their files, the shipped loss network.

A loss network (an autoencoder that reconstructs log-magnitude spectrograms) is trained once
on a corpus; nstaudio ships one (``default_lossnet``). A style model (a transformation
network) is trained per style against a loss network and then stylizes any content in one
pass (``stylize(..., model=...)``). Both are :class:`Network` objects saved as checkpoints.
"""

import dataclasses
import hashlib
import math
import os
from dataclasses import dataclass
from importlib import resources

import numpy as np

from . import audio, spectral
from .errors import AudioError, ParameterError
from .limits import MAX_WORK_RATE, MIN_WORK_RATE
from .kernels import get_backend
from .kernels.blas_threads import holds_one_blas_thread
from .nn.autoencoder import Architecture
from .nn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, short_repr
from .nn.train import STYLE_LAYERS, TrainingState, train_autoencoder, train_transformer
from .validation import MAX_SEED, as_audio, check_float, check_int, check_sample_rate

KINDS = ("lossnet", "style", "gan")
LOSSNET_CHANNELS = (128, 64, 64, 32)
CONTENT_LAYER = "enc3"
# Adam steps above 1 move every weight by about its whole size each step: training diverges.
MAX_TRAINING_LEARNING_RATE = 1.0
# Networks see every recording at one level: peak -1 dBFS. A log1p magnitude depends on the
# level, and a style clip recorded quieter than the corpus would otherwise teach the network
# to change the loudness instead of the timbre (measured: a quiet violin style made a model
# that raised the mean log magnitude of quiet piano from 0.07 to 0.47).
TRAINING_PEAK = 10 ** (-1 / 20)


@dataclass
class Network:
    """A trained network (an autoencoder, or MelGAN-VC's three networks) and the spectrogram settings it works on.

    Attributes
    ----------
    arch : Architecture or GanArchitecture
    params, state : dict of dict of np.ndarray
    meta : dict
        ``kind`` ("lossnet", "style" or "gan"), ``sr``, ``n_fft``, ``hop_length`` and the
        training settings.
    """

    arch: Architecture
    params: dict
    state: dict
    meta: dict

    @property
    def kind(self):
        return self.meta["kind"]

    @property
    def spectrogram_settings(self):
        """``(sr, n_fft, hop_length)`` the network was trained with."""
        return self.meta["sr"], self.meta["n_fft"], self.meta["hop_length"]

    @property
    def triple(self):
        """``(arch, params, state)`` as the lower-level functions take it."""
        return self.arch, self.params, self.state


def save_model(path, network, *, dtype=None):
    """Write a finished :class:`Network` (``dtype=np.float16`` halves the file)."""
    save_checkpoint(path, network.arch, network.params, network.state, meta={**network.meta, "complete": True},
                    dtype=dtype)


def load_model(path, kind=None):
    """Read a :class:`Network` saved by :func:`save_model` or by a finished training run.

    Parameters
    ----------
    path : str or os.PathLike
    kind : {"lossnet", "style", "gan"}, tuple of them, or None
        Refuse a file holding another kind.

    Raises
    ------
    CheckpointError
        Unreadable, another format or version, the wrong kind, an unfinished training run,
        or spectrogram settings of the wrong type, out of range or not those of the network.
    """
    ckpt = load_checkpoint(path)
    meta = ckpt.meta
    missing = [key for key in ("kind", "sr", "n_fft", "hop_length") if key not in meta]
    if missing or not isinstance(meta["kind"], str) or meta["kind"] not in KINDS:
        raise CheckpointError(f"{path}: not an nstaudio network (header lacks {', '.join(missing) or 'a known kind'})")
    _check_spectrogram_settings(path, ckpt.arch, meta)
    complete = _check_complete(path, meta, default=False)
    wanted = (kind,) if isinstance(kind, str) else kind
    if wanted is not None and meta["kind"] not in wanted:
        raise CheckpointError(f"{path}: holds a {describe_kind(meta['kind'])}, not a "
                              f"{' or '.join(describe_kind(k) for k in wanted)}")
    if not complete:
        raise CheckpointError(f"{path}: an unfinished training run (step {short_repr(meta.get('step'))} of "
                              f"{short_repr(meta.get('steps'))}); finish it with --resume")
    return Network(ckpt.arch, ckpt.params, ckpt.state, meta)


def _meta_int(path, meta, key, minimum, maximum):
    """``meta[key]``, an int in ``[minimum, maximum]``, or a CheckpointError naming it."""
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise CheckpointError(f"{path}: corrupt header ({key} is {short_repr(value)}, not an integer from {minimum} "
                              f"to {maximum})")
    return value


def _check_spectrogram_settings(path, arch, meta):
    """The settings a network was trained with: in the ranges stylize takes, and those of its input layer."""
    _meta_int(path, meta, "sr", MIN_WORK_RATE, MAX_WORK_RATE)
    n_fft = _meta_int(path, meta, "n_fft", 16, 2**16)
    _meta_int(path, meta, "hop_length", 1, n_fft)
    if isinstance(arch, Architecture) != (meta["kind"] != "gan"):
        raise CheckpointError(f"{path}: corrupt header (a {describe_kind(meta['kind'])} holding another network)")
    if not isinstance(arch, Architecture):  # a gan's input layer takes mel bands, of any spectrogram
        return
    if arch.n_bins != 1 + n_fft // 2:
        raise CheckpointError(f"{path}: corrupt header (n_fft {n_fft} makes {1 + n_fft // 2} frequency bins, the "
                              f"network takes {arch.n_bins})")


def _check_complete(path, meta, default):
    """Whether the header marks a finished network (``default`` where it has no mark)."""
    complete = meta.get("complete", default)
    if not isinstance(complete, bool):
        raise CheckpointError(f"{path}: corrupt header (complete is {short_repr(complete)}, not true or false)")
    return complete


def describe_kind(kind):
    """What a network of ``kind`` is called in messages: "loss network", "style model", "gan model"."""
    return {"lossnet": "loss network", "style": "style model", "gan": "gan model"}[kind]


def default_lossnet():
    """The loss network shipped with nstaudio (trained by ``scripts/make_lossnet.py``).

    Raises
    ------
    CheckpointError
        This installation lacks it (``nstaudio/data/lossnet.npz``, made by the script); train
        one with :func:`train_lossnet` and pass it as ``lossnet``.
    """
    path = resources.files("nstaudio") / "data" / "lossnet.npz"
    if not path.is_file():
        raise CheckpointError(f"this installation of nstaudio lacks its loss network ({path}): train one with "
                              "`nstaudio train-lossnet CORPUS_DIR -o lossnet.npz` (scripts/make_corpus.py makes a "
                              "corpus) and pass --lossnet")
    return load_model(path, kind="lossnet")


def training_signals(clips, sr, *, sr_work, name="corpus", labels=None):
    """The recordings as networks train on them: each mono, at ``sr_work`` and at peak ``TRAINING_PEAK``.

    Parameters
    ----------
    clips : list of np.ndarray, each shape (samples,) or (channels, samples)
    sr : int or list of int
        Sample rate of every clip, or of each.
    name : str
        What the clips are, for error messages.
    labels : list of str or None
        A name per clip for error messages (file paths), default "``name`` clip i".

    Returns
    -------
    list of (str, np.ndarray)
        Each clip's label and signal, shape (samples,), float32.
    """
    rates = sr if isinstance(sr, (list, tuple)) else [sr] * len(clips)
    if len(rates) != len(clips):
        raise ParameterError(f"{len(rates)} sample rates for {len(clips)} {name} clips")
    out = []
    for i, (y, rate) in enumerate(zip(clips, rates)):
        label = labels[i] if labels is not None else name if len(clips) == 1 else f"{name} clip {i + 1}"
        y = audio.to_mono(as_audio(y, label))
        y = audio.resample(y, orig_sr=check_sample_rate(rate), target_sr=sr_work)[0]
        out.append((label, y * np.float32(TRAINING_PEAK / max(float(np.max(np.abs(y))), 1e-12))))
    return out


def log_spectrograms(clips, sr, *, sr_work, n_fft, hop_length, name="corpus", labels=None):
    """Mono working-rate log1p-magnitude spectrograms of a list of recordings, each at peak ``TRAINING_PEAK``.

    Parameters
    ----------
    clips : list of np.ndarray, each shape (samples,) or (channels, samples)
    sr : int or list of int
        Sample rate of every clip, or of each.
    name : str
        What the clips are, for error messages.
    labels : list of str or None
        A name per clip for error messages (file paths), default "``name`` clip i".

    Returns
    -------
    list of np.ndarray, each shape (1 + n_fft // 2, frames), float32
    """
    out = []
    for label, y in training_signals(clips, sr, sr_work=sr_work, name=name, labels=labels):
        if y.shape[-1] < n_fft:
            raise AudioError(f"{label} is too short: {y.shape[-1] / sr_work:.3f} s, one {n_fft}-sample frame needs "
                             f"{n_fft / sr_work:.3f} s")
        out.append(spectral.log_magnitude(spectral.stft(y, n_fft=n_fft, hop_length=hop_length)).astype(np.float32))
    return out


def _corpus_spectrograms(corpus, sr, sr_work, n_fft, hop_length, crop, labels):
    if not corpus:
        raise AudioError("the corpus is empty: training needs at least one recording")
    specs = log_spectrograms(corpus, sr, sr_work=sr_work, n_fft=n_fft, hop_length=hop_length, labels=labels)
    if max(s.shape[1] for s in specs) < crop:
        need = (crop - 1) * hop_length / sr_work
        raise AudioError(f"every corpus clip is shorter than the {crop}-frame training crop (about {need:.1f} s)")
    return specs


def _digest(arrays):
    """A short fingerprint of arrays' contents (what a resumed run must be given again)."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def check_resumable(checkpoint, resume, kind=None):
    """Fail early, before any data is read, where ``checkpoint`` and ``resume`` disagree.

    Without ``resume``, an unfinished training run at ``checkpoint`` is an error (work is never
    overwritten by accident; anything else there is overwritten as asked, a corrupt file too).
    With it, a missing file starts afresh, and anything but an intact unfinished run (of a
    network of ``kind``, where given) is an error.

    Returns
    -------
    Checkpoint or None
        The unfinished run to continue (its ``step``, ``steps``, ``rng``, ``settings`` and
        ``history`` checked).
    """
    if checkpoint is None or not os.path.exists(checkpoint):
        return None
    if os.path.isdir(checkpoint):  # cannot be overwritten: say so now, not when the first checkpoint is due
        raise CheckpointError(f"{checkpoint}: is a directory, not a checkpoint file")
    try:
        ckpt = load_checkpoint(checkpoint)
        unfinished = not _check_complete(checkpoint, ckpt.meta, default=True)  # unmarked: not a training run
    except CheckpointError:
        if resume:
            raise
        return None
    if resume and not unfinished:
        raise CheckpointError(f"{checkpoint}: nothing to resume, it holds no unfinished training run")
    if unfinished and not resume:
        step, steps = (short_repr(ckpt.meta.get(key)) for key in ("step", "steps"))
        raise CheckpointError(f"{checkpoint}: holds an unfinished training run (step {step} of {steps}); pass --resume "
                              f"(resume=True) to continue it, or remove the file")
    if unfinished:
        _check_run(checkpoint, ckpt)
        if kind is not None and ckpt.meta.get("kind") != kind:
            got = ckpt.meta.get("kind")
            raise CheckpointError(f"{checkpoint}: the unfinished run trains a "
                                  f"{describe_kind(got) if got in KINDS else short_repr(got)}, not a "
                                  f"{describe_kind(kind)}")
    return ckpt if unfinished else None


# The most steps _training_options allows.
_MAX_STEPS = 10_000_000


def _check_run(path, ckpt):
    """What resuming an unfinished run reads from its header and history is of the right type and consistent."""
    meta = ckpt.meta
    steps = _meta_int(path, meta, "steps", 1, _MAX_STEPS)
    step = _meta_int(path, meta, "step", 0, steps)
    settings = meta.get("settings")
    if not isinstance(settings, dict):
        raise CheckpointError(f"{path}: corrupt header (settings is {short_repr(settings)}, not a mapping)")
    if "architecture" in settings and settings["architecture"] != ckpt.arch.to_dict():
        raise CheckpointError(f"{path}: corrupt header (the architecture of the settings is not the network's)")
    _check_rng(path, meta.get("rng"))
    if ckpt.history is None or ckpt.history.shape[0] != step:
        got = "no history" if ckpt.history is None else f"a history of {ckpt.history.shape[0]} losses"
        raise CheckpointError(f"{path}: corrupt checkpoint ({got} after {step} steps)")
    if not np.all(np.isfinite(ckpt.history)):  # a run that went on is finite at every step saved
        raise CheckpointError(f"{path}: corrupt checkpoint (its history holds NaN or infinite losses)")


def _check_rng(path, rng):
    """``rng`` is a state of numpy's default generator, as training saves it."""
    if not _is_rng_state(rng):
        raise CheckpointError(f"{path}: corrupt header (rng is not a state of numpy's default generator)")


def _is_rng_state(rng):
    if not isinstance(rng, dict) or not isinstance(rng.get("state"), dict):
        return False
    numbers = [v for k, v in rng.items() if k not in ("bit_generator", "state")] + list(rng["state"].values())
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in numbers):
        return False  # numpy would take a float or true for an integer
    try:  # numpy knows the rest: the generator's name, the keys, the ranges of the integers
        np.random.default_rng(0).bit_generator.state = rng
    except (TypeError, ValueError, KeyError, OverflowError):
        return False
    return True


def _resume_state(checkpoint, resume, settings, kind=None):
    """The training state saved at ``checkpoint`` (see :func:`check_resumable`), or None to start afresh."""
    ckpt = check_resumable(checkpoint, resume, kind)
    if ckpt is None:
        return None
    saved = ckpt.meta["settings"]
    if saved != settings:
        changed = sorted(k for k in set(saved) | set(settings) if saved.get(k) != settings.get(k))
        listed = ", ".join(k if k.isprintable() and len(k) <= 40 else short_repr(k) for k in changed[:8])
        more = f" and {len(changed) - 8} more" if len(changed) > 8 else ""
        raise CheckpointError(f"{checkpoint}: the unfinished run used other settings or data ({listed}{more}); "
                              f"resume with the same ones")
    return TrainingState(ckpt.params, ckpt.state, ckpt.moments, ckpt.meta["step"], ckpt.meta["rng"], ckpt.history)


def _train(kind, trainer, arch, settings, *, steps, checkpoint, checkpoint_every, resume, callback, **kwargs):
    """Run a trainer with resumable checkpoints at ``checkpoint``; the finished network is saved there too."""
    meta = {"kind": kind, "sr": settings["sr_work"], "n_fft": settings["n_fft"],
            "hop_length": settings["hop_length"], "steps": steps, "settings": settings}
    state = _resume_state(checkpoint, resume, settings, kind)

    def save_progress(training):
        save_checkpoint(checkpoint, arch, training.params, training.state, moments=training.moments,
                        history=training.history,
                        meta={**meta, "complete": False, "step": training.step, "rng": training.rng})

    params, bn_state, history = trainer(
        steps=steps, resume=state, checkpoint=None if checkpoint is None else save_progress,
        checkpoint_every=checkpoint_every,
        callback=None if callback is None else (lambda step, loss: callback(step, steps, loss)), **kwargs)
    meta["final_loss"] = float(history[-1]) if history.ndim == 1 else [float(v) for v in history[-1]]
    network = Network(arch, params, bn_state, meta)
    if checkpoint is not None:
        save_checkpoint(checkpoint, arch, params, bn_state, history=history, meta={**meta, "complete": True})
    return network


def _training_options(steps, batch_size, crop, learning_rate, weight_decay, seed, checkpoint, checkpoint_every,
                      resume, *, crop_multiple, kind):
    """Validated settings as plain Python numbers (they go into a JSON header), checked before any data is read."""
    steps = check_int("steps", steps, minimum=1, maximum=_MAX_STEPS)
    crop = check_int("crop", crop, minimum=crop_multiple, maximum=1_000_000)
    if crop % crop_multiple:
        raise ParameterError(f"crop must be a multiple of {crop_multiple} (the network halves the time axis of a crop "
                             f"4 times), got {crop}; use {crop - crop % crop_multiple or crop_multiple} or "
                             f"{crop - crop % crop_multiple + crop_multiple}")
    options = dict(batch_size=check_int("batch_size", batch_size, minimum=1, maximum=100_000),
                   crop=crop,
                   learning_rate=check_float("learning_rate", learning_rate, minimum=0.0, strict_minimum=True,
                                             maximum=MAX_TRAINING_LEARNING_RATE),
                   weight_decay=check_float("weight_decay", weight_decay, minimum=0.0, maximum=1.0),
                   seed=check_int("seed", seed, minimum=0, maximum=MAX_SEED))
    check_int("checkpoint_every", checkpoint_every, minimum=1)
    check_resumable(checkpoint, resume, kind)
    return steps, options


def check_train_lossnet(*, steps=5000, channels=LOSSNET_CHANNELS, width=5, sr_work=22050, n_fft=2048,
                        hop_length=512, batch_size=24, crop=64, learning_rate=1e-3, weight_decay=1e-4, seed=0,
                        checkpoint=None, checkpoint_every=200, resume=False, device="auto"):
    """Check :func:`train_lossnet`'s settings before any data is read (the CLI calls it before the corpus).

    Parameters
    ----------
    As :func:`train_lossnet`, without the data.

    Returns
    -------
    steps : int
    options : dict
        batch_size, crop, learning_rate, weight_decay, seed.
    arch : Architecture
    sr_work, hop_length : int
    backend : module

    Raises
    ------
    ParameterError, BackendError, CheckpointError
    """
    spectrogram = check_spectrogram(sr_work, n_fft, hop_length)
    arch = Architecture(n_bins=1 + spectrogram["n_fft"] // 2, channels=channels, width=width)  # checks its bounds
    steps, options = _training_options(steps, batch_size, crop, learning_rate, weight_decay, seed, checkpoint,
                                       checkpoint_every, resume, crop_multiple=arch.stride ** 4, kind="lossnet")
    return steps, options, arch, spectrogram["sr_work"], spectrogram["hop_length"], get_backend(device)


def check_spectrogram(sr_work, n_fft, hop_length):
    """The spectrogram a network is trained on, checked: ``{"sr_work", "n_fft", "hop_length"}`` as ints.

    Raises
    ------
    ParameterError
        A rate outside ``limits.MIN_WORK_RATE..MAX_WORK_RATE``, ``n_fft`` outside 16..65536, or a
        hop that is not positive or longer than ``n_fft``.
    """
    n_fft = check_int("n_fft", n_fft, minimum=16, maximum=2**16)
    return dict(sr_work=check_int("sr_work", sr_work, minimum=MIN_WORK_RATE, maximum=MAX_WORK_RATE),
                n_fft=n_fft, hop_length=check_int("hop_length", hop_length, minimum=1, maximum=n_fft))


def check_train_style(*, lossnet=None, steps=2000, alpha=100.0, beta=1e4, batch_size=24, crop=64, learning_rate=1e-3,
                      weight_decay=1e-4, seed=0, checkpoint=None, checkpoint_every=200, resume=False, causal=False,
                      stride=None, device="auto"):
    """Check :func:`train_style`'s settings before any data is read (the CLI calls it before the corpus).

    Returns
    -------
    steps : int
    options : dict
    lossnet : Network
        The one given, or the shipped one.
    alpha, beta : float
    backend : module
    arch : Architecture
        The style model's: the loss network's, made causal or given another stride if asked.
    """
    lossnet = default_lossnet() if lossnet is None else lossnet
    if not isinstance(lossnet, Network) or lossnet.kind != "lossnet":
        got = describe_kind(lossnet.kind) if isinstance(lossnet, Network) else type(lossnet).__name__
        raise ParameterError(f"lossnet must be a loss network, got a {got}")
    stride = lossnet.arch.stride if stride is None else check_int("stride", stride, minimum=1,
                                                                    maximum=Architecture.MAX_STRIDE)
    arch = dataclasses.replace(lossnet.arch, causal=causal, stride=stride)  # which checks causal
    # crops pass through both networks: a multiple of both stride products
    multiple = math.lcm(lossnet.arch.stride ** 4, stride ** 4)
    steps, options = _training_options(steps, batch_size, crop, learning_rate, weight_decay, seed, checkpoint,
                                       checkpoint_every, resume, crop_multiple=multiple, kind="style")
    alpha = check_float("alpha", alpha, minimum=0.0, maximum=1e12)
    beta = check_float("beta", beta, minimum=0.0, maximum=1e12)
    return steps, options, lossnet, alpha, beta, get_backend(device), arch


@holds_one_blas_thread
def train_lossnet(corpus, sr, *, steps=5000, channels=LOSSNET_CHANNELS, width=5, sr_work=22050, n_fft=2048,
                  hop_length=512, batch_size=24, crop=64, learning_rate=1e-3, weight_decay=1e-4, seed=0,
                  callback=None, checkpoint=None, checkpoint_every=200, resume=False, labels=None, device="auto"):
    """Train a loss network: an autoencoder that reconstructs log-magnitude spectrograms (AutoStyle, sec. 4).

    Parameters
    ----------
    corpus : list of np.ndarray, each shape (samples,) or (channels, samples)
        Recordings (speech, instruments...); channels are mixed to mono.
    sr : int or list of int
        Their sample rate(s).
    steps : int
        Adam steps of ``batch_size`` random crops of ``crop`` frames.
    channels : tuple of 4 int
        Channels of the encoder layers (the decoder mirrors them).
    width : int
        Filter width (odd).
    sr_work, n_fft, hop_length : int
        Spectrogram settings; a style model and its content use the same.
    batch_size, crop, learning_rate, weight_decay : paper defaults 24, 64, 1e-3, 1e-4
    seed : int
        Same seed, corpus and settings: the same network.
    callback : callable or None
        ``callback(step, steps, loss)`` after every step.
    checkpoint : str or os.PathLike or None
        Save the unfinished run here every ``checkpoint_every`` steps, and the finished network at the end.
    resume : bool
        Continue the unfinished run at ``checkpoint`` (same corpus and settings); the result
        is the one an uninterrupted run gives.
    labels : list of str or None
        Names of the corpus clips (file paths) for error messages.
    device : {"auto", "numpy", "cpu", "cuda"}
        Where the network trains: ``"auto"`` takes the GPU (CuPy arrays, cuBLAS, the numba.cuda
        window kernels) when one is usable, else the numba CPU kernels. The result is the same
        network up to float32 rounding, on the host, and a run may resume on another device.

    Returns
    -------
    Network
    """
    steps, options, arch, sr_work, hop_length, backend = check_train_lossnet(
        steps=steps, channels=channels, width=width, sr_work=sr_work, n_fft=n_fft, hop_length=hop_length,
        batch_size=batch_size, crop=crop, learning_rate=learning_rate, weight_decay=weight_decay, seed=seed,
        checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume, device=device)
    specs = _corpus_spectrograms(corpus, sr, sr_work, n_fft, hop_length, options["crop"], labels)
    settings = dict(sr_work=sr_work, n_fft=n_fft, hop_length=hop_length, architecture=arch.to_dict(), **options,
                    corpus=_digest(specs))
    return _train("lossnet", lambda **kw: train_autoencoder(specs, arch, backend=backend, **kw), arch, settings,
                  steps=steps, checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume,
                  callback=callback, **options)


@holds_one_blas_thread
def train_style(style, corpus, sr, *, style_sr=None, lossnet=None, steps=2000, alpha=100.0, beta=1e4, batch_size=24,
                crop=64, learning_rate=1e-3, weight_decay=1e-4, seed=0, callback=None, checkpoint=None,
                checkpoint_every=200, resume=False, labels=None, causal=False, stride=None, device="auto"):
    """Train a style model: a transformation network that gives any content the style of ``style``.

    Parameters
    ----------
    style : np.ndarray, shape (samples,) or (channels, samples)
        The style recording.
    corpus : list of np.ndarray
        Content recordings to train on (speech, instruments...).
    sr : int or list of int
        Sample rate(s) of the corpus.
    style_sr : int or None
        Sample rate of ``style``; default ``sr`` (when that is one number).
    lossnet : Network or None
        Frozen loss network; default the shipped one. Its spectrogram settings are used.
    steps : int
    alpha, beta : float
        Content and style weights (paper: 100 and 1e4).
    batch_size, crop, learning_rate, weight_decay, seed, callback, checkpoint, checkpoint_every, resume, labels, device
        As in :func:`train_lossnet`.
    causal : bool
        Train a causal style model (:class:`~nstaudio.nn.autoencoder.Architecture`): no output
        frame depends on a later input frame, so :class:`nstaudio.Stream` runs it with no
        network look-ahead. The loss network, which only judges, stays as it is.
    stride : int or None
        The style model's stride (default the loss network's); a causal model wants 1.

    Returns
    -------
    Network
    """
    steps, options, lossnet, alpha, beta, backend, arch = check_train_style(
        lossnet=lossnet, steps=steps, alpha=alpha, beta=beta, batch_size=batch_size, crop=crop,
        learning_rate=learning_rate, weight_decay=weight_decay, seed=seed, checkpoint=checkpoint,
        checkpoint_every=checkpoint_every, resume=resume, causal=causal, stride=stride, device=device)
    sr_work, n_fft, hop_length = lossnet.spectrogram_settings
    if style_sr is None:
        if isinstance(sr, (list, tuple)):
            raise ParameterError("style_sr is needed when the corpus clips have several rates")
        style_sr = sr
    style_spec = log_spectrograms([style], style_sr, sr_work=sr_work, n_fft=n_fft, hop_length=hop_length,
                                  name="style")[0]
    specs = _corpus_spectrograms(corpus, sr, sr_work, n_fft, hop_length, options["crop"], labels)
    lossnet_arrays = [a for layer in (*lossnet.params.values(), *lossnet.state.values()) for a in layer.values()]
    settings = dict(sr_work=sr_work, n_fft=n_fft, hop_length=hop_length, alpha=alpha, beta=beta,
                    style_layers=list(STYLE_LAYERS), **options,
                    corpus=_digest(specs), style=_digest([style_spec]), lossnet=_digest(lossnet_arrays))
    if arch != lossnet.arch:  # (only then: a run begun before the option existed still resumes)
        settings["architecture"] = arch.to_dict()
    return _train("style", lambda **kw: train_transformer(specs, style_spec, lossnet.triple, backend=backend,
                                                          arch=arch, **kw),
                  arch,
                  settings, steps=steps, checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume,
                  callback=callback, alpha=alpha, beta=beta, style_layers=STYLE_LAYERS, content_layer=CONTENT_LAYER,
                  **options)
