"""Training a loss network: an autoencoder that reconstructs log-magnitude spectrograms (AutoStyle, sec. 4).

:func:`train_autoencoder` trains it on spectrograms (arrays in, parameters out);
:func:`train_lossnet` on recordings, resumably, into a model file of kind ``"lossnet"``.
"""

import numpy as np

from ...errors import ParameterError
from ...kernels import cpu as _cpu, get_backend
from ...kernels.blas_threads import holds_one_blas_thread
from ...validation import check_int
from ..autoencoder import Architecture, Autoencoder, to_backend, to_host
from ..corpus import check_spectrogram, corpus_spectrograms, random_crops
from ..losses import mse
from ..training import check_training_options, digest, train_loop, train_resumable

LOSSNET_CHANNELS = (128, 64, 64, 32)


def train_autoencoder(spectrograms, arch, *, steps, batch_size=24, crop=64, learning_rate=1e-3,
                      weight_decay=1e-4, seed=0, resume=None, callback=None, checkpoint=None, checkpoint_every=200,
                      backend=None):
    """Train the autoencoder to reconstruct spectrogram crops (MSE, Adam with weight decay).

    Parameters
    ----------
    spectrograms : list of np.ndarray, each shape (arch.n_bins, T_i)
        log1p-magnitude spectrograms of the corpus.
    arch : Architecture
    steps : int
        Optimizer steps (one mini-batch each), in total: a resumed run does the rest.
    batch_size : int
        Crops per step (24 in the paper).
    crop : int
        Frames per crop; a multiple of ``arch.stride ** 4``.
    learning_rate, weight_decay : float
        Adam's (1e-3 and 1e-4 in the paper).
    seed : int
        Seeds the initial weights and the crops: the same seed reproduces the run.
    resume : TrainingState or None
        Continue this run (saved by ``checkpoint``); the result equals an uninterrupted run.
    callback : callable or None
        ``callback(step, loss)`` after each step.
    checkpoint : callable or None
        ``checkpoint(TrainingState)`` every ``checkpoint_every`` steps.
    checkpoint_every : int
    backend : module or None
        From ``nstaudio.kernels.get_backend``: where the network runs (crops are drawn on the
        host and moved there); None: the cpu backend. Results are numpy arrays either way.

    Returns
    -------
    params, state : dict
    history : np.ndarray, shape (steps,)
        Training loss per step.
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    backend = _cpu if backend is None else backend
    net = Autoencoder(arch, backend)
    crop = check_int("crop", crop, minimum=net.multiple)
    if crop % net.multiple:
        raise ParameterError(f"crop must be a multiple of {net.multiple}, got {crop}")
    rng = np.random.default_rng(seed)
    params, state = net.init_params(seed=int(rng.integers(2**31)))
    if resume is not None:
        params, state = resume.params, resume.state
    params, state = to_backend(params, backend), to_backend(state, backend)  # copies: the caller's stay as they are

    def step_fn(rng, step):
        x = backend.asarray(random_crops(spectrograms, batch_size, crop, rng), np.float32)
        y, _, caches = net.forward(params, state, x)
        loss, dy = mse(y, x)
        _, grads = net.backward(params, caches, dy)
        return loss, grads

    net.train(True)
    history = train_loop(step_fn, params, state, rng, backend, steps=steps, learning_rate=learning_rate,
                         weight_decay=weight_decay, resume=resume, callback=callback, checkpoint=checkpoint,
                         checkpoint_every=checkpoint_every)
    net.train(False)
    return to_host(params, backend), to_host(state, backend), history


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
    steps, options = check_training_options(steps, batch_size, crop, learning_rate, weight_decay, seed, checkpoint,
                                            checkpoint_every, resume, crop_multiple=arch.stride ** 4, kind="lossnet")
    return steps, options, arch, spectrogram["sr_work"], spectrogram["hop_length"], get_backend(device)


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
    checkpoint_every : int
        Steps between saves of the unfinished run.
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
    Model
        Of kind ``"lossnet"``.
    """
    steps, options, arch, sr_work, hop_length, backend = check_train_lossnet(
        steps=steps, channels=channels, width=width, sr_work=sr_work, n_fft=n_fft, hop_length=hop_length,
        batch_size=batch_size, crop=crop, learning_rate=learning_rate, weight_decay=weight_decay, seed=seed,
        checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume, device=device)
    specs = corpus_spectrograms(corpus, sr, sr_work, n_fft, hop_length, options["crop"], labels)
    settings = dict(sr_work=sr_work, n_fft=n_fft, hop_length=hop_length, architecture=arch.to_dict(), **options,
                    corpus=digest(specs))
    return train_resumable("lossnet", lambda **kw: train_autoencoder(specs, arch, backend=backend, **kw), arch,
                           settings, steps=steps, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                           resume=resume, callback=callback, **options)

