"""`optimize`'s objective in the limit of infinitely many random filters, from frame inner products.

The random layer's filters are Gaussian over the C K values of a patch of K frames,
w ~ N(0, sigma^2 I) (:func:`nstaudio.features.random_filters`' scale), and each feature is
relu(w . p_t). For two patches p and q the features' inner product over N filters has the
expectation (Cho & Saul 2009: the order-1 arc-cosine kernel)

    E[f(p) . f(q)] = c kappa(p, q),   c = N sigma^2,
    kappa(p, q) = (|p| |q| sin(theta) + (pi - theta) p . q) / (2 pi),   theta = angle(p, q),

so the objective of :class:`nstaudio.objective.StyleTransferObjective` becomes

    content: alpha c sum_t [|p_t|^2 / 2 - 2 kappa(p_t, pc_t) + |pc_t|^2 / 2]     (its expectation)
    style:   c^2 [sum_{t,u} kappa(p_t, p_u)^2 / T'^2
                  - 2 sum_i w_i sum_{t,u} kappa(p_t, s_iu)^2 / (T' Ts_i')
                  + sum_{i,j} w_i w_j sum_{t,u} kappa(s_it, s_ju)^2 / (Ts_i' Ts_j')]

The style term is the expectation up to the variance of N draws, a relative ~6 / N (0.15 %
at 4096 filters). What remains of the random layer is its scale c, set by ``n_filters`` and
``width`` as for the random layer, so ``alpha`` weighs the same terms.

Patch inner products are band sums of frame inner products, p_t . q_u = sum_k (X^T Y)[t+k, u+k],
so an evaluation is four GEMMs of C x T x T (or T x Ts) and no convolution: ~1.5 GFLOP for
10 s at 1025 bins, against ~120 for 4096 filters. The cost and memory grow as T^2 (the
random layer's as T), which :func:`memory` says before a run.
"""

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError
from .kernels.numpy_backend import arccos_terms
from .objective import checked_weights, envelope_targets, envelope_terms, normalised_weights


def feature_scale(n_filters, bins, width):
    """c = N sigma^2: the expected feature inner product per unit of kappa.

    ``sigma^2 = 4 / ((bins + n_filters) width)`` is :func:`nstaudio.features.random_filters`' variance.
    """
    return 4.0 * n_filters / ((bins + n_filters) * width)


def band_sum(xp, M, width, rows, cols):
    """Patch inner products from frame inner products: ``P[t, u] = sum_k M[t + k, u + k]``.

    Parameters
    ----------
    M : array, shape (rows + width - 1, cols + width - 1)
        ``X^T Y`` for spectrograms X and Y.

    Returns
    -------
    P : array, shape (rows, cols)
    """
    P = xp.array(M[:rows, :cols])
    for k in range(1, width):
        P += M[k:k + rows, k:k + cols]
    return P


def band_adjoint(xp, G, width):
    """The adjoint of :func:`band_sum`: ``R[t + k, u + k] += G[t, u]`` for every k.

    Parameters
    ----------
    G : array, shape (rows, cols)

    Returns
    -------
    R : array, shape (rows + width - 1, cols + width - 1)
    """
    rows, cols = G.shape
    R = xp.zeros((rows + width - 1, cols + width - 1), dtype=G.dtype)
    for k in range(width):
        R[k:k + rows, k:k + cols] += G
    return R


def patch_norms(xp, X, width):
    """|p_t|^2 for the patches of K frames of X (C, T) -> (T - K + 1,)."""
    return _frame_sums(xp, xp.sum(X * X, axis=0), width)


def _frame_sums(xp, values, width):
    """``out[t] = sum_k values[t + k]`` (T,) -> (T - K + 1,)."""
    cumulative = xp.concatenate([xp.zeros(1, dtype=np.float64), xp.cumsum(values.astype(np.float64))])
    return (cumulative[width:] - cumulative[:-width]).astype(values.dtype)


def _frame_spread(xp, values, width):
    """The adjoint of :func:`_frame_sums`: ``out[t + k] += values[t]`` (T',) -> (T' + K - 1,)."""
    out = xp.zeros(values.shape[0] + width - 1, dtype=values.dtype)
    for k in range(width):
        out[k:k + values.shape[0]] += values
    return out


