"""Training data: recordings as networks train on them (mono, at the working rate and one level), and crops.

Every trainer reads its recordings through :func:`training_signals`, so that a model sees
audio at the level the methods that run it bring their content to (:data:`TRAINING_PEAK`).
"""

import numpy as np

from .. import audio, spectral
from ..errors import AudioError, ParameterError
from ..limits import MAX_WORK_RATE, MIN_WORK_RATE
from ..validation import as_audio, check_int, check_sample_rate

# Networks see every recording at one level: peak -1 dBFS. A log1p magnitude depends on the
# level, and a style clip recorded quieter than the corpus would otherwise teach the network
# to change the loudness instead of the timbre (docs/decisions.md, "One training level").
TRAINING_PEAK = 10 ** (-1 / 20)


def check_spectrogram(sr_work, n_fft, hop_length):
    """The spectrogram a network is trained on, checked: ``{"sr_work", "n_fft", "hop_length"}`` as ints.

    Raises
    ------
    ParameterError
        A rate outside ``limits.MIN_WORK_RATE..MAX_WORK_RATE``, ``n_fft`` outside 16..65536, or a
        hop that is not positive or longer than ``n_fft``.
    """
    n_fft = check_int("n_fft", n_fft, minimum=16, maximum=2**16)
    return dict(sr_work=check_int("sr_work", sr_work, minimum=MIN_WORK_RATE, maximum=MAX_WORK_RATE),
                n_fft=n_fft, hop_length=check_int("hop_length", hop_length, minimum=1, maximum=n_fft))


def training_signals(clips, sr, *, sr_work, name="corpus", labels=None):
    """The recordings as networks train on them: each mono, at ``sr_work`` and at peak ``TRAINING_PEAK``.

    Parameters
    ----------
    clips : list of np.ndarray, each shape (samples,) or (channels, samples)
    sr : int or list of int
        Sample rate of every clip, or of each.
    name : str
        What the clips are, for error messages.
    labels : list of str or None
        A name per clip for error messages (file paths), default "``name`` clip i".

    Returns
    -------
    list of (str, np.ndarray)
        Each clip's label and signal, shape (samples,), float32.
    """
    rates = sr if isinstance(sr, (list, tuple)) else [sr] * len(clips)
    if len(rates) != len(clips):
        raise ParameterError(f"{len(rates)} sample rates for {len(clips)} {name} clips")
    out = []
    for i, (y, rate) in enumerate(zip(clips, rates)):
        label = labels[i] if labels is not None else name if len(clips) == 1 else f"{name} clip {i + 1}"
        y = audio.to_mono(as_audio(y, label))
        y = audio.resample(y, orig_sr=check_sample_rate(rate), target_sr=sr_work)[0]
        out.append((label, y * np.float32(TRAINING_PEAK / max(float(np.max(np.abs(y))), 1e-12))))
    return out


def log_spectrograms(clips, sr, *, sr_work, n_fft, hop_length, name="corpus", labels=None):
    """Mono working-rate log1p-magnitude spectrograms of a list of recordings, each at peak ``TRAINING_PEAK``.

    Parameters
    ----------
    clips : list of np.ndarray, each shape (samples,) or (channels, samples)
    sr : int or list of int
        Sample rate of every clip, or of each.
    name : str
        What the clips are, for error messages.
    labels : list of str or None
        A name per clip for error messages (file paths), default "``name`` clip i".

    Returns
    -------
    list of np.ndarray, each shape (1 + n_fft // 2, frames), float32
    """
    out = []
    for label, y in training_signals(clips, sr, sr_work=sr_work, name=name, labels=labels):
        if y.shape[-1] < n_fft:
            raise AudioError(f"{label} is too short: {y.shape[-1] / sr_work:.3f} s, one {n_fft}-sample frame needs "
                             f"{n_fft / sr_work:.3f} s")
        out.append(np.log1p(np.abs(spectral.stft(y, n_fft=n_fft, hop_length=hop_length))).astype(np.float32))
    return out


def corpus_spectrograms(corpus, sr, sr_work, n_fft, hop_length, crop, labels):
    """:func:`log_spectrograms` of a training corpus, refused where it is empty or no clip holds one ``crop``.

    Returns
    -------
    list of np.ndarray, each shape (1 + n_fft // 2, frames), float32
    """
    if not corpus:
        raise AudioError("the corpus is empty: training needs at least one recording")
    specs = log_spectrograms(corpus, sr, sr_work=sr_work, n_fft=n_fft, hop_length=hop_length, labels=labels)
    if max(s.shape[1] for s in specs) < crop:
        need = (crop - 1) * hop_length / sr_work
        raise AudioError(f"every corpus clip is shorter than the {crop}-frame training crop (about {need:.1f} s)")
    return specs


def random_crops(spectrograms, count, length, rng):
    """``count`` random time crops of ``length`` frames from a list of spectrograms.

    Parameters
    ----------
    spectrograms : list of np.ndarray, each shape (C, T_i) with T_i >= length
    count, length : int
    rng : numpy.random.Generator

    Returns
    -------
    np.ndarray, shape (count, C, length)
    """
    usable = [s for s in spectrograms if s.shape[1] >= length]
    if not usable:
        raise ParameterError(f"no spectrogram has the {length} frames a crop needs")
    frames = np.array([s.shape[1] - length + 1 for s in usable], dtype=np.float64)
    picks = rng.choice(len(usable), size=count, p=frames / frames.sum())  # uniform over all crop positions
    return np.stack([usable[i][:, (start := rng.integers(usable[i].shape[1] - length + 1)):start + length]
                     for i in picks])
