"""The resumable training loop every trainer runs: Adam steps, checkpoints, and resuming from one exactly.

:func:`train_loop` steps any network on the arrays it is given (``step_fn`` computes one batch's
loss and gradients) and hands a :class:`TrainingState` to a checkpoint callback now and then.
:func:`train_resumable` runs a trainer around it against a model file: it continues the
unfinished run saved there (after :func:`check_resumable` and :func:`resume_state` have checked
it holds the same settings and data), saves progress, and saves the finished :class:`Model`.
"""

import hashlib
import os
from dataclasses import dataclass

import numpy as np

from ..errors import NumericalError, ParameterError
from ..validation import MAX_SEED, check_float, check_int
from .autoencoder import to_host
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint, short_repr
from .model_file import KINDS, Model, check_complete, describe_kind, meta_int
from .optim import Adam

# The most steps check_training_options allows.
MAX_STEPS = 10_000_000
# Adam steps above 1 move every weight by about its whole size each step: training diverges.
MAX_TRAINING_LEARNING_RATE = 1.0


@dataclass
class TrainingState:
    """Everything a training run needs to continue exactly where it stopped.

    Attributes
    ----------
    params, state : dict of dict of np.ndarray
        The network's parameters and BatchNorm statistics.
    moments : dict of dict of np.ndarray
        Adam's moments per layer, ``{layer: {"W.m": m, "W.v": v, ...}}``.
    step : int
        Steps done.
    rng : dict
        State of the crop generator (``numpy.random.Generator.bit_generator.state``).
    history : np.ndarray, shape (step,) or (step, losses)
        Training loss(es) of each step done.
    """

    params: dict
    state: dict
    moments: dict
    step: int
    rng: dict
    history: np.ndarray


def _update(optimizers, params, grads):
    """One Adam step for every layer that received gradients (each layer has its own optimizer state)."""
    for name, g in grads.items():
        optimizers[name].step(params[name], g)


