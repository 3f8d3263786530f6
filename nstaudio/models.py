"""Networks of the `feedforward` method: training them from audio, their files, the shipped loss network.

A loss network (an autoencoder that reconstructs log-magnitude spectrograms) is trained once
on a corpus; nstaudio ships one (``default_lossnet``). A style model (a transformation
network) is trained per style against a loss network and then stylizes any content in one
pass (``stylize(..., model=...)``). Both are :class:`Network` objects saved as checkpoints.
"""

import os
from dataclasses import dataclass
from importlib import resources

import numpy as np

from . import audio, spectral
from .errors import AudioError, ParameterError
from .nn.autoencoder import Architecture
from .nn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .nn.train import TrainingState, train_autoencoder, train_transformer
from .validation import as_audio, check_float, check_int

KINDS = ("lossnet", "style")
LOSSNET_CHANNELS = (128, 64, 64, 32)
STYLE_LAYERS = ("enc0", "enc1", "enc2")
CONTENT_LAYER = "enc3"
# Networks see every recording at one level: peak -1 dBFS. A log1p magnitude depends on the
# level, and a style clip recorded quieter than the corpus would otherwise teach the network
# to change the loudness instead of the timbre (measured: a quiet violin style made a model
# that raised the mean log magnitude of quiet piano from 0.07 to 0.47).
TRAINING_PEAK = 10 ** (-1 / 20)


@dataclass
class Network:
    """A trained autoencoder and the spectrogram settings it works on.

    Attributes
    ----------
    arch : Architecture
    params, state : dict of dict of np.ndarray
    meta : dict
        ``kind`` ("lossnet" or "style"), ``sr``, ``n_fft``, ``hop_length`` and the training
        settings.
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
    kind : {"lossnet", "style"} or None
        Refuse a file holding the other kind.

    Raises
    ------
    CheckpointError
        Unreadable, another format or version, the wrong kind, or an unfinished training run.
    """
    ckpt = load_checkpoint(path)
    meta = ckpt.meta
    missing = [key for key in ("kind", "sr", "n_fft", "hop_length") if key not in meta]
    if missing or meta["kind"] not in KINDS:
        raise CheckpointError(f"{path}: not an nstaudio network (header lacks {', '.join(missing) or 'a known kind'})")
    if kind is not None and meta["kind"] != kind:
        raise CheckpointError(f"{path}: holds a {_describe(meta['kind'])}, not a {_describe(kind)}")
    if not meta.get("complete", False):
        raise CheckpointError(f"{path}: an unfinished training run (step {meta.get('step')} of {meta.get('steps')}); "
                              f"finish it with --resume")
    return Network(ckpt.arch, ckpt.params, ckpt.state, meta)


def _describe(kind):
    return {"lossnet": "loss network", "style": "style model"}[kind]


def default_lossnet():
    """The loss network shipped with nstaudio (trained by ``scripts/make_lossnet.py``).

    Raises
    ------
    CheckpointError
        This installation has none: no loss network ships yet (see the README); train one
        with :func:`train_lossnet` and pass it as ``lossnet``.
    """
    path = resources.files("nstaudio") / "data" / "lossnet.npz"
    if not path.is_file():
        raise CheckpointError("no loss network ships with this nstaudio yet: train one with `nstaudio train-lossnet "
                              "CORPUS_DIR -o lossnet.npz` (scripts/make_corpus.py makes a corpus) and pass --lossnet")
    return load_model(path, kind="lossnet")


