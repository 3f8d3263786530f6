"""The `optimize` method's objective with its analytic gradient.

For content spectrogram channels X_b (C, T), b = 1..B, and style spectrograms Xs_i:

    F(X) = relu(conv1d(X, W))                          (N, T'), T' = T - K + 1
    L(X) = sum_b alpha ||F(X_b) - F(Xc_b)||^2 + ||F(X_b) F(X_b)^T / T' - G_s||^2
           + delta ||t(X_b) - t(Xc_b)||^2 + gamma ||s(X_b) - s_s||^2
    G_s  = sum_i w_i F(Xs_i) F(Xs_i)^T / Ts_i'        (weights normalised to sum 1)

The last two are Verma & Smith's (2018) energy envelopes, which keep the dynamics: the
temporal envelope t(X) = mean over bins (T,) matched to the content's, and the spectral
envelope s(X) = mean over frames (C,) matched to the styles' s_s = sum_i w_i s(Xs_i). Their
gradients are 2 delta (t - t_c) / C on every bin of a frame and 2 gamma (s - s_s) / T on
every frame of a bin.

The style term is evaluated in whichever exact form is cheaper (DESIGN.md): the
N x N Gram form costs ~3 N^2 T' per channel, the kernel form ~3 N T'^2 + 4 N T' Ts.
"""

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError
from .validation import check_choice, check_float

GRAM_FORMS = ("auto", "nxn", "kernel")


def choose_gram_form(n_filters, t_content, t_style):
    """``"kernel"`` if the time x time form is cheaper than the N x N form, else ``"nxn"``.

    Parameters
    ----------
    n_filters : int
        N.
    t_content : int
        T', content feature frames.
    t_style : int
        Total style feature frames (all style files).
    """
    kernel_cost = 3 * t_content + 4 * t_style  # / (N T')
    nxn_cost = 3 * n_filters  # / (N T')
    return "kernel" if kernel_cost < nxn_cost else "nxn"


@dataclass(frozen=True)
class StyleTargets:
    """What the style terms need of the style recordings under one set of filters.

    Computed once by :func:`style_targets` and read, never written, by every objective
    that uses it, so one instance may serve many runs and threads at once.

    Attributes
    ----------
    features : np.ndarray, shape (N, sum_i Ts_i')
        Each style's features relu(conv1d(Xs_i, W)), scaled by sqrt(w_i / Ts_i') and
        concatenated over time, so that ``features @ features.T`` is the target Gram G_s.
    spectral_envelope : np.ndarray, shape (C,)
        sum_i w_i s(Xs_i): the target of Verma & Smith's spectral-envelope term.
    """

    features: np.ndarray
    spectral_envelope: np.ndarray


def style_targets(backend, W, styles, *, style_weights=None, dtype=np.float32):
    """The :class:`StyleTargets` of ``styles`` under the filters ``W``.

    The features come from the direct convolution (no fast FIR split, whose choice follows
    a content's length), so the targets are the same whatever content they later serve.

    Parameters
    ----------
    backend : module
    W : np.ndarray, shape (N, C, K)
    styles : list of np.ndarray, each shape (C, Ts_i), Ts_i >= K
    style_weights : sequence of float or None
        Relative weights (normalised to sum 1); None weighs the styles equally.
    dtype : numpy dtype

    Returns
    -------
    StyleTargets
        Host (numpy) arrays of ``dtype``.
    """
    dtype = np.dtype(dtype)
    N, C, K = W.shape
    weights = normalised_weights(style_weights, len(styles))
    direct = backend.prepare_weights(backend.asarray(W, dtype))
    scaled, envelope = [], np.zeros(C, dtype=np.float64)
    for Xs, w in zip(styles, weights):
        if Xs.shape[0] != C or Xs.shape[1] < K:
            raise ParameterError(f"style spectrogram of shape {Xs.shape} needs {C} bins and >= {K} frames")
        S, _ = backend.relu_content(backend.conv1d(backend.asarray(Xs, dtype), direct), None)
        scaled.append(backend.to_numpy(S * dtype.type(np.sqrt(w / S.shape[1]))))
        envelope += w * np.mean(np.asarray(Xs, dtype=np.float64), axis=1)
    return StyleTargets(features=np.concatenate(scaled, axis=1), spectral_envelope=envelope.astype(dtype))


