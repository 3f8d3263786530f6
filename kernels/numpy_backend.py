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


def prepare_weights(W, frames=None):
    """Backend-specific layout of the filters W (N, C, K); the reference keeps them as they are.

    ``frames`` (the input length the convolution will mostly see) lets a backend pick its
    layout; the reference always runs the direct form.
    """
    return W


def _into(out, result):
    """Copy ``result`` into ``out`` when the caller gave one, as the fast backends write in place."""
    if out is None:
        return result
    out[...] = result
    return out


def matmul(a, b, out=None):
    """``a @ b`` for 2-D arrays (into ``out`` if given): numpy's BLAS call, as it is.

    Bit for bit the same on any number of threads where BLAS runs on one, as nstaudio's
    compute entries hold it (``nstaudio.kernels.blas_threads``).
    """
    return np.matmul(a, b, out=out)


def gram(a, out=None):
    """``a @ a.T`` for a 2-D array (into ``out`` if given)."""
    return np.matmul(a, a.T, out=out)


def conv1d(X, W, out=None):
    """Valid 1-D convolution (cross-correlation) over time.

    Parameters
    ----------
    X : array, shape (C, T)
    W : array, shape (N, C, K), as returned by :func:`prepare_weights`
    out : array, shape (N, T - K + 1), optional
        Where to write the result.

    Returns
    -------
    array, shape (N, T - K + 1)
    """
    K = W.shape[2]
    T_out = X.shape[1] - K + 1
    return _into(out, sum(W[:, :, k] @ X[:, k:k + T_out] for k in range(K)))


def conv1d_adjoint(dY, W, T, out=None):
    """Adjoint of :func:`conv1d` with respect to X: (N, T') -> (C, T), written into ``out`` if given."""
    K = W.shape[2]
    T_out = dY.shape[1]
    dX = np.zeros((W.shape[1], T), dtype=dY.dtype)
    for k in range(K):
        dX[:, k:k + T_out] += W[:, :, k].T @ dY
    return _into(out, dX)


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


def style_loss_nxn(F, G_s, out=None):
    """Gram style loss in the N x N form.

    ``L = ||F F^T / T' - G_s||^2``, ``dL/dF = 4 (F F^T / T' - G_s) F / T'``.

    Parameters
    ----------
    F : array, shape (N, T')
    G_s : array, shape (N, N)
        Target Gram matrix.
    out : array, shape (N, T'), optional
        Where to write the gradient.

    Returns
    -------
    value : float
    dF : array, shape (N, T')
    """
    T_out = F.shape[1]
    D = F @ F.T / T_out - G_s
    return float(np.sum(D.astype(np.float64) ** 2)), _into(out, (4.0 / T_out) * (D @ F))


def sum_squares(A):
    """``sum(A**2)`` in float64."""
    return float(np.sum(np.asarray(A, dtype=np.float64) ** 2))


