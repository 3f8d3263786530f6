"""Side-by-side spectrograms of content, style and output (needs the ``plot`` extra)."""

import os

import numpy as np

from . import spectral
from .errors import NstAudioError, ParameterError
from .files import atomic_path, check_can_write


def require_matplotlib():
    """Import matplotlib's object-oriented Figure (no pyplot: no global state, no GUI), or raise an install hint."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise NstAudioError("plotting needs matplotlib: pip install 'nstaudio[plot]'") from None
    return Figure


def check_plot_path(path):
    """Check before any work that ``path`` names an image format and can be written: ParameterError or OutputError.

    Returns
    -------
    str
        The matplotlib format name (``"png"``, ``"pdf"``, ``"svg"``...).
    """
    fmt = _image_format(path)
    check_can_write(path)
    return fmt


def _image_format(path):
    """The matplotlib format named by ``path``'s extension, or ParameterError listing the ones it writes."""
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    supported = require_matplotlib()().canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ParameterError(f"--plot {path!r}: the extension names no image format matplotlib writes "
                             f"(use one of {', '.join(sorted(supported))})")
    return fmt


def plot_spectrograms(path, signals, *, n_fft=2048, hop_length=None):
    """Draw dB spectrograms of several signals side by side and save them as an image.

    Parameters
    ----------
    path : str or os.PathLike
        Image file (the format follows the extension, e.g. ``.png``), written atomically.
    signals : dict of str -> (np.ndarray, int)
        Title -> (audio of shape (samples,) or (channels, samples), its sample rate);
        multichannel audio is shown as its first channel.
    n_fft, hop_length : int
        STFT settings for the display.
    """
    fmt = _image_format(path)  # writability: atomic_path below (the CLI checked both before the work)
    hop_length = n_fft // 4 if hop_length is None else hop_length
    fig = require_matplotlib()(figsize=(5 * len(signals), 4))
    axes = fig.subplots(1, len(signals), sharey=True, squeeze=False)
    for ax, (title, (y, sr)) in zip(axes[0], signals.items()):
        y = np.atleast_2d(y)[0]
        mag = np.abs(spectral.stft(y, n_fft=n_fft, hop_length=hop_length))
        db = 20 * np.log10(np.maximum(mag, 1e-6) / max(mag.max(), 1e-6))
        extent = (0, len(y) / sr, 0, sr / 2000)
        ax.imshow(db, origin="lower", aspect="auto", extent=extent, vmin=-80, vmax=0, cmap="magma")
        ax.set_facecolor("black")  # above a lower-rate signal's Nyquist: nothing, drawn as silence
        ax.set_title(title)
        ax.set_xlabel("time (s)")
    top = max(sr for _, sr in signals.values()) / 2000
    for ax in axes[0]:
        ax.set_ylim(0, top)
    axes[0][0].set_ylabel("frequency (kHz)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt)
