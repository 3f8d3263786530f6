"""`gan` models (MelGAN-VC): training them from two sets of recordings, resumable, into a model file.

Recordings in, a :class:`~nstaudio.models.Network` of kind ``"gan"`` out: every clip is mixed
to mono, resampled to the model's rate, brought to the training peak and turned into MelGAN-VC's
features (:func:`nstaudio.methods.gan.features`); :func:`nstaudio.nn.gan_train.train_networks`
trains the generator, the siamese network and the critic on them. The file holds all three
(a run can resume from it); stylizing uses the generator.
"""

import numpy as np

from . import spectral
from .errors import AudioError, ParameterError
from .kernels import get_backend
from .kernels.blas_threads import holds_one_blas_thread
from .methods import gan as gan_method
from .models import _digest, _train, _training_options, check_spectrogram, training_signals
from .nn.gan_train import GanWeights, train_networks
from .nn import melgan
from .nn.melgan import GanArchitecture
from .validation import check_int

MAX_CRITIC_STEPS = 100


def check_train_gan(*, steps=2500, batch_size=16, critic_steps=3, learning_rate=1e-4, seed=0, checkpoint=None,
                    checkpoint_every=200, resume=False, device="auto", arch=None, sr_work=melgan.SR,
                    n_fft=melgan.N_FFT, hop_length=melgan.HOP_LENGTH, identity_warmup=0):
    """Check :func:`train_gan`'s settings before any audio is read (the CLI calls it first).

    Returns
    -------
    steps : int
    options : dict
        batch_size, critic_steps, learning_rate, seed, and identity_warmup where not 0 (plain numbers, for
        the file's header).
    arch : GanArchitecture
    backend : module
    spectrogram : dict
        sr_work, n_fft, hop_length.
    """
    arch = GanArchitecture() if arch is None else arch
    if not isinstance(arch, GanArchitecture):
        raise ParameterError(f"arch must be a GanArchitecture, got {type(arch).__name__}")
    steps, options = _training_options(steps, batch_size, 3 * arch.frames, learning_rate, 0.0, seed, checkpoint,
                                       checkpoint_every, resume, crop_multiple=1, kind="gan")
    options = dict(batch_size=options["batch_size"], learning_rate=options["learning_rate"], seed=options["seed"],
                   critic_steps=check_int("critic_steps", critic_steps, minimum=0, maximum=MAX_CRITIC_STEPS))
    identity_warmup = check_int("identity_warmup", identity_warmup, minimum=0, maximum=steps - 1)
    if identity_warmup:  # only then: a run without one keeps the header (and resumes) of earlier versions
        options["identity_warmup"] = identity_warmup
    return steps, options, arch, get_backend(device), check_spectrogram(sr_work, n_fft, hop_length)


def mel_features(clips, sr, *, arch, name, labels=None, sr_work=melgan.SR, n_fft=melgan.N_FFT,
                 hop_length=melgan.HOP_LENGTH):
    """MelGAN-VC's features of recordings, each mono at ``sr_work`` and the training peak.

    Parameters
    ----------
    clips : list of np.ndarray, each shape (samples,) or (channels, samples)
    sr : int or list of int
    arch : GanArchitecture
    sr_work, n_fft, hop_length : int
        The model's spectrogram.
    name : str
        What the clips are ("content", "style"), for error messages.
    labels : list of str or None
        A name per clip (file paths) for error messages.

    Returns
    -------
    list of np.ndarray, each shape (arch.n_mels, frames), float32 in [-1, 1]
    """
    if not clips:
        raise AudioError(f"no {name} recordings: training needs at least one")
    basis = gan_method.mel_basis(sr_work, n_fft, arch.n_mels)
    out = []
    for _, y in training_signals(clips, sr, sr_work=sr_work, name=name, labels=labels):
        if y.shape[-1] < n_fft:
            continue  # too short for one frame: left out (every clip too short is an error below)
        magnitude = np.abs(spectral.stft(y, n_fft=n_fft, hop_length=hop_length))
        out.append(gan_method.features(magnitude, basis, n_fft))
    crop = 3 * arch.frames
    if not any(f.shape[1] >= crop for f in out):
        seconds = (crop - 1) * hop_length / sr_work
        raise AudioError(f"every {name} recording is shorter than the {crop}-frame training crop ({seconds:.2f} s)")
    return out


