"""MelGAN-VC's three networks (Pasini 2019) as 1-D convolutions over time, mel bands as channels.

Every 2-D convolution of the reference whose kernel spans all mel bands is a 1-D convolution
with the bands as input channels; the rest follow. Shapes with the defaults (B items,
192 mel bands, 24-frame thirds):

- generator (a U-net on one third, 192 x 24 -> 192 x 24): conv 192->256 width 3 ->
  conv 256->256 width 9 stride 2 -> conv width 7 stride 2 (6 frames) -> upsample x2, conv
  width 7, concatenated with the stride-2 layer's output (512 x 12) -> upsample x2, conv
  width 9, concatenated with the first layer's output (512 x 24) -> 1x1 conv to 192 bands,
  tanh. Each conv is spectrally normalised and followed by BatchNorm and LeakyReLU(0.2),
  except that the last upsampling conv has no BatchNorm and the 1x1 conv has tanh; only
  the 1x1 conv has a bias.
- siamese (one third -> a 128-vector): the generator's three encoder convs with BatchNorm and
  no spectral norm, flattened, a dense layer.
- critic (three thirds, 72 frames -> a score): spectrally normalised convs of 512 channels,
  width 3 (no padding), 9 and 7 (stride 2), LeakyReLU, flattened, a spectrally normalised
  dense layer to 1.

A network's ``params`` and ``state`` are ``{layer: {name: array}}`` trees (as the autoencoder's,
so checkpoints and the trainer's Adam treat them alike): ``state`` holds the BatchNorm running
statistics (``bn_<layer>``) and the spectral norm's vectors (``sn_<layer>``: ``u``, ``v``).
``forward`` returns the output and a cache; ``backward`` the input gradient and the
parameters' gradients. The spectral norm's vectors only move in :meth:`GanNetwork.power_iterate`.
"""

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ParameterError
from ..kernels import array_module, cpu as _cpu
from ..pieces import finish
from ..validation import check_int
from . import spectral_norm
from .layers import BatchNorm1d, Conv1d, Dense, LeakyReLU, Tanh, Upsample1d

SLOPE = 0.2  # LeakyReLU's
# MelGAN-VC's spectrogram: 16 kHz, n_fft = window = 1152, hop 192 (a model file must say these).
SR, N_FFT, HOP_LENGTH = 16000, 1152, 192


@dataclass(frozen=True)
class GanArchitecture:
    """Shape of the three networks, stored in model files.

    Attributes
    ----------
    n_mels : int
        Mel bands: the generator's input and output channels.
    frames : int
        Frames of one third (the generator's training input); a multiple of 4 (two stride-2
        layers). The critic sees ``3 * frames``.
    channels : int
        Channels of the generator's and the siamese network's convolutions.
    critic_channels : int
    embedding : int
        Length of the siamese network's vector.
    """

    n_mels: int = 192
    frames: int = 24
    channels: int = 256
    critic_channels: int = 512
    embedding: int = 128

    NETWORK = "melgan"
    HISTORY_COLUMNS = 4  # training keeps nstaudio.nn.trainers.gan.LOSSES per step
    FIELDS = ("n_mels", "frames", "channels", "critic_channels", "embedding")
    MAXIMA = {"n_mels": 1024, "frames": 4096, "channels": 4096, "critic_channels": 4096, "embedding": 4096}

    def __post_init__(self):
        for name in self.FIELDS:
            value = getattr(self, name)
            if isinstance(value, (list, tuple, dict, set)):
                raise ParameterError(f"{name} must be an integer, got a {type(value).__name__}")
            object.__setattr__(self, name, check_int(name, value, minimum=1, maximum=self.MAXIMA[name]))
        if self.frames % 4:
            raise ParameterError(f"frames must be a multiple of 4 (two stride-2 layers), got {self.frames}")

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        """The architecture :meth:`to_dict` gave, every field checked (the dict may come from any file)."""
        if not isinstance(d, dict):
            raise ParameterError(f"the architecture must be a mapping, got a {type(d).__name__}")
        missing = [name for name in cls.FIELDS if name not in d]
        if missing:
            raise ParameterError(f"the architecture lacks {', '.join(missing)}")
        unknown = sorted(str(key) for key in d if key not in cls.FIELDS)
        if unknown:
            raise ParameterError(f"unknown architecture field {unknown[0]!r}")
        return cls(**{name: d[name] for name in cls.FIELDS})

    def networks(self, backend=None):
        """``(generator, siamese, critic)`` of this architecture."""
        return Generator(self, backend), Siamese(self, backend), Critic(self, backend)

    def array_shapes(self):
        """Every array of the three networks, ``{"params": {layer: {name: shape}}, "state": ...}``,
        computed without making them (checked against a model file's claims before reading it)."""
        shapes = {"params": {}, "state": {}}
        for net in self.networks():
            for group, tree in net.array_shapes().items():
                shapes[group].update(tree)
        return shapes


