"""The reference backend: plain numpy, written to be obviously correct, not fast.

Every other backend is tested against these functions. Shapes: X is (C, T)
(frequency bins as channels), W is (N, C, K), features are (N, T') with
T' = T - K + 1.
"""

import numpy as np

name = "numpy"
xp = np


def asarray(x, dtype):
    """Move ``x`` to this backend as a contiguous array of ``dtype``."""
    return np.ascontiguousarray(x, dtype=dtype)


def to_numpy(x):
    """Return ``x`` as a numpy array."""
    return np.asarray(x)


def prepare_weights(W):
    """Backend-specific layout of the filters W (N, C, K); the reference keeps them as they are."""
    return W


def conv1d(X, W):
    """Valid 1-D convolution (cross-correlation) over time.

    Parameters
    ----------
    X : array, shape (C, T)
    W : array, shape (N, C, K), as returned by :func:`prepare_weights`

    Returns
    -------
    array, shape (N, T - K + 1)
    """
    K = W.shape[2]
    T_out = X.shape[1] - K + 1
    return sum(W[:, :, k] @ X[:, k:k + T_out] for k in range(K))


def conv1d_adjoint(dY, W, T):
    """Adjoint of :func:`conv1d` with respect to X: (N, T') -> (C, T)."""
    K = W.shape[2]
    T_out = dY.shape[1]
    dX = np.zeros((W.shape[1], T), dtype=dY.dtype)
    for k in range(K):
        dX[:, k:k + T_out] += W[:, :, k].T @ dY
    return dX


def relu_content(F_pre, Fc):
    """ReLU and the content residual.

    Parameters
    ----------
    F_pre : array, shape (N, T')
        Pre-activation features (not modified by this backend).
    Fc : array, shape (N, T') or None
        Content features; None means no content term.

    Returns
    -------
    F : array, shape (N, T')
        ``max(F_pre, 0)``.
    content_sq : float
        ``sum((F - Fc)**2)`` (0 when ``Fc`` is None), accumulated in float64.
    """
    F = np.maximum(F_pre, 0)
    if Fc is None:
        return F, 0.0
    return F, float(np.sum((F.astype(np.float64) - Fc) ** 2))


def relu_content_backward(F, Fc, dF_style, alpha):
    """Gradient with respect to the pre-activations.

    ``dF_pre = [F > 0] * (dF_style + 2 alpha (F - Fc))``.

    Returns
    -------
    array, shape (N, T')
    """
    dF = dF_style if Fc is None else dF_style + 2 * alpha * (F - Fc)
    return np.where(F > 0, dF, 0).astype(F.dtype)


def style_loss_nxn(F, G_s):
    """Gram style loss in the N x N form.

    ``L = ||F F^T / T' - G_s||^2``, ``dL/dF = 4 (F F^T / T' - G_s) F / T'``.

    Parameters
    ----------
    F : array, shape (N, T')
    G_s : array, shape (N, N)
        Target Gram matrix.

    Returns
    -------
    value : float
    dF : array, shape (N, T')
    """
    T_out = F.shape[1]
    D = F @ F.T / T_out - G_s
    return float(np.sum(D.astype(np.float64) ** 2)), (4.0 / T_out) * (D @ F)


def style_loss_kernel(F, S_hat, target_sq):
    """Gram style loss in the kernel (time x time) form; equal to :func:`style_loss_nxn`.

    With ``G_s = S_hat S_hat^T``:
    ``L = ||F^T F||^2 / T'^2 - 2 ||F^T S_hat||^2 / T' + ||G_s||^2``,
    ``dL/dF = 4 F (F^T F) / T'^2 - 4 S_hat (S_hat^T F) / T'``.

    Parameters
    ----------
    F : array, shape (N, T')
    S_hat : array, shape (N, Ts)
        Style features, each style's columns scaled by ``sqrt(weight / Ts_i')``.
    target_sq : float
        ``||G_s||^2``.

    Returns
    -------
    value : float
    dF : array, shape (N, T')
    """
    T_out = F.shape[1]
    A = F.T @ F
    B = F.T @ S_hat
    value = (np.sum(A.astype(np.float64) ** 2) / T_out**2
             - 2 * np.sum(B.astype(np.float64) ** 2) / T_out + target_sq)
    dF = (4.0 / T_out**2) * (F @ A) - (4.0 / T_out) * (S_hat @ B.T)
    return float(value), dF