def style_loss_kernel(F, S_hat, target_sq, out=None):
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
    out : array, shape (N, T'), optional
        Where to write the gradient.

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
    return float(value), _into(out, dF)


def arccos_kernel(U, a2, b2):
    """The order-1 arc-cosine kernel (Cho & Saul 2009) and its partial derivatives, element-wise.

    For patches p, q with ``U = p . q``, ``a2 = |p|^2``, ``b2 = |q|^2`` and theta their angle:
    ``kappa = (|p||q| sin(theta) + (pi - theta) p.q) / (2 pi)``, which is
    ``E[relu(w.p) relu(w.q)]`` for ``w ~ N(0, I)``;
    ``d kappa / d U = (pi - theta) / (2 pi)`` and ``d kappa / d a2 = |p||q| sin(theta) / (4 pi a2)``
    (both free of the 1/sin(theta) that differentiating each part alone would give).
    A zero patch gets kappa 0, d/dU 1/4 (theta taken as pi/2) and d/d a2 0.

    Parameters
    ----------
    U : array, shape (R, S)
    a2 : array, shape (R,)
    b2 : array, shape (S,)

    Returns
    -------
    kappa, d_u, d_a2 : arrays, shape (R, S), of U's dtype
    """
    return tuple(term.astype(U.dtype) for term in arccos_terms(np, U, a2[:, None], b2[None, :]))


def arccos_terms(xp, u, a2, b2):
    """:func:`arccos_kernel`'s three terms for arrays that broadcast together, in float64, on
    numpy or CuPy (``xp``): also the form for pairs matched one to one (the content term's)."""
    u, a2, b2 = (v.astype(np.float64) for v in (u, a2, b2))
    ab2 = a2 * b2
    s = xp.sqrt(xp.maximum(ab2 - u * u, 0.0))
    ab = xp.sqrt(ab2)
    rest = np.pi - xp.arccos(xp.clip(u / xp.where(ab > 0, ab, 1.0), -1.0, 1.0))
    d_a2 = xp.where(a2 > 0, s / (4 * np.pi * xp.where(a2 > 0, a2, 1.0)), 0.0)
    return (s + rest * u) / (2 * np.pi), rest / (2 * np.pi), d_a2


def griffin_lim(S, angles, *, window, hop_length, center, momentum, n_iter, callback=None):
    """Fast Griffin-Lim on one magnitude spectrogram, written plainly (the oracle).

    Parameters
    ----------
    S : np.ndarray, shape (bins, frames), float32
    angles : np.ndarray, shape (bins, frames), complex64, unit modulus
    window : np.ndarray, shape (n_fft,), float32
    hop_length : int
    center : bool
    momentum : float
    n_iter : int
    callback : callable or None
        ``callback(iteration, convergence_db)``.

    Returns
    -------
    y_padded : np.ndarray, shape (n_fft + hop * (frames - 1),), float32
        ISTFT of the final estimate before the ``center`` trim.
    history : np.ndarray, shape (n_iter,)
        Spectral convergence (dB) after each iteration.
    """
    from nstaudio.spectral import overlap_add, spectral_convergence, window_sum

    n_fft = window.shape[0]
    trim = n_fft // 2 if center else 0
    wss = window_sum(window, hop_length, S.shape[1])
    covered = wss > np.finfo(np.float32).tiny

    def inverse(spec):
        """Least-squares ISTFT of (bins, frames), in the padded domain."""
        y = overlap_add(np.fft.irfft(spec.T, n=n_fft, axis=-1) * window, hop_length)
        y[covered] /= wss[covered]
        return y

    def forward(y):
        """STFT (bins, frames) of a padded-domain signal, re-padded with zeros as stft() does."""
        y = y.copy()
        y[:trim] = 0
        y[len(y) - trim:] = 0
        frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop_length]
        return np.fft.rfft(frames * window, axis=-1).T

    history = np.empty(n_iter)
    rebuilt = None
    for i in range(n_iter):
        previous = rebuilt
        rebuilt = forward(inverse(S * angles))
        history[i] = spectral_convergence(S, rebuilt)
        a = rebuilt if previous is None else rebuilt - (momentum / (1 + momentum)) * previous
        angles = a / (np.abs(a) + 1e-16)
        if callback is not None:
            callback(i + 1, history[i])
    return inverse(S * angles).astype(np.float32), history


def strided_windows(x, K, stride, padding, out):
    """Windows of a strided, zero-padded 1-D convolution over a batch: (B, C, T) -> ``out`` (B, C, K, T_out).

    ``out[b, c, k, t] = x[b, c, t*stride + k - padding]``, zero where that index is outside x.
    The im2col matrix of the feedforward networks' layers (flattened to (B, C*K, T_out)).
    Returns ``out``.
    """
    B, C, T = x.shape
    T_out = out.shape[3]
    x_pad = np.zeros((B, C, max(T + 2 * padding, (T_out - 1) * stride + K)), dtype=x.dtype)
    x_pad[:, :, padding:padding + T] = x
    for k in range(K):
        out[:, :, k, :] = x_pad[:, :, k:k + stride * (T_out - 1) + 1:stride]
    return out


def channel_major_windows(strided, overlap):
    """A backend's channel-major windows pair, by transposes of its batch-major ``strided_windows`` and
    ``overlap_windows`` (the numpy reference's; the cuda backend's; the cpu backend has kernels of its own).

    Returns
    -------
    strided_windows_channel_major : callable
        ``(x, K, stride, padding, out)``: x (C, B, T) -> ``out`` (C, K, B, T_out), returned.
    overlap_windows_channel_major : callable
        ``(cols, stride, padding, bias, out)``: cols (C, K, B, T) -> ``out`` (C, B, length), returned.
    """
    def strided_windows_channel_major(x, K, stride, padding, out):
        strided(x.transpose(1, 0, 2), K, stride, padding, out.transpose(2, 0, 1, 3))
        return out

    def overlap_windows_channel_major(cols, stride, padding, bias, out):
        overlap(cols.transpose(2, 0, 1, 3), stride, padding, bias, out.transpose(1, 0, 2))
        return out

    return strided_windows_channel_major, overlap_windows_channel_major


