"""The `timedomain` method (Mital 2017): optimize the waveform itself, no phase reconstruction.

Features of a waveform y (one per channel): Hann-windowed frames -> real DFT -> the real
part R, the imaginary part I and the magnitude M, stacked as Z = [R; I; M] of shape
(3C, T) (C = frame // 2 + 1 bins, T frames). One random conv layer whose kernel spans the
three components (3C input channels, width K along time) and a ReLU give F. The loss is

    alpha (||Z - Zc||^2 + ||F - Fc||^2) + ||M M^T / T - Gm||^2 + ||F F^T / T' - Gf||^2
    + temporal_weight ||mean_f L - mean_f Lc||^2 + spectral_weight ||mean_t L - mean_t Ls||^2,

content on the stacked components and the conv layer, Gram style on the magnitudes and the
conv layer, and Verma and Smith's envelope terms on the log magnitudes L = log1p(M) (the
same terms as `optimize`'s, which works on log1p magnitudes: each frame's mean kept to the
content's, each bin's mean over time brought to the style's). Its gradient flows back to the
samples analytically: the conv part reuses the `optimize` objective (so every backend serves
it), the magnitude's derivative is R/M, I/M (0 where M = 0), the real DFT's adjoint is a
weighted inverse real FFT, and the framing's adjoint is overlap-add.
"""

import numpy as np
import scipy.fft

from .. import optimizers, spectral
from ..errors import ParameterError
from ..features import random_filters
from ..kernels import get_backend
from ..kernels.blas_threads import holds_one_blas_thread
from ..kernels.products import gram, matmul
from ..objective import StyleTransferObjective, envelope_terms, normalised_weights
from ..validation import check_choice, check_float, check_int
from .optimizing import (
    check_segments,
    conv_memory,
    frames_per_second,
    optimization_settings,
    optimization_steps,
    segment_length,
    spans,
)
from .registry import Method
from .segments import run_in_segments

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("noise", "content")


