"""The AutoStyle autoencoder (Ramani et al.): 4 strided convolutions, 4 transposed convolutions.

Every layer but the last is followed by ReLU and then BatchNorm (the paper's order). The
same architecture serves as the frozen loss network (trained to reconstruct log-magnitude
spectrograms) and as the transformation network (initialised from it). Input and output
are (B, C, T) log-magnitude spectrograms; T must be a multiple of ``stride ** 4``
(:meth:`Autoencoder.pad_length` says how much to pad).
"""

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ParameterError
from ..kernels import cpu as _cpu
from ..validation import check_int
from .layers import BatchNorm1d, Conv1d, ConvTranspose1d, ReLU


@dataclass(frozen=True)
class Architecture:
    """Shape of the autoencoder, stored in checkpoints.

    Every field is checked (and kept as a plain int) on construction, within bounds that any
    usable network fits in and that keep a file's claims about its arrays small enough to
    compute with: a checkpoint's header says which architecture it holds, and the header
    may come from anywhere.

    Attributes
    ----------
    n_bins : int
        Input channels (frequency bins), 1 to :attr:`MAX_BINS` (``1 + n_fft // 2`` for
        ``n_fft`` up to ``2 ** 16``, the largest FFT size nstaudio takes).
    channels : tuple of int
        Channels after each of the 4 encoder convolutions, each 1 to :attr:`MAX_CHANNELS`.
    width : int
        Filter width (odd, so ``padding = width // 2`` keeps lengths aligned), at most
        :attr:`MAX_WIDTH`.
    stride : int
        Time downsampling of each encoder layer, 1 to :attr:`MAX_STRIDE`.
    causal : bool
        Every layer sees only the frames up to its own: an output frame depends on no later
        input frame, so a stream (:class:`nstaudio.Stream`) needs no look-ahead for it. With
        ``stride`` 1, because a strided bottleneck would hold back each frame's information
        until the next bottleneck frame. False: centred filters (``width // 2`` frames each side).
    """

    n_bins: int
    channels: tuple = (256, 128, 64, 32)
    width: int = 5
    stride: int = 2
    causal: bool = False

    # The bounds train_lossnet puts on n_fft, channels and width; a stride of 16 already
    # makes inputs a multiple of 16 ** 4 = 65536 frames long.
    NETWORK = "autoencoder"  # what a checkpoint's header calls it
    HISTORY_COLUMNS = None  # training keeps one loss per step
    MAX_BINS = 1 + 2**16 // 2
    MAX_CHANNELS = 4096
    MAX_WIDTH = 63
    MAX_STRIDE = 16
    FIELDS = ("n_bins", "channels", "width", "stride")
    OPTIONAL = ("causal",)  # left out of files when False, so that older files read the same

    def __post_init__(self):
        channels = self.channels
        if not isinstance(channels, (tuple, list)) or len(channels) != 4:
            got = f"{len(channels)} values" if isinstance(channels, (tuple, list)) else type(channels).__name__
            raise ParameterError(f"channels must be 4 positive numbers, got {got}")
        # frozen: the checked values replace the given ones (numpy integers, lists)
        object.__setattr__(self, "n_bins", self._integer("n_bins", self.n_bins, self.MAX_BINS))
        object.__setattr__(self, "channels", tuple(self._integer("channels", c, self.MAX_CHANNELS) for c in channels))
        object.__setattr__(self, "width", self._integer("width", self.width, self.MAX_WIDTH))
        object.__setattr__(self, "stride", self._integer("stride", self.stride, self.MAX_STRIDE))
        if self.width % 2 == 0:
            raise ParameterError(f"width must be odd, got {self.width}")
        if not isinstance(self.causal, (bool, np.bool_)):
            raise ParameterError(f"causal must be true or false, got {type(self.causal).__name__}")
        object.__setattr__(self, "causal", bool(self.causal))

    @staticmethod
    def _integer(name, value, maximum):
        """``value`` as an int in 1..maximum; containers are named by type (their repr can be huge or too deep)."""
        if isinstance(value, (list, tuple, dict, set)):
            raise ParameterError(f"{name} must be an integer, got a {type(value).__name__}")
        return check_int(name, value, minimum=1, maximum=maximum)

    def to_dict(self):
        d = asdict(self)
        d["channels"] = list(self.channels)
        if not self.causal:
            del d["causal"]
        return d

    @classmethod
    def from_dict(cls, d):
        """The architecture :meth:`to_dict` gave, from a mapping read back from a file.

        Raises
        ------
        ParameterError
            ``d`` is no mapping, lacks a field or has another, or a field has the wrong type
            or is out of range; the message names the field.
        """
        if not isinstance(d, dict):
            raise ParameterError(f"the architecture must be a mapping, got a {type(d).__name__}")
        missing = [name for name in cls.FIELDS if name not in d]
        if missing:
            raise ParameterError(f"the architecture lacks {', '.join(missing)}")
        unknown = sorted(str(key) for key in d if key not in cls.FIELDS + cls.OPTIONAL)
        if unknown:  # a field this version does not know would change the network silently
            raise ParameterError(f"unknown architecture field {unknown[0]!r}")
        if not isinstance(d["channels"], list):  # JSON has lists; a string or a number has no 4 channels
            raise ParameterError(f"channels must be a list of 4 integers, got a {type(d['channels']).__name__}")
        return cls(n_bins=d["n_bins"], channels=tuple(d["channels"]), width=d["width"], stride=d["stride"],
                   causal=d.get("causal", False))

    def array_shapes(self):
        """The shape of every array of an :class:`Autoencoder` of this architecture, computed without making one.

        A file's claims about its arrays are checked against these before anything is read or
        allocated; :meth:`Autoencoder.init_params` lays the arrays out the same way (a test
        holds the two equal).

        Returns
        -------
        dict
            ``{"params": {layer: {name: shape}}, "state": {layer: {name: shape}}}``, shapes as
            tuples of int.
        """
        sizes = [self.n_bins, *self.channels]
        # (layer, W's shape, output channels): Conv1d's W is (C_out, C_in, K), ConvTranspose1d's (C_in, C_out, K)
        convs = [(f"enc{i}", (sizes[i + 1], sizes[i], self.width), sizes[i + 1]) for i in range(4)]
        convs += [(f"dec{i}", (sizes[4 - i], sizes[3 - i], self.width), sizes[3 - i]) for i in range(4)]
        params = {name: {"W": w, "b": (c_out,)} for name, w, c_out in convs}
        state = {}
        for name, _, c_out in convs[:-1]:  # every layer but the last is followed by BatchNorm
            params[f"bn_{name}"] = {"gamma": (c_out,), "beta": (c_out,)}
            state[f"bn_{name}"] = {"running_mean": (c_out,), "running_var": (c_out,)}
        return {"params": params, "state": state}