def overlap_windows(cols, stride, padding, bias, out):
    """Adjoint of :func:`strided_windows` into ``out`` (B, C, length), plus a bias (C,) per channel.

    ``out[b, c, s] = bias[c] + sum of cols[b, c, k, t] over t*stride + k - padding = s``:
    (B, C, K, T) -> (B, C, length). The transposed convolution's output and the strided
    convolution's input gradient. Returns ``out``.
    """
    B, C, K, T = cols.shape
    length = out.shape[2]
    full = np.zeros((B, C, max(length + 2 * padding, (T - 1) * stride + K)), dtype=cols.dtype)
    for k in range(K):
        full[:, :, k:k + stride * (T - 1) + 1:stride] += cols[:, :, k, :]
    out[...] = full[:, :, padding:padding + length] + bias[None, :, None]
    return out


def heap_integrate(magnitude, time_step, freq_step, threshold, phase):
    """Phase Gradient Heap Integration (Prusa, Balazs & Sondergaard 2017), on Python's ``heapq``.

    From the largest coefficient not yet reached, phase spreads to its four neighbours in
    order of decreasing magnitude, each step adding the mean of the two coefficients' phase
    increments (trapezoidal integration of the phase gradient); when the heap runs dry the
    next island starts at phase 0 from the largest coefficient left. Ties in magnitude go
    to the lower flat index, so every backend visits the coefficients in the same order.

    Parameters
    ----------
    magnitude : np.ndarray, shape (bins, frames)
    time_step : np.ndarray, shape (bins, frames), float64
        Phase advance per frame at each coefficient (hop x the time derivative of the phase).
    freq_step : np.ndarray, shape (bins, frames), float64
        Phase advance per bin at each coefficient, without the pi every bin adds.
    threshold : float
        Coefficients at or below it keep the phase they have in ``phase``.
    phase : np.ndarray, shape (bins, frames), float64
        In: the phase of the coefficients below ``threshold``; out: every phase (radians).

    Returns
    -------
    np.ndarray
        ``phase``.
    """
    import heapq

    bins, frames = magnitude.shape
    flat = magnitude.ravel()
    done = flat <= threshold
    heap = []
    for start in np.argsort(-flat, kind="stable"):
        if done[start]:
            continue
        done[start] = True
        phase.flat[start] = 0.0
        heapq.heappush(heap, (-flat[start], start))
        while heap:
            _, index = heapq.heappop(heap)
            k, t = divmod(int(index), frames)
            here = phase[k, t]
            for kk, tt in ((k, t + 1), (k, t - 1), (k + 1, t), (k - 1, t)):
                if not (0 <= kk < bins and 0 <= tt < frames) or done[kk * frames + tt]:
                    continue
                if tt != t:
                    step = 0.5 * (time_step[k, t] + time_step[kk, tt])
                else:
                    step = 0.5 * (freq_step[k, t] + freq_step[kk, tt]) + np.pi
                phase[kk, tt] = here + step if (tt > t or kk > k) else here - step
                done[kk * frames + tt] = True
                heapq.heappush(heap, (-flat[kk * frames + tt], kk * frames + tt))
    return phase


strided_windows_channel_major, overlap_windows_channel_major = channel_major_windows(strided_windows,
                                                                                     overlap_windows)


