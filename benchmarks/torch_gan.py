"""MelGAN-VC's networks and losses in torch, on nstaudio's parameters: the reference of benchmarks/test_gan.py.

The same 1-D layers as :mod:`nstaudio.nn.melgan` written the way a torch user writes them
(``F.conv1d``, ``F.batch_norm``, ``F.leaky_relu``, nearest ``interpolate``, ``F.linear``),
spectral norm as ``W / (u^T W v)`` with nstaudio's vectors, and autograd for the gradients.
"""

import numpy as np
import torch
import torch.nn.functional as F

SLOPE = 0.2


def leaves(params):
    """nstaudio's parameter tree as torch leaves that require gradients."""
    return {layer: {name: torch.tensor(np.asarray(a), requires_grad=True) for name, a in values.items()}
            for layer, values in params.items()}


class TorchGan:
    """Generator, siamese network and critic on ``leaves(params)`` and nstaudio's spectral-norm state."""

    def __init__(self, params, state):
        self.p = params
        self.sn = {layer[3:]: {k: torch.tensor(np.asarray(v)) for k, v in values.items()}
                   for layer, values in state.items() if layer.startswith("sn_")}

    def _weight(self, name):
        W = self.p[name]["W"]
        if name not in self.sn:
            return W
        u, v = self.sn[name]["u"], self.sn[name]["v"]
        return W / (u @ (W.reshape(W.shape[0], -1) @ v))

    def _block(self, name, x, *, stride=1, padding=None, bn=False, act=True):
        W = self._weight(name)
        bias = self.p[name].get("b")
        if W.ndim == 2:
            y = F.linear(x.flatten(1), W, bias)
        else:
            y = F.conv1d(x, W, bias, stride=stride, padding=W.shape[2] // 2 if padding is None else padding)
        if bn:
            norm = self.p[f"bn_{name}"]
            y = F.batch_norm(y, None, None, norm["gamma"], norm["beta"], training=True, eps=1e-5)
        return F.leaky_relu(y, SLOPE) if act else y

    def generator(self, x):
        up = lambda h: F.interpolate(h, scale_factor=2, mode="nearest")  # noqa: E731
        h0 = self._block("gen.enc0", x, bn=True)
        h1 = self._block("gen.enc1", h0, stride=2, bn=True)
        h2 = self._block("gen.enc2", h1, stride=2, bn=True)
        d0 = torch.cat([self._block("gen.dec0", up(h2), bn=True), h1], dim=1)
        d1 = torch.cat([self._block("gen.dec1", up(d0)), h0], dim=1)
        return torch.tanh(self._block("gen.out", d1, act=False))

    def siamese(self, x):
        h = self._block("siam.enc0", x, bn=True)
        h = self._block("siam.enc1", h, stride=2, bn=True)
        h = self._block("siam.enc2", h, stride=2, bn=True)
        return self._block("siam.dense", h, act=False)

    def critic(self, x):
        h = self._block("critic.enc0", x, padding=0)
        h = self._block("critic.enc1", h, stride=2)
        h = self._block("critic.enc2", h, stride=2)
        return self._block("critic.dense", h, act=False)


def _thirds(x, frames):
    return torch.cat([x[:, :, i * frames:(i + 1) * frames] for i in range(3)], dim=0)


def _assemble(y, batch):
    return torch.cat([y[i * batch:(i + 1) * batch] for i in range(3)], dim=2)


def generator_losses(net, a, b, frames, weights):
    """The generator's and siamese network's total loss (MelGAN-VC's, as nstaudio's), and G(a) assembled."""
    B = a.shape[0]
    xa, xb = _thirds(a, frames), _thirds(b, frames)
    ga, gb = net.generator(xa), net.generator(xb)
    fake = _assemble(ga, B)
    adversarial = -net.critic(fake).mean()
    same = (gb - xb).abs().mean()
    vectors = net.siamese(torch.cat([xa[:B], xa[2 * B:], ga[:B], ga[2 * B:]], dim=0))
    t, t_gen = vectors[:B] - vectors[B:2 * B], vectors[2 * B:3 * B] - vectors[3 * B:]
    moved = ((t - t_gen) ** 2).mean() - F.cosine_similarity(t, t_gen, dim=1, eps=1e-12).mean()
    spread = (torch.clamp(weights.margin_length - t.norm(dim=1), min=0) ** 2).mean()
    total = (weights.adversarial * adversarial + weights.identity * same + weights.travel * moved
             + weights.margin * spread)
    return total, fake


def critic_loss(net, a, b, frames, fake=None):
    """The critic's hinge loss on style crops and the generator's version of content crops (``fake`` if given)."""
    B = a.shape[0]
    if fake is None:
        fake = _assemble(net.generator(_thirds(a, frames)), B)
    scores = net.critic(torch.cat([b, fake], dim=0))
    return (torch.clamp(1 - scores[:B], min=0).mean() + torch.clamp(1 + scores[B:], min=0).mean()) / 2


def grads_of(loss, tree, layers):
    """``{layer: {name: np.ndarray}}`` gradients of ``loss`` for the given layers of a leaves tree."""
    keys = [(layer, name) for layer in layers for name in tree[layer]]
    values = torch.autograd.grad(loss, [tree[layer][name] for layer, name in keys])
    grads = {}
    for (layer, name), g in zip(keys, values):
        grads.setdefault(layer, {})[name] = g.numpy()
    return grads