class _Block:
    """A linear layer (Conv1d or Dense) with optional spectral norm, BatchNorm and LeakyReLU, in that order."""

    def __init__(self, name, layer, *, sn=False, bn=False, act=True, bias=False):
        self.name, self.layer, self.sn, self.bias = name, layer, sn, bias
        channels = layer.out_features if isinstance(layer, Dense) else layer.out_channels
        self.norm = BatchNorm1d(channels) if bn else None
        self.act = LeakyReLU(SLOPE) if act else None

    def array_shapes(self):
        layer = self.layer
        W = (layer.out_features, layer.in_features) if isinstance(layer, Dense) else (
            layer.out_channels, layer.in_channels, layer.width)
        params = {self.name: {"W": W, **({"b": (W[0],)} if self.bias else {})}}
        state = {}
        if self.sn:
            state[f"sn_{self.name}"] = {"u": (W[0],), "v": (int(np.prod(W[1:])),)}
        if self.norm is not None:
            params[f"bn_{self.name}"] = {"gamma": (W[0],), "beta": (W[0],)}
            state[f"bn_{self.name}"] = {"running_mean": (W[0],), "running_var": (W[0],)}
        return {"params": params, "state": state}

    def init(self, rng, params, state, dtype):
        values = self.layer.init_params(rng, dtype)
        params[self.name] = {"W": values["W"], **({"b": values["b"]} if self.bias else {})}
        if self.sn:
            state[f"sn_{self.name}"] = spectral_norm.init_state(values["W"], rng)
        if self.norm is not None:
            params[f"bn_{self.name}"] = self.norm.init_params(rng, dtype)
            state[f"bn_{self.name}"] = self.norm.init_state(dtype)

    def weight(self, params, state):
        """The weight the layer uses: spectrally normalised where the block is."""
        W = params[self.name]["W"]
        if not self.sn:
            return W
        sn = state[f"sn_{self.name}"]
        return spectral_norm.normalize(W, sn["u"], sn["v"])[0]

    def forward(self, params, state, x, training, weight=None):
        """``weight``: :meth:`weight`'s, computed before (inference, which does not differentiate it)."""
        p = params[self.name]
        W, c_sn = p["W"], None
        if weight is not None:
            W = weight
        elif self.sn:
            sn = state[f"sn_{self.name}"]
            W, c_sn = spectral_norm.normalize(W, sn["u"], sn["v"])
        y, c_layer, c_bn, c_act = self._apply(params, state, x, W, training, slice(None))
        return y, (W, c_sn, c_layer, c_bn, c_act)

    def infer_in_parts(self, params, state, x, weight=None, max_macs=None):
        """Inference (BatchNorm's running statistics) as a generator that stops between groups of output
        channels, each its own product of at most about ``max_macs`` multiply-adds (None: one group), after
        the im2col matrix they share: a stream runs them in the gaps of its audio callbacks (blocks of a
        Conv1d). Returns :meth:`forward`'s output, (B, C_out, T_out), without a cache."""
        W = self.weight(params, state) if weight is None else weight
        macs = W.size * x.shape[0] * self.layer.output_length(x.shape[2])
        if max_macs is not None:
            max_macs = check_int("max_macs", max_macs, minimum=1)
        parts = 1 if max_macs is None else min(W.shape[0], max(1, -(-macs // max_macs)))
        bounds = np.linspace(0, W.shape[0], parts + 1).round().astype(int)
        outputs, cols = [], None
        if parts > 1:  # the im2col matrix, made once for all the groups, a piece of its own
            cols = self.layer.windows(x)
        for rows in (slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])):
            if parts > 1:
                yield
            outputs.append(self._apply(params, state, x, W[rows], False, rows, cols)[0])
        return outputs[0] if parts == 1 else array_module(x).concatenate(outputs, axis=1)

    def _apply(self, params, state, x, W, training, rows, cols=None):
        """The layer with weights ``W`` (output channels ``rows`` of the block's; ``cols``: a Conv1d's
        im2col matrix of x, if made before), then BatchNorm and LeakyReLU where the block has them: y and
        the three caches."""
        b = params[self.name]["b"][rows] if self.bias else array_module(x).zeros(W.shape[0], x.dtype)
        y, c_layer = self.layer.forward({"W": W, "b": b}, x, **({} if cols is None else {"cols": cols}))
        c_bn = c_act = None
        if self.norm is not None:
            self.norm.training = training
            bn_params, bn_state = params[f"bn_{self.name}"], state[f"bn_{self.name}"]
            if rows != slice(None):  # inference only: the running statistics are not updated
                bn_params = {key: value[rows] for key, value in bn_params.items()}
                bn_state = {key: value[rows] for key, value in bn_state.items()}
            y, c_bn = self.norm.forward(bn_params, y, bn_state)
        if self.act is not None:
            y, c_act = self.act.forward({}, y)
        return y, c_layer, c_bn, c_act

    def backward(self, params, cache, dy, grads, need_input=True, need_params=True):
        """The input's gradient (None unless ``need_input``); the parameters' go into ``grads`` if ``need_params``."""
        W, c_sn, c_layer, c_bn, c_act = cache
        if self.act is not None:
            dy, _ = self.act.backward({}, c_act, dy)
        if self.norm is not None:
            dy, g_bn = self.norm.backward(params[f"bn_{self.name}"], c_bn, dy)
            if need_params:
                grads[f"bn_{self.name}"] = g_bn
        dx, g = self.layer.backward({"W": W}, c_layer, dy, need_input=need_input, need_params=need_params)
        if need_params:
            dW = spectral_norm.normalize_backward(c_sn, g["W"]) if self.sn else g["W"]
            grads[self.name] = {"W": dW, **({"b": g["b"]} if self.bias else {})}
        return dx

    def power_iterate(self, params, state):
        if self.sn:
            sn = state[f"sn_{self.name}"]
            sn["u"], sn["v"] = spectral_norm.power_iteration(params[self.name]["W"], sn["u"])


class GanNetwork:
    """What the three networks share: their blocks' arrays, initialisation and power iteration."""

    blocks = ()

    def array_shapes(self):
        shapes = {"params": {}, "state": {}}
        for block in self.blocks:
            for group, tree in block.array_shapes().items():
                shapes[group].update(tree)
        return shapes

    def init_params(self, rng, dtype=np.float32):
        """Initial ``params, state`` (numpy) drawn from ``rng``, the same on every backend."""
        params, state = {}, {}
        for block in self.blocks:
            block.init(rng, params, state, dtype)
        return params, state

    def weights(self, params, state):
        """Every block's weight as it is used (spectrally normalised where it is), by block name: for
        inference that runs many times on one set of weights (:meth:`Generator.forward`'s ``weights``)."""
        return {block.name: block.weight(params, state) for block in self.blocks}

    def power_iterate(self, params, state):
        """One power-iteration step of every spectral norm (once per training step of this network)."""
        for block in self.blocks:
            block.power_iterate(params, state)

    def layer_names(self):
        """Names of this network's entries in the params tree."""
        return list(self.array_shapes()["params"])


def _conv(in_channels, out_channels, width, stride, backend, padding=None):
    padding = width // 2 if padding is None else padding
    return Conv1d(in_channels, out_channels, width, stride=stride, padding=padding, backend=backend)


class Generator(GanNetwork):
    """The U-net on one third: (B, n_mels, frames) in [-1, 1] -> the same shape (see the module)."""

    def __init__(self, arch, backend=None):
        backend = _cpu if backend is None else backend
        m, c = arch.n_mels, arch.channels
        self.arch = arch
        self.enc = [_Block("gen.enc0", _conv(m, c, 3, 1, backend), sn=True, bn=True),
                    _Block("gen.enc1", _conv(c, c, 9, 2, backend), sn=True, bn=True),
                    _Block("gen.enc2", _conv(c, c, 7, 2, backend), sn=True, bn=True)]
        self.dec = [_Block("gen.dec0", _conv(c, c, 7, 1, backend), sn=True, bn=True),
                    _Block("gen.dec1", _conv(2 * c, c, 9, 1, backend), sn=True)]
        self.out = _Block("gen.out", _conv(2 * c, m, 1, 1, backend), sn=True, act=False, bias=True)
        self.blocks = (*self.enc, *self.dec, self.out)
        self.up = Upsample1d(2)
        self.tanh = Tanh()

    def forward(self, params, state, x, training=True, weights=None):
        """x (B, n_mels, T), T a multiple of 4 -> y (B, n_mels, T), and the cache for :meth:`backward`.

        ``weights``: :meth:`weights`' (for inference only: a cache made with them has no gradient
        through the spectral norm)."""
        return finish(self.forward_in_pieces(params, state, x, training, weights))

    def forward_in_pieces(self, params, state, x, training=True, weights=None, max_macs=None):
        """:meth:`forward` as a generator that stops after each block, and with ``max_macs`` within
        them (a stream runs a window's pieces in the gaps of its audio callbacks); its return value is
        forward's.

        ``max_macs`` (inference only): each block's product is cut into groups of output channels of at
        most about that many multiply-adds, with a stop after each (:meth:`_Block.infer_in_parts`), and
        the cache is None."""
        if x.shape[2] % 4:
            raise ParameterError(f"the generator needs a multiple of 4 frames, got {x.shape[2]}")
        if max_macs is not None and training:
            raise ParameterError("the generator runs in parts for inference only (training=False)")
        xp = array_module(x)
        caches = []

        def run(block, h):
            weight = None if weights is None else weights[block.name]
            if max_macs is None:
                y, cache = block.forward(params, state, h, training, weight)
                caches.append(cache)
                return y
            return (yield from block.infer_in_parts(params, state, h, weight, max_macs))

        h0 = yield from run(self.enc[0], x)
        yield
        h1 = yield from run(self.enc[1], h0)
        yield
        h2 = yield from run(self.enc[2], h1)
        yield
        d0 = yield from run(self.dec[0], self.up.forward({}, h2)[0])
        yield
        d1 = yield from run(self.dec[1], self.up.forward({}, xp.concatenate([d0, h1], axis=1))[0])
        yield
        z = yield from run(self.out, xp.concatenate([d1, h0], axis=1))
        y, ct = self.tanh.forward({}, z)
        return y, (None if max_macs is not None else (*caches, ct))

    def backward(self, params, cache, dy, *, need_input=True):
        """dy (B, n_mels, T) -> dx (B, n_mels, T) (None unless ``need_input``), grads (this network's layers)."""
        c0, c1, c2, cd0, cd1, co, ct = cache
        c = self.arch.channels
        grads = {}
        ds1 = self.out.backward(params, co, self.tanh.backward({}, ct, dy)[0], grads)
        dd1, dh0 = ds1[:, :c], ds1[:, c:]
        ds0 = self.up.backward({}, None, self.dec[1].backward(params, cd1, dd1, grads))[0]
        dd0, dh1 = ds0[:, :c], ds0[:, c:]
        dh2 = self.up.backward({}, None, self.dec[0].backward(params, cd0, dd0, grads))[0]
        dh1 = dh1 + self.enc[2].backward(params, c2, dh2, grads)
        dh0 = dh0 + self.enc[1].backward(params, c1, dh1, grads)
        dx = self.enc[0].backward(params, c0, dh0, grads, need_input)
        return dx, grads


class _Chain(GanNetwork):
    """Blocks applied one after another (the siamese network and the critic)."""

    def forward(self, params, state, x, training=True):
        """x (B, n_mels, T) -> y (B, out) and the cache for :meth:`backward`."""
        caches = []
        h = x
        for block in self.blocks:
            h, cache = block.forward(params, state, h, training)
            caches.append(cache)
        return h, caches

    def backward(self, params, caches, dy, *, need_input=True, need_params=True):
        """dy (B, out) -> dx (None unless ``need_input``), grads ({} unless ``need_params``)."""
        grads = {}
        for i, (block, cache) in enumerate(zip(reversed(self.blocks), reversed(caches))):
            first = i == len(self.blocks) - 1
            dy = block.backward(params, cache, dy, grads, need_input or not first, need_params)
        return dy, grads


def _encoded_frames(frames):
    """Frames after a width-3 conv with padding 1 and two stride-2 convs (widths 9 and 7, half padding)."""
    t = frames
    for width in (9, 7):
        t = (t + 2 * (width // 2) - width) // 2 + 1
    return t


class Siamese(_Chain):
    """One third (B, n_mels, frames) -> a vector (B, embedding) (see the module)."""

    def __init__(self, arch, backend=None):
        backend = _cpu if backend is None else backend
        m, c = arch.n_mels, arch.channels
        self.arch = arch
        self.blocks = (_Block("siam.enc0", _conv(m, c, 3, 1, backend), bn=True),
                       _Block("siam.enc1", _conv(c, c, 9, 2, backend), bn=True),
                       _Block("siam.enc2", _conv(c, c, 7, 2, backend), bn=True),
                       _Block("siam.dense", Dense(c * _encoded_frames(arch.frames), arch.embedding), act=False,
                              bias=True))


class Critic(_Chain):
    """Three thirds (B, n_mels, 3 frames) -> a score (B, 1) (see the module)."""

    def __init__(self, arch, backend=None):
        backend = _cpu if backend is None else backend
        m, c = arch.n_mels, arch.critic_channels
        self.arch = arch
        t = 3 * arch.frames - 2  # the width-3 conv without padding
        for width in (9, 7):
            t = (t + 2 * (width // 2) - width) // 2 + 1
        self.blocks = (_Block("critic.enc0", _conv(m, c, 3, 1, backend, padding=0), sn=True),
                       _Block("critic.enc1", _conv(c, c, 9, 2, backend), sn=True),
                       _Block("critic.enc2", _conv(c, c, 7, 2, backend), sn=True),
                       _Block("critic.dense", Dense(c * t, 1), sn=True, act=False, bias=True))