class Framing:
    """Hann-windowed frames of a zero-padded signal, and the exact adjoint.

    The signal of ``n`` samples is padded with ``frame // 2`` zeros in front and enough at
    the end that every sample lies in a frame; frame t starts at ``t * hop`` of the padded signal.
    """

    def __init__(self, n, frame, hop, dtype=np.float32):
        self.n, self.frame, self.hop = n, frame, hop
        self.front = frame // 2
        self.frames = 1 + -(-(n + self.front - frame) // hop) if n + self.front > frame else 1
        self.padded = frame + hop * (self.frames - 1)
        self.window = spectral.get_window("hann", frame, frame).astype(dtype)

    def __call__(self, y):
        """y (B, n) -> windowed frames (B, T, frame)."""
        padded = np.zeros((y.shape[0], self.padded), dtype=y.dtype)
        padded[:, self.front:self.front + self.n] = y
        frames = np.lib.stride_tricks.sliding_window_view(padded, self.frame, axis=1)[:, ::self.hop]
        return frames * self.window

    def adjoint(self, frames):
        """(B, T, frame) -> (B, n): window, overlap-add, drop the padding."""
        out = spectral.overlap_add(frames * self.window, self.hop)  # length self.padded >= front + n
        return np.ascontiguousarray(out[:, self.front:self.front + self.n])


def stacked_features(y, framing):
    """``Z = [R; I; M]`` of each channel and what the gradient needs.

    Parameters
    ----------
    y : np.ndarray, shape (B, n)
    framing : Framing

    Returns
    -------
    Z : np.ndarray, shape (B, 3C, T)
    parts : tuple (R, I, M), each shape (B, C, T)
    """
    spec = scipy.fft.rfft(framing(y), axis=-1).transpose(0, 2, 1)  # (B, C, T)
    R, I = spec.real.astype(y.dtype), spec.imag.astype(y.dtype)
    M = np.sqrt(R * R + I * I)
    return np.concatenate([R, I, M], axis=1), (R, I, M)


def _rfft_adjoint(dR, dI, frame):
    """Adjoint of frames -> (Re, Im) of the real FFT: (B, C, T) pairs -> (B, T, frame).

    ``dx_n = sum_k dR_k cos(2 pi k n / N) - dI_k sin(2 pi k n / N)``, which is ``N irfft``
    of ``dR + i dI`` once the bins irfft counts twice (all but DC and Nyquist) are halved.
    """
    D = (dR + 1j * dI).transpose(0, 2, 1)
    scale = np.full(D.shape[-1], 0.5)
    scale[0] = 1.0
    if frame % 2 == 0:
        scale[-1] = 1.0
    return scipy.fft.irfft(D * scale, n=frame, axis=-1) * frame


class TimeDomainObjective:
    """``loss, grad = f(y)`` for waveforms y (B, n): the Mital time-domain objective.

    Parameters
    ----------
    backend : module
        Runs the conv layer (see :mod:`nstaudio.kernels`).
    W : np.ndarray, shape (N, 3C, K)
        Random filters spanning the three stacked components.
    content : np.ndarray, shape (B, n)
    styles : list of np.ndarray, each shape (n_i,)
    frame, hop : int
    style_weights : sequence of float or None
    alpha : float
        Content weight (0: style only).
    temporal_weight, spectral_weight : float
        Weights of the envelope terms (0: off).
    dtype : numpy dtype
    """

    def __init__(self, backend, W, content, styles, *, frame=2048, hop=256, style_weights=None, alpha=1e-2,
                 temporal_weight=0.0, spectral_weight=0.0, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        self.alpha = check_float("alpha", alpha, minimum=0.0)
        self.temporal_weight = check_float("temporal_weight", temporal_weight, minimum=0.0)
        self.spectral_weight = check_float("spectral_weight", spectral_weight, minimum=0.0)
        content = np.asarray(content, dtype=self.dtype)
        self.framing = Framing(content.shape[1], frame, hop, self.dtype)
        self.frame = frame
        Zc, (_, _, Mc) = stacked_features(content, self.framing)
        weights = normalised_weights(style_weights, len(styles))
        Zs, self.Gm, envelope = [], 0.0, 0.0
        for s, w in zip(styles, weights):
            s = np.asarray(s, dtype=self.dtype)[None]
            Z, (_, _, M) = stacked_features(s, Framing(s.shape[1], frame, hop, self.dtype))
            Zs.append(Z[0])
            self.Gm = self.Gm + w * gram(M[0]) / M.shape[2]
            envelope = envelope + w * np.log1p(M[0].astype(np.float64)).mean(axis=1)
        self.Zc = Zc
        self.temporal_targets = np.log1p(Mc).mean(axis=1) if self.temporal_weight > 0 else None  # (B, T)
        self.spectral_target = np.asarray(envelope, self.dtype) if self.spectral_weight > 0 else None  # (C,)
        self.conv = StyleTransferObjective(backend, W, Zc, Zs, style_weights=weights, alpha=alpha, dtype=self.dtype)
        self.backend = backend
        self.last_parts = {"content": np.nan, "style": np.nan, "temporal": 0.0, "spectral": 0.0}

    def __call__(self, y):
        """Loss and gradient for y (B, n); the gradient is a numpy array like y."""
        y = np.asarray(y, dtype=self.dtype)
        Z, (R, I, M) = stacked_features(y, self.framing)
        conv_loss, dZ = self.conv(Z)
        dZ = self.backend.to_numpy(dZ).astype(self.dtype, copy=False)
        content = self.conv.last_parts["content"]
        style = self.conv.last_parts["style"]
        C, T = M.shape[1], M.shape[2]
        if self.alpha > 0:
            residual = Z - self.Zc
            content += self.alpha * float(np.sum(residual.astype(np.float64) ** 2))
            dZ += (2 * self.alpha) * residual
        dR, dI, dM = dZ[:, :C], dZ[:, C:2 * C], dZ[:, 2 * C:].copy()
        for b in range(y.shape[0]):
            E = gram(M[b]) / T - self.Gm
            style += float(np.sum(E.astype(np.float64) ** 2))
            dM[b] += (4.0 / T) * matmul(E, M[b])  # E is symmetric
        temporal = spectral = 0.0
        if self.temporal_weight > 0 or self.spectral_weight > 0:
            dL = np.zeros_like(M)
            temporal, spectral = envelope_terms(
                np, np.log1p(M), dL, temporal_weight=self.temporal_weight, temporal_targets=self.temporal_targets,
                spectral_weight=self.spectral_weight, spectral_target=self.spectral_target)
            dM += dL / (1 + M)
        # |z| is not differentiable at 0; its subgradient 0 is what keeps silence finite.
        with np.errstate(divide="ignore", invalid="ignore"):
            unit_R = np.where(M > 0, R / M, 0).astype(self.dtype)
            unit_I = np.where(M > 0, I / M, 0).astype(self.dtype)
        dframes = _rfft_adjoint(dR + dM * unit_R, dI + dM * unit_I, self.frame).astype(self.dtype)
        self.last_parts = {"content": content, "style": style, "temporal": temporal, "spectral": spectral}
        return content + style + temporal + spectral, self.framing.adjoint(dframes)


def soft_limit(y, knee=0.9, ceiling=0.99):
    """Leave |y| <= knee alone and bend the rest smoothly up to ``ceiling``, so the output never clips.

    ``knee + (ceiling - knee) tanh((|y| - knee) / (ceiling - knee))`` above the knee:
    continuous with slope 1 at the knee, never above ``ceiling`` (tanh rounds to 1 in floating
    point for large inputs, so the ceiling, not 1, is the bound).
    """
    y = np.asarray(y)
    a = np.abs(y)
    over = a > knee
    out = y.copy()
    room = ceiling - knee
    out[over] = np.sign(y[over]) * (knee + room * np.tanh((a[over] - knee) / room))
    return out


@holds_one_blas_thread
def timedomain(content, styles, *, style_weights=None, alpha=1e-2, iterations=300, n_filters=4096, width=3,
               frame=2048, hop=256, optimizer="lbfgs", init="noise", learning_rate=1e-3, tolerance=1e-3,
               tolerance_window=20, temporal_weight=0.0, spectral_weight=0.0, seed=0, device="auto", callback=None):
    """Waveforms with the content of ``content`` and the style of ``styles`` (Mital 2017).

    Parameters
    ----------
    content : np.ndarray, shape (B, n)
        One waveform per channel, at the working rate.
    styles : list of np.ndarray, each shape (n_i,)
        Style waveforms (mono), at the working rate; each at least one frame long.
    style_weights, alpha, iterations, n_filters, tolerance, tolerance_window, seed, callback
        As in :func:`nstaudio.optimize`.
    temporal_weight, spectral_weight : float
        Verma and Smith's envelope terms, as in :func:`nstaudio.optimize`, on the log1p
        magnitudes of the frames.
    width : int
        Conv width in frames (the kernel's height spans the 3 components).
    frame, hop : int
        Analysis frame and hop in samples (2048 and 256 at 22.05 kHz in the paper); hop <= frame / 2.
    optimizer : {"lbfgs", "adam"}
        SciPy's L-BFGS-B (unbounded: the samples may take any value) or Adam.
    init : {"noise", "content"}
    learning_rate : float
        Adam's step size (in sample units).
    device : {"auto", "numpy", "cpu", "cuda"}
        Backend of the conv layer.

    Returns
    -------
    y : np.ndarray, shape (B, n), float32
        The optimized waveforms, soft-limited below full scale.
    info : dict
        As :func:`nstaudio.optimize`'s.
    """
    content = np.asarray(content, dtype=np.float32)
    check_int("iterations", iterations, minimum=0)
    n_filters = check_int("n_filters", n_filters, minimum=1)
    width = check_int("width", width, minimum=1)
    frame = check_int("frame", frame, minimum=4, maximum=2**16)
    # Beyond half a frame, a Hann window leaves samples with no weight: they would never change.
    hop = check_int("hop", hop, minimum=1, maximum=frame // 2)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_choice("init", init, INITS)
    backend = get_backend(device)
    for i, s in enumerate(styles):
        if len(s) < frame:
            raise ParameterError(f"style {i + 1} has {len(s)} samples, fewer than one {frame}-sample frame")
    rng = np.random.default_rng(seed)
    W = random_filters(n_filters, 3 * (frame // 2 + 1), width, seed=rng.integers(2**63))
    objective = TimeDomainObjective(backend, W, content, styles, frame=frame, hop=hop, style_weights=style_weights,
                                    alpha=alpha, temporal_weight=temporal_weight, spectral_weight=spectral_weight)
    if objective.framing.frames < width:
        raise ParameterError(f"content gives {objective.framing.frames} frames, fewer than the width {width}")
    del W
    rms = float(np.sqrt(np.mean(content.astype(np.float64) ** 2)))
    y0 = content.copy() if init == "content" else (rng.standard_normal(content.shape) * 1e-3 * rms).astype(np.float32)
    initial_loss, _ = objective(y0)
    initial_style = objective.last_parts["style"]
    stopping = dict(tolerance=tolerance, tolerance_window=tolerance_window, callback=callback)
    if optimizer == "lbfgs":
        y, info = optimizers.lbfgs(objective, y0, iterations=iterations, lower=None, **stopping)
    else:
        y, info = optimizers.adam(objective, y0, iterations=iterations, learning_rate=learning_rate, lower=None,
                                  **stopping)
    final_loss, _ = objective(y)
    info.update(loss=final_loss, content_loss=objective.last_parts["content"],
                style_loss=objective.last_parts["style"], initial_loss=initial_loss,
                initial_style_loss=initial_style, backend=backend.name, gram_form=objective.conv.gram_form)
    return soft_limit(np.asarray(y, dtype=np.float32)), info


def _validate(options):
    if options["hop_length"] > options["n_fft"] // 2:
        raise ParameterError(f"hop_length must be <= n_fft/2 = {options['n_fft'] // 2} for timedomain (beyond that "
                             f"the Hann window leaves samples no weight), got {options['hop_length']}")
    check_segments(options, options["sr_work"], options["n_fft"] + (options["width"] - 1) * options["hop_length"])


def _run(content, styles, options, model, callback):
    def one(segment, report):
        return timedomain(segment, styles, style_weights=options["style_weights"], alpha=options["alpha"],
                          iterations=options["iterations"], n_filters=options["n_filters"], width=options["width"],
                          frame=options["n_fft"], hop=options["hop_length"], optimizer=options["optimizer"],
                          init=options["init"], learning_rate=options["learning_rate"],
                          tolerance=options["tolerance"], tolerance_window=options["tolerance_window"],
                          temporal_weight=options["temporal_weight"], spectral_weight=options["spectral_weight"],
                          seed=options["seed"], device=options["device"], callback=report)

    # segments in samples, crossfaded in the waveform
    return run_in_segments(one, content, spans(options, content.shape[-1], options["sr_work"]),
                           options["iterations"], callback)


METHOD = Method(
    name="timedomain",
    summary="Mital: optimize the waveform itself through framing, DFT and one random conv; no phase step",
    needs="style", input="waveform", output="waveform",
    # width 3 costs an evaluation about what optimize's width 11 does; alpha 1 keeps the onsets;
    # learning_rate in sample units (docs/decisions.md, "timedomain: width 3, alpha 1, SciPy's L-BFGS-B,
    # envelopes off").
    settings=optimization_settings(
        alpha=1.0, n_filters=4096, width=3, optimizers=OPTIMIZERS, optimizer="lbfgs", learning_rate=1e-3,
        tolerance=1e-3, tolerance_window=20, inits=INITS, init_help="Start from noise or from the content."),
    hop_divisor=8, steps=lambda options, length: optimization_steps(options, length, options["sr_work"]),
    run=_run, validate=_validate, min_frames=lambda options: options["width"],
    style_settings=("width",),  # the styles were checked long enough for this width
    memory=lambda options, channels, frames, style_frames: conv_memory(
        options, channels, segment_length(options, frames, frames_per_second(options)), style_frames,
        3 * (options["n_fft"] // 2 + 1)),
)