def heap_integrate_frame(magnitude, time_step, freq_step, threshold, phase):
    """Real-time Phase Gradient Heap Integration of one frame (Prusa & Holighaus 2017), on ``heapq``.

    The previous frame's coefficients above ``threshold`` seed the heap with their known
    phase; from the largest coefficient on the heap, phase spreads forward in time (a
    previous-frame coefficient to its bin in the new frame) or along the new frame's bins,
    each step adding the mean of the two coefficients' phase increments. When the heap runs
    dry the largest new-frame coefficient not yet reached starts an island at phase 0. Ties
    go to the lower flat index (``bin * 2 + column``), so every backend visits in one order.

    Parameters
    ----------
    magnitude : np.ndarray, shape (bins, 2)
        Column 0 the previous frame, column 1 the new one.
    time_step : np.ndarray, shape (bins, 2), float64
        Phase advance per frame at each coefficient.
    freq_step : np.ndarray, shape (bins,), float64
        The new frame's phase advance per bin, without the pi every bin adds.
    threshold : float
        Coefficients at or below it take no part; new-frame ones keep the phase in ``phase``.
    phase : np.ndarray, shape (bins, 2), float64
        In: column 0 the previous frame's phase, column 1 the phase for coefficients below
        ``threshold``; out: column 1 filled in.

    Returns
    -------
    np.ndarray
        ``phase``.
    """
    import heapq

    bins = magnitude.shape[0]
    flat = magnitude.ravel()
    done = np.ones(2 * bins, dtype=bool)
    done[1::2] = flat[1::2] <= threshold
    heap = [(-flat[2 * k], 2 * k) for k in range(bins) if flat[2 * k] > threshold]
    heapq.heapify(heap)
    seeds = iter(np.argsort(-flat[1::2], kind="stable"))
    while True:
        if not heap:
            k = next((k for k in seeds if not done[2 * k + 1]), None)
            if k is None:
                break
            done[2 * k + 1] = True
            phase[k, 1] = 0.0
            heapq.heappush(heap, (-flat[2 * k + 1], 2 * k + 1))
        _, index = heapq.heappop(heap)
        k, column = divmod(int(index), 2)
        if column == 0:
            if not done[2 * k + 1]:
                phase[k, 1] = phase[k, 0] + 0.5 * (time_step[k, 0] + time_step[k, 1])
                done[2 * k + 1] = True
                heapq.heappush(heap, (-flat[2 * k + 1], 2 * k + 1))
            continue
        for kk in (k + 1, k - 1):
            if not 0 <= kk < bins or done[2 * kk + 1]:
                continue
            step = 0.5 * (freq_step[k] + freq_step[kk]) + np.pi
            phase[kk, 1] = phase[k, 1] + step if kk > k else phase[k, 1] - step
            done[2 * kk + 1] = True
            heapq.heappush(heap, (-flat[2 * kk + 1], 2 * kk + 1))
    return phase


def keep_magnitude(target, magnitude, estimate):
    """The magnitude projection of iterative phase retrieval, in place.

    Parameters
    ----------
    target : np.ndarray, complex, C-contiguous
        In: the current spectra; out: ``magnitude`` with ``estimate``'s phases (unchanged where
        ``estimate`` is 0).
    magnitude : np.ndarray, real, shape of ``target``
        The magnitudes to keep (``|target|``).
    estimate : np.ndarray, complex, shape of ``target``
        Spectra whose phases are taken.

    Returns
    -------
    np.ndarray
        ``target``'s new value minus its old one.
    """
    size = np.abs(estimate)
    new = np.where(size > 0, magnitude * estimate / np.where(size > 0, size, 1.0), target)
    change = new - target
    target[...] = new
    return change


def normalized_frames(signal, weight, window, offset, hop, count, tiny):
    """Windowed frames of an overlap-added signal divided by its summed squared windows.

    Parameters
    ----------
    signal : np.ndarray, shape (batch, n), float64
    weight : np.ndarray, shape (n,), float64
        The summed squared windows under each sample; where it is at most ``tiny`` the sample
        is taken as it is.
    window : np.ndarray, shape (n_fft,), float64
    offset, hop, count : int
        Frame ``i`` starts at sample ``offset + i hop``.
    tiny : float

    Returns
    -------
    np.ndarray, shape (batch, count, n_fft), float64
    """
    n_fft = window.shape[0]
    span = slice(offset, offset + (count - 1) * hop + n_fft)
    w = weight[span]
    normalized = np.where(w > tiny, signal[:, span] / np.where(w > tiny, w, 1.0), signal[:, span])
    starts = np.arange(count) * hop
    return normalized[:, starts[:, None] + np.arange(n_fft)] * window


def overlap_add_frames(signal, frames, window, offset, hop):
    """Add windowed frames into a signal, in place: ``signal[:, offset + i hop + t] += frames[:, i, t] window[t]``.

    Parameters
    ----------
    signal : np.ndarray, shape (batch, n), float64
    frames : np.ndarray, shape (batch, count, n_fft), float64
    window : np.ndarray, shape (n_fft,), float64
    offset, hop : int
    """
    n_fft = window.shape[0]
    for i in range(frames.shape[1]):
        start = offset + i * hop
        signal[:, start:start + n_fft] += frames[:, i] * window
    return signal