class Autoencoder:
    """Layers and their forward/backward over named parameters.

    ``params`` maps layer names (``enc0``..``enc3``, ``dec0``..``dec3``, ``bn_enc0``..) to that
    layer's parameter dict; ``state`` holds the BatchNorm running statistics.

    Parameters
    ----------
    arch : Architecture
    backend : module or None
        From ``nstaudio.kernels.get_backend``: whose kernels the convolutions run, on whose
        arrays (``params``, ``state`` and inputs must be that backend's, see
        :func:`to_backend`). None: the cpu backend.
    """

    def __init__(self, arch, backend=None):
        self.arch = arch
        self.backend = _cpu if backend is None else backend
        sizes = [arch.n_bins, *arch.channels]
        pad = arch.width // 2
        self.layers = []  # (name, layer, followed_by_relu_bn)
        for i in range(4):
            self.layers.append((f"enc{i}", Conv1d(sizes[i], sizes[i + 1], arch.width, stride=arch.stride,
                                                  padding=pad, causal=arch.causal, backend=self.backend), True))
        for i in range(4):
            c_in, c_out = sizes[4 - i], sizes[3 - i]
            self.layers.append((f"dec{i}", ConvTranspose1d(c_in, c_out, arch.width, stride=arch.stride, padding=pad,
                                                            output_padding=arch.stride - 1, causal=arch.causal,
                                                            backend=self.backend), i < 3))
        self.norms = {name: BatchNorm1d(layer.out_channels) for name, layer, bn in self.layers if bn}
        self.relu = ReLU()

    @property
    def multiple(self):
        """Input lengths must be multiples of this (each encoder layer divides time by ``stride``)."""
        return self.arch.stride ** 4

    def pad_length(self, T):
        """Frames to append to a length-T input so the network maps it back to its own length."""
        return (-T) % self.multiple

    def init_params(self, seed=0, dtype=np.float32):
        """He-initialised parameters and fresh BatchNorm statistics (numpy arrays), from
        ``numpy.random.default_rng(seed)``: the same for every backend."""
        rng = np.random.default_rng(seed)
        params, state = {}, {}
        for name, layer, _ in self.layers:
            params[name] = layer.init_params(rng, dtype)
        for name, norm in self.norms.items():
            params[f"bn_{name}"] = norm.init_params(rng, dtype)
            state[f"bn_{name}"] = norm.init_state(dtype)
        return params, state

    def train(self, training=True):
        """Switch BatchNorm between batch statistics (training) and running statistics."""
        for norm in self.norms.values():
            norm.training = training

    def forward(self, params, state, x, *, stop_after=None, keep_caches=True, scratch=None):
        """Run the network.

        Parameters
        ----------
        x : np.ndarray, shape (B, n_bins, T), T a multiple of :attr:`multiple`
        stop_after : str or None
            Name of the last layer to run (e.g. ``"enc3"``): a loss network only needs its
            encoder activations, so its decoder need not run. None runs every layer.
        keep_caches : bool
            False for a pass that needs no backward: each layer's cache (im2col columns, masks)
            is freed as soon as the next layer has run, so memory stays that of two activations
            (and fresh pages are not faulted in for every pass).
        scratch : kernels.cpu.Scratch or None
            Run from its reused buffers (no caches kept): ``y`` and the activations are then
            views into it, valid until its next use. For repeated inference (chunks, calls).

        Returns
        -------
        y : np.ndarray
            The output (shape of ``x``), or the activation of ``stop_after``.
        activations : dict
            ``enc0``..``enc3``: each encoder layer's output after ReLU and BatchNorm (style
            features are the earlier ones, content the last).
        caches : list
            For :meth:`backward` (empty when ``keep_caches`` is False).
        """
        if x.shape[2] % self.multiple:
            raise ParameterError(f"input length {x.shape[2]} is not a multiple of {self.multiple}; "
                                 f"pad {self.pad_length(x.shape[2])} frames")
        activations, caches = {}, []
        h = x
        for name, layer, bn in self.layers:
            work = None if scratch is None else scratch.section(name)
            h, c_layer = layer.forward(params[name], h, work)
            c_relu = c_bn = None
            if bn:
                h, c_relu = self.relu.forward({}, h, work)
                h, c_bn = self.norms[name].forward(params[f"bn_{name}"], h, state[f"bn_{name}"], work)
            if name.startswith("enc"):
                activations[name] = h
            if keep_caches and scratch is None:
                caches.append((name, layer, bn, c_layer, c_relu, c_bn))
            if name == stop_after:
                break
        return h, activations, caches

    def backward(self, params, caches, dy, d_activations=None):
        """Gradients of a loss given ``dy`` at the output and optional gradients at encoder activations.

        Returns
        -------
        dx : np.ndarray, shape of the input
        grads : dict, the structure of ``params``
        """
        d_activations = d_activations or {}
        grads = {}
        dh = dy
        for name, layer, bn, c_layer, c_relu, c_bn in reversed(caches):
            if dh is None:
                dh = d_activations.get(name)
            elif name in d_activations:
                dh = dh + d_activations[name]
            if dh is None:  # nothing downstream of this layer feeds the loss
                continue
            if bn:
                dh, grads[f"bn_{name}"] = self.norms[name].backward(params[f"bn_{name}"], c_bn, dh)
                dh, _ = self.relu.backward({}, c_relu, dh)
            dh, grads[name] = layer.backward(params[name], c_layer, dh)
        return dh, grads