def log_spectrograms(clips, sr, *, sr_work, n_fft, hop_length, name="corpus"):
    """Mono working-rate log1p-magnitude spectrograms of a list of recordings, each at peak ``TRAINING_PEAK``.

    Parameters
    ----------
    clips : list of np.ndarray, each shape (samples,) or (channels, samples)
    sr : int or list of int
        Sample rate of every clip, or of each.

    Returns
    -------
    list of np.ndarray, each shape (1 + n_fft // 2, frames), float32
    """
    rates = sr if isinstance(sr, (list, tuple)) else [sr] * len(clips)
    if len(rates) != len(clips):
        raise ParameterError(f"{len(rates)} sample rates for {len(clips)} {name} clips")
    out = []
    for i, (y, rate) in enumerate(zip(clips, rates)):
        label = name if len(clips) == 1 else f"{name} clip {i + 1}"
        y = audio.to_mono(as_audio(y, label))
        y = audio.resample(y, orig_sr=check_int("sr", rate, minimum=1), target_sr=sr_work)
        if y.shape[-1] < n_fft:
            raise AudioError(f"{label} is too short: {y.shape[-1] / sr_work:.3f} s, one {n_fft}-sample frame needs "
                             f"{n_fft / sr_work:.3f} s")
        y = y[0] * np.float32(TRAINING_PEAK / np.max(np.abs(y)))  # as_audio refused silence
        out.append(np.log1p(np.abs(spectral.stft(y, n_fft=n_fft, hop_length=hop_length))).astype(np.float32))
    return out


def _corpus_spectrograms(corpus, sr, sr_work, n_fft, hop_length, crop):
    if not corpus:
        raise AudioError("the corpus is empty: training needs at least one recording")
    specs = log_spectrograms(corpus, sr, sr_work=sr_work, n_fft=n_fft, hop_length=hop_length)
    if max(s.shape[1] for s in specs) < crop:
        need = (crop - 1) * hop_length / sr_work
        raise AudioError(f"every corpus clip is shorter than the {crop}-frame training crop (about {need:.1f} s)")
    return specs


def _resume_state(checkpoint, resume, settings):
    """The training state saved at ``checkpoint``, or None to start afresh.

    Without ``resume``, an unfinished run there is an error (so that work is not overwritten
    by accident); with it, a missing file starts afresh and a run with other settings is an error.
    """
    if checkpoint is None or not os.path.exists(checkpoint):
        return None
    try:
        ckpt = load_checkpoint(checkpoint)
    except CheckpointError:
        if resume:
            raise
        return None  # not ours to protect: a finished model or another file is overwritten as asked
    meta = ckpt.meta
    if meta.get("complete", True):
        if resume:
            raise CheckpointError(f"{checkpoint}: nothing to resume, the training run there is finished")
        return None
    if not resume:
        raise CheckpointError(f"{checkpoint}: holds an unfinished training run (step {meta.get('step')} of "
                              f"{meta.get('steps')}); pass --resume (resume=True) to continue it, or remove the file")
    saved = meta.get("settings")
    if saved != settings:
        changed = sorted(k for k in set(saved or {}) | set(settings) if (saved or {}).get(k) != settings.get(k))
        raise CheckpointError(f"{checkpoint}: the unfinished run used other settings ({', '.join(changed)}); "
                              f"resume with the same ones")
    return TrainingState(ckpt.params, ckpt.state, ckpt.moments, int(meta["step"]), meta["rng"], ckpt.history)


def _train(kind, trainer, arch, settings, *, steps, checkpoint, checkpoint_every, resume, callback, **kwargs):
    """Run a trainer with resumable checkpoints at ``checkpoint``; the finished network is saved there too."""
    steps = check_int("steps", steps, minimum=1, maximum=10_000_000)
    meta = {"kind": kind, "sr": settings["sr_work"], "n_fft": settings["n_fft"],
            "hop_length": settings["hop_length"], "steps": steps, "settings": settings}
    state = _resume_state(checkpoint, resume, settings)

    def save_progress(training):
        save_checkpoint(checkpoint, arch, training.params, training.state, moments=training.moments,
                        history=training.history,
                        meta={**meta, "complete": False, "step": training.step, "rng": training.rng})

    params, bn_state, history = trainer(
        steps=steps, resume=state, checkpoint=None if checkpoint is None else save_progress,
        checkpoint_every=checkpoint_every,
        callback=None if callback is None else (lambda step, loss: callback(step, steps, loss)), **kwargs)
    meta["final_loss"] = float(history[-1])
    network = Network(arch, params, bn_state, meta)
    if checkpoint is not None:
        save_checkpoint(checkpoint, arch, params, bn_state, history=history, meta={**meta, "complete": True})
    return network