def train_loop(step_fn, params, state, rng, backend, *, steps, learning_rate, weight_decay, resume, callback,
               checkpoint, checkpoint_every, betas=(0.9, 0.999), losses=None, updates=None):
    """Run ``step_fn`` from step 0 (or ``resume.step``) to ``steps``, Adam-updating ``params`` in place.

    Parameters
    ----------
    step_fn : callable
        ``step_fn(rng, step) -> (loss, grads)`` computes one mini-batch; ``grads`` holds the
        layers this step trains (a GAN's steps train different networks).
    params, state : dict of dict of arrays
        ``backend``'s arrays: the parameters (updated in place) and the BatchNorm statistics.
    rng : numpy.random.Generator
        Draws the batches; restored from ``resume``.
    backend : module
        From ``nstaudio.kernels.get_backend``.
    steps : int
        Steps in all, the resumed ones included.
    learning_rate, weight_decay : float
        Adam's, for every layer; ``betas`` too.
    resume : TrainingState or None
        The run to continue.
    callback : callable or None
        ``callback(step, loss)`` after each step.
    checkpoint : callable or None
        ``checkpoint(TrainingState)`` every ``checkpoint_every`` steps, with numpy copies.
    checkpoint_every : int
    betas : (float, float)
    losses : int or None
        None when ``loss`` is one number, else how many it gives (a row of the history per step).
    updates : callable or None
        ``updates(layer, step)``: how many of the first ``step`` steps updated ``layer`` (Adam's
        bias correction counts those); None when every step updates every layer.

    Returns
    -------
    np.ndarray, shape (steps,) or (steps, losses)
        The loss history of all steps, resumed ones included.

    Raises
    ------
    NumericalError
        A step's loss or gradients are not finite (the weights are left as the step before).
    """
    steps = check_int("steps", steps, minimum=0)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, minimum=1)
    optimizers = {name: Adam(lr=learning_rate, betas=betas, weight_decay=weight_decay) for name in params}
    history = np.empty((steps,) if losses is None else (steps, losses))
    start = 0
    if resume is not None:
        start = resume.step
        if start > steps:
            raise ParameterError(f"the run to resume already did {start} steps, more than steps={steps}")
        history[:start] = resume.history[:start]
        rng.bit_generator.state = resume.rng
        for name, opt in optimizers.items():
            opt.load_moments({key: backend.xp.array(a) for key, a in resume.moments.get(name, {}).items()},
                             start if updates is None else updates(name, start))
    xp = backend.xp
    for step in range(start, steps):
        with np.errstate(over="ignore", invalid="ignore"):  # reported below, as one error with a remedy
            loss, grads = step_fn(rng, step)
            # the loss, and every gradient: a finite loss with overflowing gradients would write
            # NaN weights into the next checkpoint
            finite = bool(np.all(np.isfinite(loss))) and all(bool(xp.all(xp.isfinite(g))) for layer in grads.values()
                                               for g in layer.values())
            if finite:
                _update(optimizers, params, grads)
        if not finite:
            saved = max(start, step // checkpoint_every * checkpoint_every) if checkpoint is not None else 0
            kept = f"; the checkpoint of step {saved} is kept" if saved else ""
            raise NumericalError(f"training diverged at step {step + 1} (loss {loss}): lower the learning rate "
                                 f"(now {learning_rate:g}){kept}")
        history[step] = loss
        if callback is not None:
            callback(step + 1, loss)
        if checkpoint is not None and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            moments = to_host({name: opt.moments() for name, opt in optimizers.items()}, backend)
            checkpoint(TrainingState(to_host(params, backend), to_host(state, backend), moments, step + 1,
                                     rng.bit_generator.state, history[:step + 1]))
    return history


def digest(arrays):
    """A short fingerprint of arrays' contents (what a resumed run must be given again)."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def check_training_options(steps, batch_size, crop, learning_rate, weight_decay, seed, checkpoint, checkpoint_every,
                           resume, *, crop_multiple, kind):
    """Validated settings as plain Python numbers (they go into a JSON header), checked before any data is read."""
    steps = check_int("steps", steps, minimum=1, maximum=MAX_STEPS)
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
        unfinished = not check_complete(checkpoint, ckpt.meta, default=True)  # unmarked: not a training run
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


def _check_run(path, ckpt):
    """What resuming an unfinished run reads from its header and history is of the right type and consistent."""
    meta = ckpt.meta
    steps = meta_int(path, meta, "steps", 1, MAX_STEPS)
    step = meta_int(path, meta, "step", 0, steps)
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


def resume_state(checkpoint, resume, settings, kind=None):
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


def train_resumable(kind, trainer, arch, settings, *, steps, checkpoint, checkpoint_every, resume, callback, **kwargs):
    """Run a trainer with resumable checkpoints at ``checkpoint``; the finished network is saved there too.

    Parameters
    ----------
    kind : {"lossnet", "style", "gan"}
        What the model file will hold.
    trainer : callable
        ``trainer(steps=, resume=, checkpoint=, checkpoint_every=, callback=, **kwargs) ->
        (params, state, history)``, running :func:`train_loop`.
    arch : Architecture or GanArchitecture
    settings : dict
        Plain numbers and digests (:func:`digest`) for the file's header, ``sr_work``, ``n_fft``
        and ``hop_length`` among them: a run resumes only with the same ones.
    steps, checkpoint_every : int
    checkpoint : str or os.PathLike or None
        Where the unfinished run is saved, and the finished model.
    resume : bool
        Continue the unfinished run at ``checkpoint`` (:func:`resume_state`).
    callback : callable or None
        ``callback(step, steps, loss)`` after every step.
    **kwargs
        Passed on to ``trainer``.

    Returns
    -------
    Model
    """
    meta = {"kind": kind, "sr": settings["sr_work"], "n_fft": settings["n_fft"],
            "hop_length": settings["hop_length"], "steps": steps, "settings": settings}
    state = resume_state(checkpoint, resume, settings, kind)

    def save_progress(training):
        save_checkpoint(checkpoint, arch, training.params, training.state, moments=training.moments,
                        history=training.history,
                        meta={**meta, "complete": False, "step": training.step, "rng": training.rng})

    params, bn_state, history = trainer(
        steps=steps, resume=state, checkpoint=None if checkpoint is None else save_progress,
        checkpoint_every=checkpoint_every,
        callback=None if callback is None else (lambda step, loss: callback(step, steps, loss)), **kwargs)
    meta["final_loss"] = float(history[-1]) if history.ndim == 1 else [float(v) for v in history[-1]]
    network = Model(arch, params, bn_state, meta)
    if checkpoint is not None:
        save_checkpoint(checkpoint, arch, params, bn_state, history=history, meta={**meta, "complete": True})
    return network
