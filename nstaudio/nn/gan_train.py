"""Training MelGAN-VC: the critic's and the generator's steps, and the loop around them.

Arrays in, parameters out (as :mod:`nstaudio.nn.train`): normalised mel spectrograms of the
two domains go in, the three networks' parameters come out. One training step is one batch
of ``batch_size`` crops of ``3 * frames`` frames from each domain; every
``critic_steps + 1``-th step (the first included) trains the generator and the siamese
network and then the critic on the same batch, the others the critic alone (the reference's
3 critic-only steps per generator step). An optional warm-up of ``identity_warmup`` steps
before them trains the generator alone on the identity loss (style crops in, the same out).
"""

from dataclasses import dataclass

import numpy as np

from ..kernels import array_module, cpu as _cpu
from ..validation import check_float, check_int
from .autoencoder import to_backend, to_host
from .gan_losses import generator_adversarial, hinge_critic, identity, siamese_margin, travel
from .train import _train_loop, random_crops

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
        As in :func:`nstaudio.nn.train.train_autoencoder`; ``callback(step, losses)`` gets the
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

    history = _train_loop(step_fn, params, state, rng, backend, steps=steps, learning_rate=learning_rate,
                          weight_decay=0.0, resume=resume, callback=callback, checkpoint=checkpoint,
                          checkpoint_every=checkpoint_every, betas=betas, losses=len(LOSSES),
                          updates=updates)
    return to_host(params, backend), to_host(state, backend), history