# Channels are convolved joined end to end while all of them together stay this short: the
# leaf GEMMs of short inputs are narrow, and joining amortises each weight leaf over more
# columns; past this, the leaves are wide already and joining would only grow its buffers
# (the joined convolution and its gradient, (N, B T): 64 MB each at this length with 4096
# filters; the fast FIR split's products, ~117 MB instead of ~58 MB per channel).
JOIN_FRAMES = 4096


class StyleTransferObjective:
    """Value and gradient of the content + Gram style loss over a batch of channels.

    Parameters
    ----------
    backend : module
        From :func:`nstaudio.kernels.get_backend`.
    W : np.ndarray, shape (N, C, K)
        Conv filters.
    content : np.ndarray, shape (B, C, T) or None
        Content log-magnitude spectrograms, one per channel; None for style only
        (then ``shape`` must be given).
    styles : list of np.ndarray, each shape (C, Ts_i), or StyleTargets
        Style log-magnitude spectrograms, or what :func:`style_targets` made of them with
        these filters (computed once for many objectives).
    style_weights : sequence of float or None
        Relative weights of the styles (normalised to sum 1); None weighs them equally.
        Not used with StyleTargets, which carry theirs.
    alpha : float
        Content weight; 0 is style only.
    gram_form : {"auto", "nxn", "kernel"}
    dtype : numpy dtype
        Precision of the hot loops (float32; float64 for gradient checks).
    shape : tuple or None
        (B, C, T) of the variable when ``content`` is None.
    temporal_weight : float
        delta: weight of the temporal-envelope term (needs ``content``).
    spectral_weight : float
        gamma: weight of the spectral-envelope term.
    """

    def __init__(self, backend, W, content, styles, *, style_weights=None, alpha=1e-2, gram_form="auto",
                 dtype=np.float32, shape=None, temporal_weight=0.0, spectral_weight=0.0):
        self.backend = backend
        self.dtype = np.dtype(dtype)
        self.alpha, self.temporal_weight, self.spectral_weight = checked_weights(
            alpha, temporal_weight, spectral_weight, has_content=content is not None)
        check_choice("gram_form", gram_form, GRAM_FORMS)
        N, C, K = W.shape
        self.shape = tuple(content.shape) if content is not None else tuple(shape)
        if self.shape[1] != C:
            raise ParameterError(f"content has {self.shape[1]} bins, the filters expect {C}")
        if self.shape[2] < K:
            raise ParameterError(f"content has {self.shape[2]} frames, fewer than the filter width {K}")
        B, T = self.shape[0], self.shape[2]
        # Short channels are convolved joined end to end, as one signal (see __call__).
        self.joined = B > 1 and B * T <= JOIN_FRAMES
        # Laid out for the length every evaluation convolves (the cpu backend picks its fast
        # FIR splits from it).
        self.W = backend.prepare_weights(backend.asarray(W, self.dtype), frames=B * T if self.joined else T)
        self.t_out = T - K + 1

        if not isinstance(styles, StyleTargets):
            styles = style_targets(backend, W, styles, style_weights=style_weights, dtype=self.dtype)
        elif styles.features.shape[0] != N or styles.spectral_envelope.shape[0] != C:
            raise ParameterError(f"style targets of {styles.features.shape[0]} filters and "
                                 f"{styles.spectral_envelope.shape[0]} bins for filters of shape {W.shape}")
        S_hat = backend.asarray(styles.features, self.dtype)
        if gram_form == "auto":
            gram_form = choose_gram_form(N, self.t_out, S_hat.shape[1])
        self.gram_form = gram_form
        if gram_form == "nxn":
            self.G_s = backend.gram(S_hat)
        else:
            self.S_hat = S_hat
            # ||S S^T||^2 == ||S^T S||^2: take the smaller product.
            small = backend.gram(S_hat.T if S_hat.shape[1] < N else S_hat)
            self.target_sq = float(np.sum(backend.to_numpy(small).astype(np.float64) ** 2))

        self.content_features = None
        if content is not None and self.alpha > 0:
            self.content_features = [
                backend.relu_content(backend.conv1d(backend.asarray(Xc, self.dtype), self.W), None)[0]
                for Xc in content
            ]
        xp = backend.xp
        self.temporal_targets, self.spectral_target = envelope_targets(
            backend, content, styles.spectral_envelope, temporal_weight=self.temporal_weight,
            spectral_weight=self.spectral_weight, dtype=self.dtype)
        self.last_parts = {"content": np.nan, "style": np.nan, "temporal": 0.0, "spectral": 0.0}
        # Feature and feature-gradient buffers, reused by every evaluation and channel.
        self._F = backend.xp.empty((N, self.t_out), dtype=self.dtype)
        self._dF = backend.xp.empty((N, self.t_out), dtype=self.dtype)
        if self.joined:
            # The joined channels, their convolution and its gradient: the K - 1 outputs that
            # straddle two channels are never used, so their gradient stays zero.
            self._X_joined = xp.empty((C, B * T), dtype=self.dtype)
            self._Y_joined = xp.empty((N, B * T - K + 1), dtype=self.dtype)
            self._dY_joined = xp.zeros((N, B * T - K + 1), dtype=self.dtype)
            self._dX_joined = xp.empty((C, B * T), dtype=self.dtype)

    def features(self, X):
        """F = relu(conv1d(X, W)) for one channel X (C, T) -> (N, T')."""
        F, _ = self.backend.relu_content(self.backend.conv1d(self.backend.asarray(X, self.dtype), self.W), None)
        return F

    def style_loss(self, F, out=None):
        """``(value, dF)`` of the Gram style term for features F (N, T'); dF written into ``out`` if given."""
        if self.gram_form == "nxn":
            return self.backend.style_loss_nxn(F, self.G_s, out=out)
        return self.backend.style_loss_kernel(F, self.S_hat, self.target_sq, out=out)

    def __call__(self, X):
        """Loss and gradient.

        Parameters
        ----------
        X : array, shape (B, C, T)

        Returns
        -------
        loss : float
        grad : array, shape (B, C, T), on the backend, of the objective's dtype
        """
        be = self.backend
        X = be.asarray(X, self.dtype)
        grad = be.xp.empty_like(X)
        B, T = X.shape[0], X.shape[2]
        content_total = style_total = 0.0
        if self.joined:
            # One convolution of all channels end to end: each leaf GEMM of the fast FIR split
            # gets B times the columns for the same weights (measured on 2 cores: two 6 s
            # channels 276 ms instead of 426 ms for the convolution and its adjoint).
            self._X_joined.reshape(X.shape[1], B, T)[...] = X.transpose(1, 0, 2)
            Y = be.conv1d(self._X_joined, self.W, out=self._Y_joined)
        for b in range(B):
            Fc = None if self.content_features is None else self.content_features[b]
            if self.joined:
                self._F[...] = Y[:, b * T:b * T + self.t_out]
                F_pre = self._F
            else:
                F_pre = be.conv1d(X[b], self.W, out=self._F)
            F, content_sq = be.relu_content(F_pre, Fc)
            style_value, dF = self.style_loss(F, out=self._dF)
            dF_pre = be.relu_content_backward(F, Fc, dF, self.alpha)
            if self.joined:
                self._dY_joined[:, b * T:b * T + self.t_out] = dF_pre
            else:
                be.conv1d_adjoint(dF_pre, self.W, T, out=grad[b])
            content_total += self.alpha * content_sq
            style_total += style_value
        if self.joined:
            dX = be.conv1d_adjoint(self._dY_joined, self.W, B * T, out=self._dX_joined)
            grad[...] = dX.reshape(X.shape[1], B, T).transpose(1, 0, 2)
        temporal_total, spectral_total = self._envelopes(X, grad)
        self.last_parts = {"content": content_total, "style": style_total, "temporal": temporal_total,
                           "spectral": spectral_total}
        return content_total + style_total + temporal_total + spectral_total, grad

    def _envelopes(self, X, grad):
        """The two envelope terms of X (B, C, T); their gradients are added into ``grad``."""
        return envelope_terms(self.backend.xp, X, grad, temporal_weight=self.temporal_weight,
                              temporal_targets=self.temporal_targets,
                              spectral_weight=self.spectral_weight,
                              spectral_target=self.spectral_target)