def causal_start(params, arch):
    """Weights for a causal network of ``arch`` from those of a centred one, without a delay.

    A centred layer of width K reaches ``p = K // 2`` frames each way; a causal one's taps all
    look back. Used as they are, the centred weights would delay every layer's output by ``p``
    frames (8 p in all). Instead each tap keeps its offset in time: those on past and present
    frames move to the causal layer's taps for the same offsets, and those on future frames,
    which a causal layer has no tap for, are left out.

    Parameters
    ----------
    params : dict
        A centred :class:`Autoencoder`'s parameters (any stride; only the taps move).
    arch : Architecture
        The causal architecture (same arrays).

    Returns
    -------
    dict
        New parameters; BatchNorm's and the biases copied.
    """
    K, p = arch.width, arch.width // 2
    out = {}
    for layer, values in params.items():
        values = dict(values)
        if layer.startswith("enc"):  # y[t] = sum_k W_k x[t + k - p]: offsets k - p; causal: k' - (K - 1)
            W = np.zeros_like(values["W"])
            W[..., K - 1 - p:] = values["W"][..., :p + 1]
            values["W"] = W
        elif layer.startswith("dec"):  # y[t] = sum_k W_k^T x[t + p - k]: offsets p - k; causal: -k'
            W = np.zeros_like(values["W"])
            W[..., :K - p] = values["W"][..., p:]
            values["W"] = W
        out[layer] = values
    return out


def to_backend(tree, backend):
    """Copy of a {layer: {name: array}} parameter or state tree as ``backend``'s arrays."""
    return {layer: {name: backend.xp.array(a) for name, a in values.items()} for layer, values in tree.items()}


def to_host(tree, backend):
    """Copy of a tree of ``backend``'s arrays as numpy arrays (for results and checkpoints)."""
    return {layer: {name: np.array(backend.to_numpy(a)) for name, a in values.items()} for layer, values in tree.items()}
