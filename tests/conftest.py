"""Shared fixtures: audio synthesised with numpy and the small real clips bundled in the package."""

import numpy as np
import pytest
import soundfile as sf
from numba import config as numba_config

from nstaudio.examples import example_path

SR = 22050


def pytest_ignore_collect(collection_path, config):
    """tests/cudasim runs only under NUMBA_ENABLE_CUDASIM=1 (test_cuda_simulator.py starts it)."""
    if collection_path.name == "cudasim" and not numba_config.ENABLE_CUDASIM:
        return True
    return None


def finish_counting(pieces):
    """Run a generator of pieces (``nstaudio.pieces``) to its end: its return value, and how often it stopped."""
    stops = 0
    while True:
        try:
            next(pieces)
            stops += 1
        except StopIteration as finished:
            return finished.value, stops


def harmonic_tone(seconds=1.0, sr=SR, f0=220.0, seed=0):
    """A real-world-like test signal: harmonics with vibrato, a decaying envelope and a little noise.

    Returns
    -------
    np.ndarray, shape (samples,), float32
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    freq = f0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(freq) / sr
    y = sum(np.sin(h * phase) / h for h in range(1, 8))
    y *= np.exp(-1.5 * (t % 0.5))
    y += 0.01 * rng.standard_normal(len(t))
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


@pytest.fixture
def tone():
    return harmonic_tone()


@pytest.fixture(scope="session")
def example_audio():
    """The bundled real recordings (piano content, violin style), each (samples,) float32 at 22.05 kHz."""
    content, sr = sf.read(example_path("content"), dtype="float32")
    style, _ = sf.read(example_path("style"), dtype="float32")
    return content, style, sr


@pytest.fixture
def wav_files(tmp_path):
    """Write small content and style files; returns a function name -> path for more."""
    def write(name, y, sr=SR, subtype="PCM_16"):
        path = tmp_path / name
        sf.write(path, np.asarray(y).T, sr, subtype=subtype)
        return str(path)
    return write