def train_lossnet(corpus, sr, *, steps=5000, channels=LOSSNET_CHANNELS, width=5, sr_work=22050, n_fft=2048,
                  hop_length=512, batch_size=24, crop=64, learning_rate=1e-3, weight_decay=1e-4, seed=0,
                  callback=None, checkpoint=None, checkpoint_every=200, resume=False):
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

    Returns
    -------
    Network
    """
    arch = Architecture(n_bins=1 + check_int("n_fft", n_fft, minimum=16, maximum=2**16) // 2,
                        channels=tuple(check_int("channels", c, minimum=1, maximum=4096) for c in channels),
                        width=check_int("width", width, minimum=1, maximum=63))
    crop = check_int("crop", crop, minimum=1)
    steps = check_int("steps", steps, minimum=1, maximum=10_000_000)
    specs = _corpus_spectrograms(corpus, sr, sr_work, n_fft, hop_length, crop)
    settings = dict(sr_work=sr_work, n_fft=n_fft, hop_length=hop_length, batch_size=batch_size, crop=crop,
                    learning_rate=learning_rate, weight_decay=weight_decay, seed=seed,
                    corpus=[len(specs), int(sum(s.shape[1] for s in specs))])
    return _train("lossnet", lambda **kw: train_autoencoder(specs, arch, **kw), arch, settings, steps=steps,
                  checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume, callback=callback,
                  batch_size=batch_size, crop=crop, learning_rate=learning_rate, weight_decay=weight_decay, seed=seed)


def train_style(style, corpus, sr, *, style_sr=None, lossnet=None, steps=2000, alpha=100.0, beta=1e4, batch_size=24,
                crop=64, learning_rate=1e-3, weight_decay=1e-4, seed=0, callback=None, checkpoint=None,
                checkpoint_every=200, resume=False):
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
    batch_size, crop, learning_rate, weight_decay, seed, callback, checkpoint, checkpoint_every, resume
        As in :func:`train_lossnet`.

    Returns
    -------
    Network
    """
    lossnet = default_lossnet() if lossnet is None else lossnet
    if lossnet.kind != "lossnet":
        raise ParameterError(f"lossnet must be a loss network, got a {_describe(lossnet.kind)}")
    sr_work, n_fft, hop_length = lossnet.spectrogram_settings
    alpha = check_float("alpha", alpha, minimum=0.0, maximum=1e12)
    beta = check_float("beta", beta, minimum=0.0, maximum=1e12)
    crop = check_int("crop", crop, minimum=1)
    steps = check_int("steps", steps, minimum=1, maximum=10_000_000)
    if style_sr is None:
        if isinstance(sr, (list, tuple)):
            raise ParameterError("style_sr is needed when the corpus clips have several rates")
        style_sr = sr
    specs = _corpus_spectrograms(corpus, sr, sr_work, n_fft, hop_length, crop)
    style_spec = log_spectrograms([style], style_sr, sr_work=sr_work, n_fft=n_fft, hop_length=hop_length,
                                  name="style")[0]
    digest = float(sum(float(np.sum(a, dtype=np.float64)) for layer in lossnet.params.values() for a in layer.values()))
    settings = dict(sr_work=sr_work, n_fft=n_fft, hop_length=hop_length, alpha=alpha, beta=beta,
                    batch_size=batch_size, crop=crop, learning_rate=learning_rate, weight_decay=weight_decay,
                    seed=seed, corpus=[len(specs), int(sum(s.shape[1] for s in specs))],
                    style_frames=int(style_spec.shape[1]), lossnet_sum=digest)
    return _train("style", lambda **kw: train_transformer(specs, style_spec, lossnet.triple, **kw), lossnet.arch,
                  settings, steps=steps, checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume,
                  callback=callback, alpha=alpha, beta=beta, style_layers=STYLE_LAYERS, content_layer=CONTENT_LAYER,
                  batch_size=batch_size, crop=crop, learning_rate=learning_rate, weight_decay=weight_decay, seed=seed)