def polyphase_outputs(history, phases, first, count, up, down, offset, history_start):
    """Outputs ``first .. first + count - 1`` of a causal polyphase resampler.

    Output ``n`` is ``sum_t phases[p, t] history[:, q - taps + 1 + t]`` with ``n down + offset =
    q up + p`` (``q`` counted from the first input; ``history[:, i]`` is input ``history_start + i``),
    summed in float64.

    Parameters
    ----------
    history : np.ndarray, shape (channels, n), float32
    phases : np.ndarray, shape (up, taps), float32
    first, count, up, down, offset, history_start : int

    Returns
    -------
    np.ndarray, shape (channels, count), float32
    """
    position = np.arange(first, first + count) * down + offset
    newest = position // up - history_start
    taps = phases.shape[1]
    picked = history[:, newest[:, None] - taps + 1 + np.arange(taps)].astype(np.float64)  # (channels, count, taps)
    return np.einsum("cnt,nt->cn", picked, phases[position % up].astype(np.float64)).astype(np.float32)


def frame_product(weights, columns, out):
    """``out = weights @ columns``: one frame of a layer for a few channels side by side.

    Parameters
    ----------
    weights : np.ndarray, shape (C_out, n), float32
    columns : np.ndarray, shape (n, batch), float32
    out : np.ndarray, shape (C_out, batch), float32
        Written in place and returned.
    """
    return np.matmul(weights, columns, out=out)


def mel_fista_start(Ft_indptr, Ft_indices, Ft_data, M, coverage, bins):
    """The starting point of :func:`mel_fista_steps`: ``F^T M / coverage``, (bins, T) float32.

    Parameters
    ----------
    Ft_indptr, Ft_indices, Ft_data : np.ndarray
        The filterbank's transpose F^T (bins, n_mels) in CSR form (float32 data).
    M : np.ndarray, shape (n_mels, T), float32, C-contiguous
    coverage : np.ndarray, shape (bins,), float32
        ``F^T 1`` (1 where it is 0).
    bins : int
    """
    import scipy.sparse

    Ft = scipy.sparse.csr_matrix((Ft_data, Ft_indices, Ft_indptr), shape=(bins, M.shape[0]))
    return ((Ft @ M) / coverage[:, None]).astype(np.float32)


def mel_fista_steps(F_indptr, F_indices, F_data, Ft_indptr, Ft_indices, Ft_data, M, step, momenta, P, Y):
    """Steps of FISTA for the non-negative least squares ``min ||F P - M||^2, P >= 0``, every column at
    once, in float32, from the state (P, Y), updated in place: the steps can be taken a few at a time.
    To start, P is :func:`mel_fista_start`'s and Y a copy of it (two arrays: the same one for both would
    be projected gradient descent without FISTA's momentum).

    Parameters
    ----------
    F_indptr, F_indices, F_data : np.ndarray
        The filterbank F (n_mels, bins) in CSR form (float32 data).
    Ft_indptr, Ft_indices, Ft_data : np.ndarray
        Its transpose in CSR form.
    M : np.ndarray, shape (n_mels, T), float32, C-contiguous
    step : np.float32
        ``1 / L``, L at least ``||F||_2^2``.
    momenta : np.ndarray, shape (steps,), float32
        ``(t_k - 1) / t_{k+1}`` per step (those of the steps taken, in order).
    P, Y : np.ndarray, shape (bins, T), float32
        The iterate and the extrapolated point, written in place.

    Returns
    -------
    P
    """
    import scipy.sparse

    F = scipy.sparse.csr_matrix((F_data, F_indices, F_indptr), shape=(M.shape[0], P.shape[0]))
    Ft = scipy.sparse.csr_matrix((Ft_data, Ft_indices, Ft_indptr), shape=(P.shape[0], M.shape[0]))
    step = np.float32(step)
    for momentum in momenta:
        gradient = Ft @ (F @ Y - M)
        P_next = np.maximum(Y - step * gradient, 0, dtype=np.float32)
        Y[...] = P_next + momentum * (P_next - P)
        P[...] = P_next
    return P