@dataclass(frozen=True)
class ExpectedStyleTargets:
    """What the expected style term needs of the style recordings: computed once, only read.

    Attributes
    ----------
    spectrograms : tuple of np.ndarray, each shape (C, Ts_i)
    norms : tuple of np.ndarray, each shape (Ts_i - K + 1,)
        The styles' patch norms |s_iu|^2.
    weights : tuple of float
        Normalised to sum 1.
    target_sq : float
        sum_{i,j} w_i w_j sum kappa(s_it, s_ju)^2 / (Ts_i' Ts_j') (without c^2).
    spectral_envelope : np.ndarray, shape (C,)
        sum_i w_i mean over frames of the styles (Verma & Smith's spectral-envelope target).
    width : int
        K, the patch length they were computed for.
    """

    spectrograms: tuple
    norms: tuple
    weights: tuple
    target_sq: float
    spectral_envelope: np.ndarray
    width: int


def expected_style_targets(backend, styles, *, width, style_weights=None, dtype=np.float32):
    """The :class:`ExpectedStyleTargets` of style spectrograms ``styles`` (each (C, Ts_i), Ts_i >= width).

    The style-to-style sum costs Ts^2 C once; it makes the loss read 0 at a perfect match.
    """
    dtype = np.dtype(dtype)
    weights = normalised_weights(style_weights, len(styles))
    bins = styles[0].shape[0]
    host = []
    for Xs in styles:
        if Xs.ndim != 2 or Xs.shape[0] != bins or Xs.shape[1] < width:
            raise ParameterError(f"style spectrogram of shape {Xs.shape} needs {bins} bins and >= {width} frames")
        host.append(np.ascontiguousarray(Xs, dtype=dtype))
    xp = backend.xp
    device = [backend.asarray(Xs, dtype) for Xs in host]
    norms = [patch_norms(xp, Xs, width) for Xs in device]
    target_sq = 0.0
    for i, (Xi, ni) in enumerate(zip(device, norms)):
        for j, (Xj, nj) in enumerate(zip(device, norms)):
            inner = band_sum(xp, backend.matmul(Xi.T, Xj), width, ni.shape[0], nj.shape[0])
            kappa, _, _ = backend.arccos_kernel(inner, ni, nj)
            target_sq += weights[i] * weights[j] * backend.sum_squares(kappa) / (ni.shape[0] * nj.shape[0])
    envelope = sum(w * np.mean(Xs.astype(np.float64), axis=1) for w, Xs in zip(weights, host))
    return ExpectedStyleTargets(spectrograms=tuple(host), norms=tuple(backend.to_numpy(n) for n in norms),
                                weights=tuple(weights), target_sq=float(target_sq),
                                spectral_envelope=envelope.astype(dtype), width=width)


def memory(channels, frames, style_frames, bins):
    """Bytes an evaluation holds at least (float32): ~8 frames x frames matrices, the
    frames x style-frames cross terms and the spectrograms."""
    return 4 * (8 * frames * frames + 4 * frames * style_frames + 2 * bins * (channels * frames + style_frames))


