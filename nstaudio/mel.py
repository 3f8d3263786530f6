"""Mel spectrograms: the mel scale, filterbanks, MelGAN-VC's normalised log-mel features, and back.

The `gan` method works on mel spectrograms (Pasini's MelGAN-VC); :mod:`nstaudio.quality`
measures texture on them. Going back from mel bands to a linear-frequency magnitude is a
non-negative least-squares problem (more bins than bands): :func:`mel_to_power` solves it
for every frame at once with accelerated projected gradient.
"""

import numpy as np
import scipy.sparse

from .errors import ParameterError
from .pieces import finish
from .validation import check_int

MIN_DB = -100.0  # MelGAN-VC's floor: dB values from MIN_DB to 0 map to [-1, 1]


def hz_to_mel(frequencies):
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    f = np.asarray(frequencies, dtype=np.float64)
    linear = f * 3.0 / 200.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-30) / 1000.0) / (np.log(6.4) / 27.0), linear)


def mel_to_hz(mels):
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(mels, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * 200.0 / 3.0)


def mel_filterbank(sr, n_fft, n_mels=64, fmin=0.0, fmax=None):
    """Triangular mel filters with unit area (Slaney normalisation), as ``librosa.filters.mel``.

    Returns
    -------
    np.ndarray, shape (n_mels, 1 + n_fft // 2), float64
    """
    n_mels = check_int("n_mels", n_mels, minimum=1, maximum=1024)
    fmax = sr / 2.0 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sr / 2.0:
        raise ParameterError(f"need 0 <= fmin < fmax <= sr/2, got fmin={fmin}, fmax={fmax}, sr={sr}")
    bins = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    rising = (bins[None, :] - edges[:-2, None]) / widths[:-1, None]
    falling = (edges[2:, None] - bins[None, :]) / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def band_average(filterbank):
    """The filterbank with each filter's weights summing to 1: a band's value is the mean power under it.

    Parameters
    ----------
    filterbank : np.ndarray, shape (n_mels, bins)

    Returns
    -------
    np.ndarray, shape (n_mels, bins)
    """
    return filterbank / np.maximum(filterbank.sum(axis=1, keepdims=True), 1e-30)


def power_to_unit(power, min_db=MIN_DB):
    """MelGAN-VC's features: power in dB, clipped to ``[min_db, 0]``, scaled to [-1, 1].

    Parameters
    ----------
    power : array, any shape, non-negative

    Returns
    -------
    array of the shape of ``power``, float32, in [-1, 1]
    """
    db = 10.0 * np.log10(np.maximum(power, 10.0 ** (min_db / 10.0)))
    return np.clip(2.0 * (db - min_db) / -min_db - 1.0, -1.0, 1.0).astype(np.float32)


def unit_to_power(unit, min_db=MIN_DB):
    """Inverse of :func:`power_to_unit` (values outside [-1, 1] are clipped first)."""
    db = (np.clip(unit.astype(np.float64), -1.0, 1.0) + 1.0) / 2.0 * -min_db + min_db
    return 10.0 ** (db / 10.0)


def mel_to_power(mel_power, filterbank, *, n_iter=50):
    """Non-negative linear-frequency power whose mel bands are ``mel_power``: ``min ||F P - M||^2, P >= 0``.

    FISTA (accelerated projected gradient) over all frames of all channels at once, in float32,
    with F as a sparse matrix (each band covers a few bins: about 1 % of a 192 x 577 filterbank
    is non-zero). It starts from each bin's mean of the bands over it (``F^T M / F^T 1``) and
    steps by ``1 / L`` with ``L = max row sum * max column sum >= ||F||_2^2`` (Schur's bound;
    no SVD of F). :class:`MelInversion` is the same, prepared once for many calls.

    Parameters
    ----------
    mel_power : np.ndarray, shape (..., n_mels, T)
    filterbank : np.ndarray, shape (n_mels, bins), non-negative
    n_iter : int
        Gradient steps (0: the starting point alone).

    Returns
    -------
    np.ndarray, shape (..., bins, T), float32, non-negative
    """
    return MelInversion(filterbank).power(mel_power, n_iter=n_iter)


