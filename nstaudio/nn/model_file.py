"""The model file: a trained model (its network's arrays and the spectrogram it works on), read and written.

A model is a :class:`Model`: an autoencoder (a loss network, or a style model's transformation
network) or MelGAN-VC's three networks, with a header that says which ``kind`` it is and the
spectrogram settings it was trained with. The bytes are a checkpoint
(:mod:`nstaudio.nn.checkpoint`); this module checks what its header claims about the model.
nstaudio ships one loss network (:func:`default_lossnet`).
"""

from dataclasses import dataclass
from importlib import resources

from ..limits import MAX_WORK_RATE, MIN_WORK_RATE
from .autoencoder import Architecture
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint, short_repr

KINDS = ("lossnet", "style", "gan")


@dataclass
class Model:
    """A trained model: a network (an autoencoder, or MelGAN-VC's three) and the spectrogram settings it works on.

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
    """Write a finished :class:`Model` (``dtype=np.float16`` halves the file).

    Parameters
    ----------
    path : str or os.PathLike
    network : Model
    dtype : numpy dtype or None
        Store the parameters in this type (``np.float16`` halves the file); None keeps their type.
    """
    save_checkpoint(path, network.arch, network.params, network.state, meta={**network.meta, "complete": True},
                    dtype=dtype)


def load_model(path, kind=None):
    """Read a :class:`Model` saved by :func:`save_model` or by a finished training run.

    Parameters
    ----------
    path : str or os.PathLike
    kind : {"lossnet", "style", "gan"}, tuple of them, or None
        Refuse a file holding another kind.

    Returns
    -------
    Model

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
    complete = check_complete(path, meta, default=False)
    wanted = (kind,) if isinstance(kind, str) else kind
    if wanted is not None and meta["kind"] not in wanted:
        raise CheckpointError(f"{path}: holds a {describe_kind(meta['kind'])}, not a "
                              f"{' or '.join(describe_kind(k) for k in wanted)}")
    if not complete:
        raise CheckpointError(f"{path}: an unfinished training run (step {short_repr(meta.get('step'))} of "
                              f"{short_repr(meta.get('steps'))}); finish it with --resume")
    return Model(ckpt.arch, ckpt.params, ckpt.state, meta)


def meta_int(path, meta, key, minimum, maximum):
    """``meta[key]``, an int in ``[minimum, maximum]``, or a CheckpointError naming it."""
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise CheckpointError(f"{path}: corrupt header ({key} is {short_repr(value)}, not an integer from {minimum} "
                              f"to {maximum})")
    return value


def _check_spectrogram_settings(path, arch, meta):
    """The settings a network was trained with: in the ranges stylize takes, and those of its input layer."""
    meta_int(path, meta, "sr", MIN_WORK_RATE, MAX_WORK_RATE)
    n_fft = meta_int(path, meta, "n_fft", 16, 2**16)
    meta_int(path, meta, "hop_length", 1, n_fft)
    if isinstance(arch, Architecture) != (meta["kind"] != "gan"):
        raise CheckpointError(f"{path}: corrupt header (a {describe_kind(meta['kind'])} holding another network)")
    if not isinstance(arch, Architecture):  # a gan's input layer takes mel bands, of any spectrogram
        return
    if arch.n_bins != 1 + n_fft // 2:
        raise CheckpointError(f"{path}: corrupt header (n_fft {n_fft} makes {1 + n_fft // 2} frequency bins, the "
                              f"network takes {arch.n_bins})")


def check_complete(path, meta, default):
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
        one with :func:`nstaudio.train_lossnet` and pass it as ``lossnet``.
    """
    path = resources.files("nstaudio") / "data" / "lossnet.npz"
    if not path.is_file():
        raise CheckpointError(f"this installation of nstaudio lacks its loss network ({path}): train one with "
                              "`nstaudio train-lossnet CORPUS_DIR -o lossnet.npz` (scripts/make_corpus.py makes a "
                              "corpus) and pass --lossnet")
    return load_model(path, kind="lossnet")