def checked_weights(alpha, temporal_weight, spectral_weight, *, has_content):
    """The three weights as floats >= 0 (ParameterError otherwise, or for a temporal term without content)."""
    alpha = check_float("alpha", alpha, minimum=0.0)
    temporal_weight = check_float("temporal_weight", temporal_weight, minimum=0.0)
    spectral_weight = check_float("spectral_weight", spectral_weight, minimum=0.0)
    if temporal_weight > 0 and not has_content:
        raise ParameterError("temporal_weight needs the content: its temporal envelope is the target")
    return alpha, temporal_weight, spectral_weight


def envelope_targets(backend, content, spectral_envelope, *, temporal_weight, spectral_weight, dtype):
    """The targets of Verma and Smith's envelope terms, where weighted (None where not).

    Returns
    -------
    temporal_targets : list of arrays, each shape (T,), one per content channel (B, C, T), or None
    spectral_target : array, shape (C,), or None
    """
    temporal = spectral = None
    if temporal_weight > 0:
        temporal = [backend.xp.mean(backend.asarray(Xc, dtype), axis=0) for Xc in content]
    if spectral_weight > 0:
        spectral = backend.asarray(spectral_envelope, dtype)
    return temporal, spectral


def envelope_terms(xp, X, grad, *, temporal_weight, temporal_targets, spectral_weight, spectral_target):
    """Verma and Smith's envelope terms of spectrograms X, their gradients added into ``grad``.

    ``temporal_weight * sum_t (mean_f X[b, f, t] - temporal_targets[b][t])^2`` (each frame's mean
    over bins kept to the content's) plus ``spectral_weight * sum_f (mean_t X[b, f, t] -
    spectral_target[f])^2`` (each bin's mean over time brought to the style's), summed over b.

    Parameters
    ----------
    xp : module
        numpy or cupy, the arrays'.
    X, grad : arrays, shape (B, C, T)
    temporal_targets : sequence of arrays, each shape (T,), or None where ``temporal_weight`` is 0
    spectral_target : array, shape (C,), or None where ``spectral_weight`` is 0

    Returns
    -------
    temporal, spectral : float
    """
    dtype, C, T = X.dtype, X.shape[1], X.shape[2]
    temporal = spectral = 0.0
    for b in range(X.shape[0]):
        if temporal_weight > 0:
            residual = xp.mean(X[b], axis=0) - temporal_targets[b]  # (T,)
            temporal += temporal_weight * float(xp.sum(residual.astype(np.float64) ** 2))
            grad[b] += (dtype.type(2 * temporal_weight / C) * residual)[None, :]
        if spectral_weight > 0:
            residual = xp.mean(X[b], axis=1) - spectral_target  # (C,)
            spectral += spectral_weight * float(xp.sum(residual.astype(np.float64) ** 2))
            grad[b] += (dtype.type(2 * spectral_weight / T) * residual)[:, None]
    return temporal, spectral


def normalised_weights(weights, n):
    """Style weights as floats summing to 1 (ParameterError for a wrong count, negative, non-finite or all-zero)."""
    if n == 0:
        raise ParameterError("at least one style is needed")
    if weights is None:
        return [1.0 / n] * n
    if isinstance(weights, (str, bytes)) or not hasattr(weights, "__len__"):
        raise ParameterError(f"style_weights must be a sequence of numbers, got {weights!r}")
    weights = [check_float("style_weights", w, minimum=0.0) for w in weights]
    if len(weights) != n:
        raise ParameterError(f"style_weights has {len(weights)} values for {n} styles")
    largest = max(weights)
    if largest <= 0:
        raise ParameterError(f"style_weights must not all be zero, got {weights}")
    weights = [w / largest for w in weights]  # first, so that huge weights cannot overflow the sum
    total = sum(weights)
    return [w / total for w in weights]