@holds_one_blas_thread
def train_gan(content, style, sr, *, style_sr=None, steps=2500, batch_size=16, critic_steps=3, learning_rate=1e-4,
              seed=0, callback=None, checkpoint=None, checkpoint_every=200, resume=False, content_labels=None,
              style_labels=None, device="auto", arch=None, sr_work=melgan.SR, n_fft=melgan.N_FFT,
              hop_length=melgan.HOP_LENGTH, identity_warmup=0):
    """Train a MelGAN-VC model that turns recordings like ``content`` into the timbre of ``style``.

    Parameters
    ----------
    content, style : list of np.ndarray, each shape (samples,) or (channels, samples)
        The two domains: recordings to convert from, and recordings of the target timbre
        (unpaired; a few minutes of each). Channels are mixed to mono.
    sr : int or list of int
        Sample rate(s) of ``content``.
    style_sr : int or list of int or None
        Of ``style``; default ``sr``.
    steps : int
        Batches in all; the generator trains on every ``critic_steps + 1``-th.
    batch_size : int
        Crops of 72 frames (0.86 s at the default settings) from each domain per step.
    critic_steps : int
        Critic-only steps between generator steps (the reference's 3).
    identity_warmup : int
        Of the ``steps``, how many at the start train the generator alone on the identity loss
        (0: none, as the reference; RESULTS.md, section gan, measures a warm-up).
    learning_rate : float
        Adam's, beta1 0.5, for all three networks. 1e-4 (MelGAN-VC's code; the paper's issue
        text says 2e-4): on the four violin pairs of the gan benchmark it moved the style
        further and kept the content better than 2e-4 on every pair (RESULTS.md, section gan).
    seed : int
        Same seed, data and settings: the same model.
    callback : callable or None
        ``callback(step, steps, losses)`` after every step; ``losses`` holds the critic's,
        the generator's, the identity and the TraVeL losses (:data:`nstaudio.nn.gan_train.LOSSES`).
    checkpoint, checkpoint_every, resume, device
        As in :func:`nstaudio.train_lossnet`.
    content_labels, style_labels : list of str or None
        Names of the clips (file paths) for error messages.
    arch : GanArchitecture or None
        The networks' shape; default MelGAN-VC's.
    sr_work, n_fft, hop_length : int
        The spectrogram the model works on (stylizing resamples to ``sr_work`` and back).

    Returns
    -------
    Network
        Of kind ``"gan"``: ``stylize(content, model=...)`` and ``nstaudio run --model`` use it.
    """
    steps, options, arch, backend, spectrogram = check_train_gan(
        steps=steps, batch_size=batch_size, critic_steps=critic_steps, learning_rate=learning_rate, seed=seed,
        checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume, device=device, arch=arch,
        sr_work=sr_work, n_fft=n_fft, hop_length=hop_length, identity_warmup=identity_warmup)
    content_features = mel_features(content, sr, arch=arch, name="content", labels=content_labels, **spectrogram)
    style_features = mel_features(style, sr if style_sr is None else style_sr, arch=arch, name="style",
                                  labels=style_labels, **spectrogram)
    settings = dict(**spectrogram,
                    architecture=arch.to_dict(), **options, content=_digest(content_features),
                    style=_digest(style_features))

    def trainer(**kwargs):  # the checkpoint's reader checked a resumed history has a row of LOSSES per step
        return train_networks(content_features, style_features, arch, backend=backend, weights=GanWeights(), **kwargs)

    return _train("gan", trainer, arch, settings, steps=steps, checkpoint=checkpoint,
                  checkpoint_every=checkpoint_every, resume=resume, callback=callback, **options)
