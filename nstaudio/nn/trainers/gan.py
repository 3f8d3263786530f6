"""Training a `gan` model (MelGAN-VC): the critic's and the generator's steps, and the loop around them.

:func:`train_networks` trains the generator, the siamese network and the critic on normalised
mel spectrograms of two domains (arrays in, parameters out). One training step is one batch
of ``batch_size`` crops of ``3 * frames`` frames from each domain; every
``critic_steps + 1``-th step (the first included) trains the generator and the siamese
network and then the critic on the same batch, the others the critic alone (the reference's
3 critic-only steps per generator step). An optional warm-up of ``identity_warmup`` steps
before them trains the generator alone on the identity loss (style crops in, the same out).

:func:`train_gan` trains them on recordings, resumably, into a model file of kind ``"gan"``:
every clip is mixed to mono, resampled to the model's rate, brought to the training peak and
turned into MelGAN-VC's features (:func:`nstaudio.nn.gan_features.features`). The file holds all
three networks (a run can resume from it); stylizing uses the generator.
"""

from dataclasses import dataclass

import numpy as np

from ... import spectral
from ...errors import AudioError, ParameterError
from ...kernels import array_module, cpu as _cpu, get_backend
from ...kernels.blas_threads import holds_one_blas_thread
from ...validation import check_float, check_int
from .. import melgan
from ..autoencoder import to_backend, to_host
from ..corpus import check_spectrogram, random_crops, training_signals
from ..gan_features import features, mel_basis
from ..gan_losses import (
    generator_adversarial,
    hinge_critic,
    identity,
    siamese_margin,
    travel,
)
from ..melgan import GanArchitecture
from ..training import check_training_options, digest, train_loop, train_resumable

MAX_CRITIC_STEPS = 100

LOSSES = ("critic", "generator", "identity", "travel")
"""The columns of a GAN's loss history: the critic's hinge loss, the generator's adversarial loss,
the identity loss, and TraVeL plus the siamese margin. A step that does not train the
generator repeats the generator's last values; a warm-up step records its identity loss and 0
in the other columns."""


@dataclass(frozen=True)
class GanWeights:
    """Weights of the generator's losses (MelGAN-VC's) and the siamese margin."""

    adversarial: float = 1.0
    identity: float = 0.5
    travel: float = 10.0
    margin: float = 10.0
    margin_length: float = 2.0


def thirds(x, frames):
    """The three ``frames``-long thirds of crops (B, M, 3 frames), stacked on the batch axis: (3B, M, frames)."""
    return array_module(x).concatenate([x[:, :, i * frames:(i + 1) * frames] for i in range(3)], axis=0)


def assemble(y, batch):
    """Adjoint-free inverse of :func:`thirds`: (3B, M, frames) -> (B, M, 3 frames)."""
    return array_module(y).concatenate([y[i * batch:(i + 1) * batch] for i in range(3)], axis=2)


def critic_loss(nets, params, state, a, b, fake=None):
    """The critic's hinge loss on style crops ``b`` and the generator's version of content crops ``a``.

    Parameters
    ----------
    nets : (Generator, Siamese, Critic)
    params, state : dict
        All three networks' (the backend's arrays); BatchNorm running statistics move.
    a, b : arrays, shape (B, n_mels, 3 frames)
    fake : array, shape (B, n_mels, 3 frames), or None
        The generator's version of ``a`` where the caller has it (:func:`generator_loss` made it
        with the same parameters); None runs the generator.

    Returns
    -------
    value : float
    grads : dict, the critic's layers only
    """
    gen, _, critic = nets
    B, frames = a.shape[0], gen.arch.frames
    if fake is None:
        fake = assemble(gen.forward(params, state, thirds(a, frames))[0], B)
    scores, cache = critic.forward(params, state, array_module(a).concatenate([b, fake], axis=0))
    value, d_real, d_fake = hinge_critic(scores[:B], scores[B:])
    _, grads = critic.backward(params, cache, array_module(a).concatenate([d_real, d_fake], axis=0),
                               need_input=False)
    return value, grads