class MelInversion:
    """:func:`mel_to_power` for one filterbank, prepared once (its sparse forms, step and coverage): a
    stream inverts a few frames at a time, where preparing would cost more than inverting.

    Parameters
    ----------
    filterbank : np.ndarray, shape (n_mels, bins), non-negative
    """

    def __init__(self, filterbank):
        F = np.asarray(filterbank, dtype=np.float32)
        if np.any(F < 0):
            raise ParameterError("the filterbank must be non-negative")
        self.n_mels, self.bins = F.shape
        self.step = np.float32(1.0 / max(float(F.sum(axis=1).max() * F.sum(axis=0).max()), 1e-30))
        coverage = F.sum(axis=0)
        self.coverage = np.where(coverage > 0, coverage, 1).astype(np.float32)  # F^T 1, 1 where no band reaches
        forward = scipy.sparse.csr_matrix(F)
        self.matrices = tuple((m.indptr, m.indices, m.data) for m in (forward, forward.T.tocsr()))

    def power(self, mel_power, *, n_iter=50, backend=None):
        """The power of :func:`mel_to_power` for ``mel_power`` (..., n_mels, T).

        ``backend``: whose ``mel_fista_start`` and ``mel_fista_steps`` run (None: the numpy reference,
        on scipy's sparse products; numba's are the same loops without a Python step per iteration).
        """
        return finish(self.power_in_pieces(mel_power, n_iter=n_iter, backend=backend))

    def power_in_pieces(self, mel_power, *, n_iter=50, backend=None, steps=None):
        """:meth:`power` as a generator that stops after every ``steps`` FISTA steps (None: never), each stop
        after a piece of work of a stream's size; its return value is power's, to the bit."""
        n_iter = check_int("n_iter", n_iter, minimum=0)
        steps = n_iter if steps is None else check_int("steps", steps, minimum=1)
        M = np.asarray(mel_power, dtype=np.float32)
        if M.shape[-2] != self.n_mels:
            raise ParameterError(f"mel spectrogram of {M.shape[-2]} bands for a filterbank of {self.n_mels}")
        lead, T = M.shape[:-2], M.shape[-1]
        M = np.ascontiguousarray(np.moveaxis(M, -2, 0).reshape(self.n_mels, -1))  # (n_mels, frames of every channel)
        if backend is None:
            from .kernels import numpy_backend as backend
        P = backend.mel_fista_start(*self.matrices[1], M, self.coverage, self.bins)
        Y = P.copy()
        momenta = _momenta(n_iter)
        for first in range(0, n_iter, max(steps, 1)):
            if first:
                yield
            backend.mel_fista_steps(*self.matrices[0], *self.matrices[1], M, self.step, momenta[first:first + steps],
                                    P, Y)
        return np.ascontiguousarray(np.moveaxis(P.reshape(self.bins, *lead, T), 0, -2), dtype=np.float32)


def _momenta(n_iter):
    """FISTA's momentum coefficients ``(t_k - 1) / t_{k+1}``, float32, one per step."""
    momenta, t = np.empty(n_iter, np.float32), 1.0
    for k in range(n_iter):
        t_next = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
        momenta[k] = (t - 1.0) / t_next
        t = t_next
    return momenta


def mel_convergence(mel_power, power, filterbank):
    """Mel-spectral convergence in dB: ``20 log10(||F P - M|| / ||M||)`` (lower is closer)."""
    M = np.asarray(mel_power, dtype=np.float64)
    error = np.linalg.norm(np.matmul(filterbank, power) - M)
    return float(20.0 * np.log10(max(error, 1e-300) / max(np.linalg.norm(M), 1e-300)))