class ExpectedStyleTransferObjective:
    """Value and gradient of the content + Gram style loss, in expectation over the random filters.

    Parameters
    ----------
    backend : module
        From :func:`nstaudio.kernels.get_backend`.
    content : np.ndarray, shape (B, C, T), or None
        Content log-magnitude spectrograms; None for style only (then ``shape`` is needed).
    targets : ExpectedStyleTargets
    n_filters : int
        N of the random layer whose expectation this is (sets the scale c with ``targets.width``).
    alpha : float
        Content weight; 0 is style only.
    dtype : numpy dtype
        float32; float64 for gradient checks.
    shape : tuple or None
        (B, C, T) when ``content`` is None.
    temporal_weight, spectral_weight : float
        Verma & Smith's envelope terms, as in :class:`nstaudio.objective.StyleTransferObjective`.
    """

    gram_form = "expected"

    def __init__(self, backend, content, targets, *, n_filters, alpha=1e-2, dtype=np.float32, shape=None,
                 temporal_weight=0.0, spectral_weight=0.0):
        self.backend = backend
        self.dtype = np.dtype(dtype)
        self.alpha, self.temporal_weight, self.spectral_weight = checked_weights(
            alpha, temporal_weight, spectral_weight, has_content=content is not None)
        self.shape = tuple(content.shape) if content is not None else tuple(shape)
        bins = targets.spectrograms[0].shape[0]
        self.width = K = targets.width
        if self.shape[1] != bins:
            raise ParameterError(f"content has {self.shape[1]} bins, the style targets {bins}")
        if self.shape[2] < K:
            raise ParameterError(f"content has {self.shape[2]} frames, fewer than the filter width {K}")
        self.scale = feature_scale(n_filters, bins, K)
        xp = backend.xp
        self.styles = [backend.asarray(Xs, self.dtype) for Xs in targets.spectrograms]
        self.style_norms = [backend.asarray(n, self.dtype) for n in targets.norms]
        self.style_weights = targets.weights
        self.target_sq = targets.target_sq
        self.content = self.content_norms = None
        if content is not None and self.alpha > 0:
            self.content = [backend.asarray(Xc, self.dtype) for Xc in content]
            self.content_norms = [patch_norms(xp, Xc, K) for Xc in self.content]
        self.temporal_targets, self.spectral_target = envelope_targets(
            backend, content, targets.spectral_envelope, temporal_weight=self.temporal_weight,
            spectral_weight=self.spectral_weight, dtype=self.dtype)
        self.last_parts = {"content": np.nan, "style": np.nan, "temporal": 0.0, "spectral": 0.0}

    def __call__(self, X):
        """``(loss, grad)`` at X (B, C, T), as :meth:`StyleTransferObjective.__call__
        <nstaudio.objective.StyleTransferObjective.__call__>`; ``last_parts`` holds the four terms."""
        be = self.backend
        X = be.asarray(X, self.dtype)
        grad = be.xp.empty_like(X)
        content_total = style_total = 0.0
        for b in range(X.shape[0]):
            content_value, style_value = self._channel(X[b], b, grad[b])
            content_total += content_value
            style_total += style_value
        temporal, spectral = envelope_terms(be.xp, X, grad, temporal_weight=self.temporal_weight,
                                            temporal_targets=self.temporal_targets,
                                            spectral_weight=self.spectral_weight,
                                            spectral_target=self.spectral_target)
        self.last_parts = {"content": content_total, "style": style_total, "temporal": temporal,
                           "spectral": spectral}
        return content_total + style_total + temporal + spectral, grad

    def _channel(self, X, b, grad):
        """Content and style values of one channel X (C, T); its gradient written into ``grad``."""
        be, xp, K, dtype = self.backend, self.backend.xp, self.width, self.dtype
        c2 = self.scale ** 2
        T_out = X.shape[1] - K + 1
        # Style, output against output: P = patch inner products, its diagonal the patch norms.
        P = band_sum(xp, be.gram(X.T), K, T_out, T_out)
        a2 = xp.array(xp.diagonal(P))
        kappa, d_u, d_a2 = be.arccos_kernel(P, a2, a2)
        style = be.sum_squares(kappa) / T_out ** 2
        kappa *= dtype.type(2 * c2 / T_out ** 2)  # now dL/dkappa
        # kappa(p_t, p_u) is symmetric: the norm a2_t enters as the first argument of row t and
        # the second of column t, hence twice the row sums.
        grad_a2 = 2 * xp.sum(kappa * d_a2, axis=1)
        G_P = kappa * d_u
        del P, d_a2, d_u
        # Style, output against each style recording.
        style_grads = []
        for S, norms, weight in zip(self.styles, self.style_norms, self.style_weights):
            T_style = norms.shape[0]
            cross, d_u, d_a2 = be.arccos_kernel(band_sum(xp, be.matmul(X.T, S), K, T_out, T_style), a2, norms)
            style -= 2 * weight * be.sum_squares(cross) / (T_out * T_style)
            cross *= dtype.type(-4 * weight * c2 / (T_out * T_style))
            grad_a2 += xp.sum(cross * d_a2, axis=1)
            cross *= d_u
            style_grads.append((S, cross))
        style = c2 * (style + self.target_sq)
        content = 0.0
        spread = None
        if self.content is not None:
            Xc, norms = self.content[b], self.content_norms[b]
            u = _frame_sums(xp, xp.sum(X * Xc, axis=0), K)
            # Pairs matched one to one (T'): few, so the reference's xp form.
            kappa_c, d_uc, d_a2c = arccos_terms(xp, u, a2, norms)
            weight = self.alpha * self.scale
            content = weight * float(xp.sum(a2.astype(np.float64) / 2 - 2 * kappa_c + norms.astype(np.float64) / 2))
            grad_a2 += (weight * (0.5 - 2 * d_a2c)).astype(dtype)
            spread = _frame_spread(xp, (-2 * weight * d_uc).astype(dtype), K)
        # Back to X: dL/dP (with the norms on its diagonal) through the band sums of X^T X and X^T S.
        diagonal = xp.arange(T_out)
        G_P[diagonal, diagonal] += grad_a2
        G_P += G_P.T.copy()
        be.matmul(X, band_adjoint(xp, G_P, K), out=grad)
        for S, G_Q in style_grads:
            grad += be.matmul(S, band_adjoint(xp, G_Q, K).T)
        if spread is not None:
            grad += Xc * spread[None, :]
        return content, style