def generator_loss(nets, params, state, a, b, weights=GanWeights()):
    """The generator's and the siamese network's loss on one batch, and their gradients.

    ``adversarial * -mean(D(G(a))) + identity * mean|G(b) - b| + travel * TraVeL +
    margin * margin loss`` (see :mod:`nstaudio.nn.gan_losses`); the gradient of the adversarial
    term goes through the critic, whose parameters do not change here.

    Returns
    -------
    parts : dict
        ``total``, ``generator``, ``identity``, ``travel`` (TraVeL plus the margin loss, unweighted).
    grads : dict, the generator's and the siamese network's layers
    fake : array, shape (B, n_mels, 3 frames)
        The generator's version of ``a``, for the critic's step on the same batch.
    """
    gen, siam, critic = nets
    xp = array_module(a)
    B, frames = a.shape[0], gen.arch.frames
    xa = thirds(a, frames)
    ga, cache_a = gen.forward(params, state, xa)
    xb = thirds(b, frames)
    gb, cache_b = gen.forward(params, state, xb)
    fake = assemble(ga, B)
    scores, cache_c = critic.forward(params, state, fake)
    adversarial, d_scores = generator_adversarial(scores)
    d_fake = critic.backward(params, cache_c, d_scores, need_params=False)[0]
    same, d_gb = identity(gb, xb)
    # the siamese vectors of the first and last thirds, before and after the generator
    vectors, cache_s = siam.forward(params, state, xp.concatenate([xa[:B], xa[2 * B:], ga[:B], ga[2 * B:]], axis=0))
    sa1, sa3, sg1, sg3 = (vectors[i * B:(i + 1) * B] for i in range(4))
    t, t_gen = sa1 - sa3, sg1 - sg3
    moved, d_t, d_t_gen = travel(t, t_gen)
    spread, d_t_margin = siamese_margin(t, weights.margin_length)
    d_t = weights.travel * d_t + weights.margin * d_t_margin
    d_t_gen = weights.travel * d_t_gen
    d_vectors = xp.concatenate([d_t, -d_t, d_t_gen, -d_t_gen], axis=0)
    d_siam_input, grads = siam.backward(params, cache_s, d_vectors)
    d_ga = thirds(weights.adversarial * d_fake, frames)
    d_ga[:B] += d_siam_input[2 * B:3 * B]
    d_ga[2 * B:] += d_siam_input[3 * B:]
    _, grads_a = gen.backward(params, cache_a, d_ga, need_input=False)
    _, grads_b = gen.backward(params, cache_b, weights.identity * d_gb, need_input=False)
    for layer, values in grads_a.items():
        grads[layer] = {name: g + grads_b[layer][name] for name, g in values.items()}
    total = (weights.adversarial * adversarial + weights.identity * same + weights.travel * moved
             + weights.margin * spread)
    return dict(total=total, generator=adversarial, identity=same, travel=moved + spread), grads, fake


def identity_step(gen, params, state, b):
    """The generator's identity loss on style crops ``b`` (B, n_mels, 3 frames) and its gradients (a warm-up step)."""
    xb = thirds(b, gen.arch.frames)
    gb, cache = gen.forward(params, state, xb)
    same, d_gb = identity(gb, xb)
    return same, gen.backward(params, cache, d_gb, need_input=False)[1]


