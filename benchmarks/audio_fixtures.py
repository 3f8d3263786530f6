"""Real audio for the benchmarks: the bundled example clips, repeated to any length."""

import os

import numpy as np

import nstaudio as nst
from nstaudio.examples import example_path

SR = 22050


def clip(name, seconds):
    """``seconds`` of the bundled ``"content"`` (piano) or ``"style"`` (violin) clip, tiled; (samples,)."""
    y, sr = nst.load(example_path(name))
    n = int(seconds * sr)
    return np.tile(y[0], -(-n // y.shape[1]))[:n]


def log_spectrogram(y, n_fft=2048, hop_length=512):
    """log1p magnitude, (bins, frames) float32."""
    return np.log1p(np.abs(nst.stft(y, n_fft=n_fft, hop_length=hop_length))).astype(np.float32)


def frames_for(seconds, hop_length=512):
    """Frames of a centered STFT of ``seconds`` of audio at 22.05 kHz."""
    return 1 + int(seconds * SR) // hop_length


# More real recordings (speech, drums) where they are at hand: NSTAUDIO_AUDIO_DIR, or the
# project's shared recordings next to the checkout.
AUDIO_DIR = os.environ.get("NSTAUDIO_AUDIO_DIR",
                           os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "shared", "audio"))


def recording(filename, seconds):
    """``seconds`` of ``AUDIO_DIR/filename`` at 22.05 kHz, mono, tiled; None when the file is not there."""
    path = os.path.join(AUDIO_DIR, filename)
    if not os.path.isfile(path):
        return None
    y, _ = nst.load(path, sr=SR)
    y = y.mean(axis=0)
    n = int(seconds * SR)
    return np.tile(y, -(-n // y.shape[0]))[:n]