def train_networks(content, style, arch, *, steps, batch_size=16, critic_steps=3, learning_rate=1e-4,
                   betas=(0.5, 0.999), weights=GanWeights(), seed=0, resume=None, callback=None, checkpoint=None,
                   checkpoint_every=200, backend=None, identity_warmup=0):
    """Train MelGAN-VC's generator, siamese network and critic on two domains.

    Parameters
    ----------
    content, style : list of np.ndarray, each shape (arch.n_mels, T_i), T_i >= 3 arch.frames
        Normalised mel spectrograms (values in [-1, 1]) of the content domain and of the style domain.
    arch : GanArchitecture
    steps : int
        Batches in all, the warm-up's included (a resumed run does the rest); after the warm-up
        the generator trains on every ``critic_steps + 1``-th.
    batch_size : int
        Crops of each domain per step (16 in the reference).
    critic_steps : int
        Critic-only steps between two generator steps (3 in the reference).
    learning_rate, betas : Adam's, for all three networks (1e-4 and (0.5, 0.999), as MelGAN-VC's code)
    weights : GanWeights
    seed : int
        Seeds the initial weights and the crops.
    identity_warmup : int
        Steps at the start that train the generator alone on the identity loss, so that the
        adversarial steps start from a generator that reproduces its input (0: none, as the reference).
    resume, callback, checkpoint, checkpoint_every, backend
        As in :func:`nstaudio.nn.trainers.lossnet.train_autoencoder`; ``callback(step, losses)`` gets the
        row of :data:`LOSSES`.

    Returns
    -------
    params, state : dict
        All three networks' (numpy arrays).
    history : np.ndarray, shape (steps, len(LOSSES))
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    critic_steps = check_int("critic_steps", critic_steps, minimum=0)
    identity_warmup = check_int("identity_warmup", identity_warmup, minimum=0)
    check_float("learning_rate", learning_rate, minimum=0.0, strict_minimum=True)
    backend = _cpu if backend is None else backend
    nets = arch.networks(backend)
    rng = np.random.default_rng(seed)
    init_rng = np.random.default_rng(int(rng.integers(2**31)))
    params, state = {}, {}
    for net in nets:
        p, s = net.init_params(init_rng)
        params.update(p)
        state.update(s)
    if resume is not None:
        params, state = resume.params, resume.state
    params, state = to_backend(params, backend), to_backend(state, backend)
    gen, siam, critic = nets
    crop = 3 * arch.frames
    last = dict.fromkeys(LOSSES[1:], np.nan)  # the generator's losses of its last step
    if resume is not None and resume.step:
        last = dict(zip(LOSSES[1:], resume.history[resume.step - 1, 1:]))

    def step_fn(rng, step):
        a = backend.asarray(random_crops(content, batch_size, crop, rng), np.float32)
        b = backend.asarray(random_crops(style, batch_size, crop, rng), np.float32)
        if step < identity_warmup:
            gen.power_iterate(params, state)
            same, grads = identity_step(gen, params, state, b)
            return np.array([0.0, 0.0, same, 0.0]), grads
        grads, fake = {}, None
        if (step - identity_warmup) % (critic_steps + 1) == 0:
            gen.power_iterate(params, state)
            parts, grads, fake = generator_loss(nets, params, state, a, b, weights)
            last.update((name, parts[name]) for name in LOSSES[1:])
        critic.power_iterate(params, state)
        value, critic_grads = critic_loss(nets, params, state, a, b, fake)
        grads.update(critic_grads)
        return np.array([value, *(last[name] for name in LOSSES[1:])]), grads

    critic_layers, generator_layers = set(critic.layer_names()), set(gen.layer_names())

    def updates(layer, step):  # after the warm-up (the generator alone), the generator's and siamese
        adversarial = max(step - identity_warmup, 0)  # layers train on its steps 0, k + 1, 2 (k + 1), ...
        if layer in critic_layers:
            return adversarial
        return -(-adversarial // (critic_steps + 1)) + (min(step, identity_warmup) if layer in generator_layers else 0)

    history = train_loop(step_fn, params, state, rng, backend, steps=steps, learning_rate=learning_rate,
                         weight_decay=0.0, resume=resume, callback=callback, checkpoint=checkpoint,
                         checkpoint_every=checkpoint_every, betas=betas, losses=len(LOSSES),
                         updates=updates)
    return to_host(params, backend), to_host(state, backend), history


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
    steps, options = check_training_options(steps, batch_size, 3 * arch.frames, learning_rate, 0.0, seed, checkpoint,
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
    basis = mel_basis(sr_work, n_fft, arch.n_mels)
    out = []
    for _, y in training_signals(clips, sr, sr_work=sr_work, name=name, labels=labels):
        if y.shape[-1] < n_fft:
            continue  # too short for one frame: left out (every clip too short is an error below)
        magnitude = np.abs(spectral.stft(y, n_fft=n_fft, hop_length=hop_length))
        out.append(features(magnitude, basis, n_fft))
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
        Adam's, beta1 0.5, for all three networks. 1e-4 (MelGAN-VC's code; the paper says
        2e-4) moves the style further and keeps the content better (docs/decisions.md,
        "gan learning rate").
    seed : int
        Same seed, data and settings: the same model.
    callback : callable or None
        ``callback(step, steps, losses)`` after every step; ``losses`` holds the critic's,
        the generator's, the identity and the TraVeL losses (:data:`LOSSES`).
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
    Model
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
                    architecture=arch.to_dict(), **options, content=digest(content_features),
                    style=digest(style_features))

    def trainer(**kwargs):  # the checkpoint's reader checked a resumed history has a row of LOSSES per step
        return train_networks(content_features, style_features, arch, backend=backend, weights=GanWeights(), **kwargs)

    return train_resumable("gan", trainer, arch, settings, steps=steps, checkpoint=checkpoint,
                           checkpoint_every=checkpoint_every, resume=resume, callback=callback, **options)
