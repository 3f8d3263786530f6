"""The fast CPU backend: numba loops for the memory-bound steps, BLAS for the GEMMs.

The convolution is one GEMM per block of frames on an im2col matrix
(``cols[k*C + c, t] = X[c, t + k]``), so the (N, K*C) x (K*C, frames) product
runs at BLAS speed; blocks keep the im2col buffer bounded for long audio. The ReLU
mask, the content residual and the loss reductions are fused numba loops that
read each (N, T') array once and accumulate in float64.
"""

import threading

import numba
import numpy as np

from . import fast_fir, threading_layer
from .products import gram, matmul  # noqa: F401 (backend functions: the same bits on any number of threads)
from .thread_share import fft_workers
from .threading_layer import parallel_kernel

# A thread-safe numba threading layer unless the host chose one (threading_layer.py says why).
threading_layer.configure()

name = "cpu"
xp = np

# Most frames per im2col block: large enough for GEMM efficiency, small enough that the
# (K*C, block) buffer stays bounded (~90 MB at 1025 bins) for any length of audio.
_BLOCK = 2048


def _blocks(T_out):
    """Equal blocks of at most ``_BLOCK`` frames: a short last block would run the GEMM slowly.

    Returns
    -------
    width : int
        Frames per block (the last may have fewer).
    starts : range
    """
    n_blocks = -(-T_out // _BLOCK)
    width = -(-T_out // n_blocks)
    return width, range(0, T_out, width)


def asarray(x, dtype):
    """Move ``x`` to this backend as a contiguous array of ``dtype``."""
    return np.ascontiguousarray(x, dtype=dtype)


def to_numpy(x):
    """Return ``x`` as a numpy array."""
    return np.asarray(x)


class Scratch:
    """Work arrays reused across evaluations.

    A fresh multi-MB array costs a page fault per 4 kB on first touch, which at these
    sizes adds ~10 % to an evaluation (~25 % to a network pass); the temporaries kept here
    never leave their module, so reusing them is safe.
    """

    def __init__(self):
        self._arrays = {}

    def get(self, name, shape, dtype):
        """A C-contiguous ``shape`` view of the buffer ``name``, which only ever grows.

        Growing instead of replacing matters for the fast FIR leaves: their im2col
        matrices differ in width by a frame or two and would otherwise be reallocated
        (and faulted in again) by every leaf of every evaluation.
        """
        dtype = np.dtype(dtype)
        size = int(np.prod(shape)) * dtype.itemsize
        buffer = self._arrays.get(name)
        if buffer is None or buffer.size < size:
            buffer = np.empty(size, dtype=np.uint8)
            self._arrays[name] = buffer
        return buffer[:size].view(dtype).reshape(shape)

    def section(self, prefix):
        """This scratch seen through names ``prefix/name``: one layer's buffers among a network's."""
        return _Section(self, prefix)

    def clear(self):
        self._arrays.clear()


class _Section:
    def __init__(self, scratch, prefix):
        self._scratch, self._prefix = scratch, prefix

    def get(self, name, shape, dtype):
        return self._scratch.get(f"{self._prefix}/{name}", shape, dtype)


_per_thread = threading.local()


def thread_scratch(purpose="kernels"):
    """This thread's :class:`Scratch` for ``purpose``: calls from several threads never share a buffer.

    Parameters
    ----------
    purpose : str
        Separate users of scratch in one thread (the kernels here, a network pass's layers)
        get separate buffers.
    """
    scratches = _per_thread.__dict__
    if purpose not in scratches:
        scratches[purpose] = Scratch()
    return scratches[purpose]


def clear_scratch():
    """Free the work arrays this thread kept between evaluations."""
    for scratch in _per_thread.__dict__.values():
        scratch.clear()


def _output(out, shape, dtype, xp=np):
    """``out`` if given (checked), else a new array of module ``xp`` (shared with the cuda backend)."""
    if out is None:
        return xp.empty(shape, dtype=dtype)
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(f"out has shape {out.shape} and dtype {out.dtype}, expected {shape} and {dtype}")
    return out


class ConvWeights:
    """Filters W (N, C, K) flattened for im2col: ``mat[n, k*C + c] = W[n, c, k]``.

    ``xp`` is the array module (numpy here, cupy for the cuda backend).
    """

    def __init__(self, W, xp=np):
        self.N, self.C, self.K = W.shape
        self.mat = xp.ascontiguousarray(W.transpose(0, 2, 1).reshape(self.N, self.K * self.C))


def prepare_weights(W, frames=None, plan=None):
    """Lay out W (N, C, K) once: flattened for the im2col GEMMs, split by fast FIR where that saves work.

    Parameters
    ----------
    W : np.ndarray, shape (N, C, K)
    frames : int or None
        Input frames the convolution will mostly run on; chooses the fast FIR splits
        (:func:`fast_fir.split_plan`). None: direct form.
    plan : tuple of int or None
        Force these splits instead (phases of each, outermost first; ``()``: direct form).

    Returns
    -------
    ConvWeights or fast_fir.SplitWeights
    """
    W = np.asarray(W)
    if plan is None:
        plan = () if frames is None else fast_fir.split_plan(W.shape[2], frames)
    return fast_fir.prepare(W, plan, ConvWeights)


@parallel_kernel()
def im2col(X, K, t0, out):
    """``out[k*C + c, j] = X[c, t0 + j + k]`` for the j in ``range(out.shape[1])``."""
    C = X.shape[0]
    width = out.shape[1]
    for row in numba.prange(K * C):
        k = row // C
        c = row - k * C
        for j in range(width):
            out[row, j] = X[c, t0 + j + k]


@parallel_kernel()
def col2im_add(cols, K, t0, out):
    """Adjoint of :func:`im2col`: ``out[c, t0 + j + k] += cols[k*C + c, j]``.

    Parallel over c: each output row is written by one thread, so there are no races.
    """
    C = out.shape[0]
    width = cols.shape[1]
    for c in numba.prange(C):
        for k in range(K):
            row = k * C + c
            for j in range(width):
                out[c, t0 + j + k] += cols[row, j]


@parallel_kernel()
def strided_windows_channel_major(x, K, stride, padding, out):
    """Windows of a strided, zero-padded 1-D convolution, channels first (``numpy_backend.strided_windows``
    with the layout of a channel-major activation): ``out[c, k, b, t] = x[c, b, t*stride + k - padding]``,
    zero outside x.

    x (C, B, T) (a channel-major activation, contiguous as such), out (C, K, B, T_out) C-contiguous:
    the whole batch's im2col matrix, (C K, B T_out), for one GEMM. Parallel over (c, k) rows; no
    padded copy of x.
    """
    C, B, T = x.shape
    T_out = out.shape[3]
    for row in numba.prange(C * K):
        c = row // K
        k = row - c * K
        lo = min(max(0, -((k - padding) // stride)), T_out)
        hi = max(min(T_out, (T - 1 + padding - k) // stride + 1), lo)
        for b in range(B):
            for t in range(lo):
                out[c, k, b, t] = 0
            for t in range(lo, hi):
                out[c, k, b, t] = x[c, b, t * stride + k - padding]
            for t in range(hi, T_out):
                out[c, k, b, t] = 0


@parallel_kernel()
def overlap_windows_channel_major(cols, stride, padding, bias, out):
    """The adjoint of :func:`strided_windows_channel_major` plus a bias: ``out[c, b, s] = bias[c] +
    sum of cols[c, k, b, t]`` over ``t*stride + k - padding = s``; cols (C, K, B, T), out (C, B, length).
    Each channel is written by one thread, so the scatter has no races."""
    C, K, B, T = cols.shape
    length = out.shape[2]
    for c in numba.prange(C):
        for b in range(B):
            for s in range(length):
                out[c, b, s] = bias[c]
            for k in range(K):
                lo = max(0, -((k - padding) // stride))
                hi = min(T, (length - 1 + padding - k) // stride + 1)
                for t in range(lo, hi):
                    out[c, b, t * stride + k - padding] += cols[c, k, b, t]


def conv1d(X, W, out=None):
    """Valid 1-D convolution over time; see ``numpy_backend.conv1d``.

    Parameters
    ----------
    X : np.ndarray, shape (C, T)
    W : ConvWeights or fast_fir.SplitWeights
        From :func:`prepare_weights`.
    out : np.ndarray, shape (N, T - K + 1), optional
        Where to write the result.

    Returns
    -------
    np.ndarray, shape (N, T - K + 1)
    """
    T_out = X.shape[1] - W.K + 1
    out = _output(out, (W.N, T_out), X.dtype)
    if isinstance(W, fast_fir.SplitWeights):
        return fast_fir.conv1d(X, W, conv1d, out)
    block_width, starts = _blocks(T_out)
    cols = thread_scratch().get("cols", (W.K * W.C, block_width), X.dtype)
    for t0 in starts:
        width = min(block_width, T_out - t0)
        block = cols[:, :width]
        im2col(X, W.K, t0, block)
        matmul(W.mat.astype(X.dtype, copy=False), block, out=out[:, t0:t0 + width])
    return out


def conv1d_adjoint(dY, W, T, out=None):
    """Adjoint of :func:`conv1d` with respect to X: (N, T') -> (C, T), written into ``out`` if given."""
    T_out = dY.shape[1]
    dX = _output(out, (W.C, T), dY.dtype)
    if isinstance(W, fast_fir.SplitWeights):
        return fast_fir.conv1d_adjoint(dY, W, T, conv1d_adjoint, dX)
    dX[...] = 0
    mat_t = W.mat.astype(dY.dtype, copy=False).T
    block_width, starts = _blocks(T_out)
    cols = thread_scratch().get("cols", (W.K * W.C, block_width), dY.dtype)
    for t0 in starts:
        width = min(block_width, T_out - t0)
        block = cols[:, :width]
        matmul(mat_t, dY[:, t0:t0 + width], out=block)
        col2im_add(block, W.K, t0, dX)
    return dX


@parallel_kernel()
def _relu_inplace(F):
    for n in numba.prange(F.shape[0]):
        for t in range(F.shape[1]):
            if F[n, t] < 0:
                F[n, t] = 0


@parallel_kernel()
def _relu_content_inplace(F, Fc):
    rows = np.empty(F.shape[0], dtype=np.float64)
    for n in numba.prange(F.shape[0]):
        row = 0.0
        for t in range(F.shape[1]):
            v = F[n, t]
            if v < 0:
                v = 0
                F[n, t] = 0
            r = np.float64(v) - np.float64(Fc[n, t])
            row += r * r
        rows[n] = row
    return _in_order(rows)


def relu_content(F_pre, Fc):
    """ReLU (in place on ``F_pre``) fused with the content residual.

    Returns
    -------
    F : np.ndarray, shape (N, T')
        ``F_pre`` itself, rectified.
    content_sq : float
        ``sum((F - Fc)**2)`` in float64; 0 when ``Fc`` is None.
    """
    if Fc is None:
        _relu_inplace(F_pre)
        return F_pre, 0.0
    return F_pre, float(_relu_content_inplace(F_pre, Fc))


@parallel_kernel()
def _mask_content_grad(F, Fc, dF, two_alpha):
    for n in numba.prange(F.shape[0]):
        for t in range(F.shape[1]):
            if F[n, t] > 0:
                dF[n, t] += two_alpha * (F[n, t] - Fc[n, t])
            else:
                dF[n, t] = 0


@parallel_kernel()
def _mask_grad(F, dF):
    for n in numba.prange(F.shape[0]):
        for t in range(F.shape[1]):
            if F[n, t] <= 0:
                dF[n, t] = 0


def relu_content_backward(F, Fc, dF_style, alpha):
    """``[F > 0] * (dF_style + 2 alpha (F - Fc))``, written into ``dF_style``."""
    if Fc is None:
        _mask_grad(F, dF_style)
    else:
        _mask_content_grad(F, Fc, dF_style, dF_style.dtype.type(2 * alpha))
    return dF_style


@numba.njit(cache=True)
def _in_order(rows):
    """The sum of ``rows`` from the first to the last: a parallel loop's row totals, added in an
    order that does not depend on how its threads shared the rows (a prange reduction's does)."""
    total = 0.0
    for value in rows:
        total += value
    return total


@parallel_kernel()
def sum_squares(A):
    """``sum(A**2)`` accumulated in float64, for a 2-D array."""
    rows = np.empty(A.shape[0], dtype=np.float64)
    for i in numba.prange(A.shape[0]):
        row = 0.0
        for j in range(A.shape[1]):
            v = np.float64(A[i, j])
            row += v * v
        rows[i] = row
    return _in_order(rows)


def style_loss_nxn(F, G_s, out=None):
    """Gram style loss in the N x N form; see ``numpy_backend.style_loss_nxn``.

    ``F F^T`` is a symmetric product: :func:`gram` multiplies half of it.
    """
    N, T_out = F.shape
    D = gram(F, out=thread_scratch().get("gram", (N, N), F.dtype))
    D *= F.dtype.type(1.0 / T_out)
    D -= G_s
    value = sum_squares(D)
    D *= F.dtype.type(4.0 / T_out)
    return float(value), matmul(D, F, out=_output(out, F.shape, F.dtype))


def style_loss_kernel(F, S_hat, target_sq, out=None):
    """Gram style loss in the kernel form; see ``numpy_backend.style_loss_kernel``.

    ``F^T F`` is a symmetric product (:func:`gram`: half of it multiplied); the gradient's two
    products share one output.
    """
    T_out = F.shape[1]
    A = gram(F.T, out=thread_scratch().get("kernel", (T_out, T_out), F.dtype))
    B = matmul(F.T, S_hat, out=thread_scratch().get("cross", (T_out, S_hat.shape[1]), F.dtype))
    value = sum_squares(A) / T_out**2 - 2.0 * sum_squares(B) / T_out + target_sq
    A *= F.dtype.type(4.0 / T_out**2)
    B *= F.dtype.type(-4.0 / T_out)
    dF = matmul(F, A, out=_output(out, F.shape, F.dtype))
    dF += matmul(S_hat, B.T, out=thread_scratch().get("cross_grad", F.shape, F.dtype))
    return float(value), dF


@parallel_kernel()
def _arccos_kernel(U, a2, b2, kappa, d_u, d_a2):
    two_pi = 2.0 * np.pi
    for i in numba.prange(U.shape[0]):
        a = np.float64(a2[i])
        for j in range(U.shape[1]):
            u = np.float64(U[i, j])
            ab2 = a * np.float64(b2[j])
            s = np.sqrt(max(ab2 - u * u, 0.0))
            ab = np.sqrt(ab2)
            cos = u / ab if ab > 0 else 0.0
            cos = min(max(cos, -1.0), 1.0)
            rest = np.pi - np.arccos(cos)
            kappa[i, j] = (s + rest * u) / two_pi
            d_u[i, j] = rest / two_pi
            d_a2[i, j] = s / (2.0 * two_pi * a) if a > 0 else 0.0


def arccos_kernel(U, a2, b2):
    """The arc-cosine kernel and its derivatives in one pass, float64 inside; see
    ``numpy_backend.arccos_kernel``."""
    kappa, d_u, d_a2 = (np.empty_like(U) for _ in range(3))
    _arccos_kernel(U, a2, b2, kappa, d_u, d_a2)
    return kappa, d_u, d_a2


# --- Griffin-Lim -----------------------------------------------------------------------------------
# Frame-major layout throughout: spectra are (frames, bins) so every FFT runs along the
# contiguous last axis and no transposed copy is ever made. The signal lives in the
# "padded" domain of a centered STFT; re-padding the ISTFT's output with zeros, as
# stft(istft(.)) does, is the same as zeroing its first and last n_fft // 2 samples,
# which the normalisation weights below do for free.


@parallel_kernel()
def overlap_add_normalized(frames, window, hop, weights, out):
    """``out[i] = weights[i] * sum_t window[i - t*hop] * frames[t, i - t*hop]``.

    Parallel over hop-sized blocks of the output, each written by one thread (no
    races); within a block every covering frame adds one contiguous run into a local
    accumulator, through slices: the same sums indexed as ``out[i]`` and ``frames[t, i - t*hop]``
    ran twice as slowly (1.0 ms instead of 0.5 ms for 431 frames of 2048, as long as an FFT).

    Parameters
    ----------
    frames : (T, n_fft) float32
    window : (n_fft,) float32
        Synthesis window.
    hop : int
    weights : (n_fft + hop * (T - 1),) float32
        Inverse window-sum (0 where no frame covers a sample or the sample is cut).
    out : same shape as ``weights``
    """
    T, n_fft = frames.shape
    length = out.shape[0]
    n_blocks = (length + hop - 1) // hop
    for b in numba.prange(n_blocks):
        lo = b * hop
        hi = min(lo + hop, length)
        acc = np.zeros(hi - lo, dtype=out.dtype)
        t_first = max(0, (lo - n_fft) // hop + 1)
        for t in range(t_first, min(T - 1, b) + 1):
            start = max(lo, t * hop)
            stop = min(hi, t * hop + n_fft)
            offset = start - t * hop
            frame = frames[t, offset:offset + stop - start]
            taper = window[offset:offset + stop - start]
            run = acc[start - lo:stop - lo]
            for i in range(stop - start):
                run[i] += taper[i] * frame[i]
        for i in range(hi - lo):
            out[lo + i] = acc[i] * weights[lo + i]


@parallel_kernel()
def frame_windowed(y, window, hop, out):
    """``out[t, j] = window[j] * y[t*hop + j]``: (T, n_fft) frames of a padded signal."""
    T, n_fft = out.shape
    for t in numba.prange(T):
        start = t * hop
        for j in range(n_fft):
            out[t, j] = window[j] * y[start + j]


@parallel_kernel()
def phase_update(S, rebuilt, previous, coef, use_previous, spec_out):
    """One fast Griffin-Lim phase step, fused with the spectral-convergence sum.

    ``a = rebuilt - coef * previous``; ``spec_out = S * a / (|a| + 1e-16)``. Written
    on real and imaginary parts: complex ``abs`` and division would go through
    overflow-safe hypot and cost several times more.

    Returns
    -------
    float
        ``sum((S - |rebuilt|)**2)`` in float64.
    """
    T, F = S.shape
    rows = np.empty(T, dtype=np.float64)
    for t in numba.prange(T):
        row = 0.0
        for f in range(F):
            re = rebuilt[t, f].real
            im = rebuilt[t, f].imag
            d = np.float64(S[t, f] - np.sqrt(re * re + im * im))
            row += d * d
            if use_previous:
                re -= coef * previous[t, f].real
                im -= coef * previous[t, f].imag
            scale = S[t, f] / (np.sqrt(re * re + im * im) + np.float32(1e-16))
            spec_out[t, f] = complex(re * scale, im * scale)
        rows[t] = row
    return _in_order(rows)


def window_sum_weights(window, hop, n_frames, trim):
    """Inverse of the summed squared window, zeroed where it vanishes and in the ``trim`` edges.

    Returns
    -------
    np.ndarray, shape (n_fft + hop * (n_frames - 1),), float32
    """
    from nstaudio.spectral import window_sum

    wss = window_sum(window, hop, n_frames)
    length = wss.shape[0]
    weights = np.zeros(length, dtype=np.float32)
    nonzero = wss > np.finfo(np.float32).tiny
    weights[nonzero] = 1.0 / wss[nonzero]
    if trim:
        weights[:trim] = 0
        weights[length - trim:] = 0
    return weights


def griffin_lim(S, angles, *, window, hop_length, center, momentum, n_iter, callback=None):
    """Fast Griffin-Lim on one magnitude spectrogram: parameters and return values as
    ``numpy_backend.griffin_lim`` (the padded-domain ISTFT and the convergence in dB)."""
    import scipy.fft

    n_fft = window.shape[0]
    T = S.shape[1]
    S_tf = np.ascontiguousarray(S.T, dtype=np.float32)
    spec = np.ascontiguousarray((S * angles).T, dtype=np.complex64)
    cut = window_sum_weights(window, hop_length, T, n_fft // 2 if center else 0)
    y = np.empty(cut.shape[0], dtype=np.float32)
    frames = np.empty((T, n_fft), dtype=np.float32)
    norm_S = float(np.sqrt(np.sum(S_tf.astype(np.float64) ** 2)))
    coef = np.float32(momentum / (1.0 + momentum))
    previous = np.zeros_like(spec)
    history = np.empty(n_iter)
    for i in range(n_iter):
        inverse = scipy.fft.irfft(spec, n=n_fft, axis=-1, workers=fft_workers(), overwrite_x=False)
        overlap_add_normalized(inverse, window, hop_length, cut, y)
        frame_windowed(y, window, hop_length, frames)
        rebuilt = scipy.fft.rfft(frames, axis=-1, workers=fft_workers())
        err = phase_update(S_tf, rebuilt, previous, coef, i > 0, spec)
        previous = rebuilt
        history[i] = 20.0 * np.log10(max(np.sqrt(err), 1e-30) / max(norm_S, 1e-30))
        if callback is not None:
            callback(i + 1, history[i])
    inverse = scipy.fft.irfft(spec, n=n_fft, axis=-1, workers=fft_workers())
    overlap_add_normalized(inverse, window, hop_length, window_sum_weights(window, hop_length, T, 0), y)
    return y, history


@numba.njit(cache=True)
def _heap_better(magnitude, a, b):
    """Coefficient ``a`` leaves the heap before ``b``: larger magnitude, then lower flat index."""
    return magnitude[a] > magnitude[b] or (magnitude[a] == magnitude[b] and a < b)


@numba.njit(cache=True)
def _heap_push(heap, size, magnitude, index):
    position = size
    heap[position] = index
    while position > 0:
        parent = (position - 1) // 2
        if not _heap_better(magnitude, heap[position], heap[parent]):
            break
        heap[position], heap[parent] = heap[parent], heap[position]
        position = parent
    return size + 1


@numba.njit(cache=True)
def _heap_pop(heap, size, magnitude):
    top = heap[0]
    size -= 1
    heap[0] = heap[size]
    position = 0
    while True:
        child = 2 * position + 1
        if child >= size:
            break
        if child + 1 < size and _heap_better(magnitude, heap[child + 1], heap[child]):
            child += 1
        if not _heap_better(magnitude, heap[child], heap[position]):
            break
        heap[position], heap[child] = heap[child], heap[position]
        position = child
    return top, size


@numba.njit(cache=True)
def heap_integrate(magnitude, time_step, freq_step, threshold, phase):
    """Phase Gradient Heap Integration with an array-backed binary heap; parameters and
    visiting order as ``numpy_backend.heap_integrate`` (sequential by nature: each phase
    comes from a neighbour's)."""
    bins, frames = magnitude.shape
    flat = magnitude.ravel()
    done = flat <= threshold
    heap = np.empty(flat.shape[0], dtype=np.int64)
    order = np.argsort(-flat, kind="mergesort")
    neighbours = ((0, 1), (0, -1), (1, 0), (-1, 0))
    for start in order:
        if done[start]:
            continue
        done[start] = True
        phase[start // frames, start % frames] = 0.0
        size = _heap_push(heap, 0, flat, start)
        while size > 0:
            index, size = _heap_pop(heap, size, flat)
            k, t = index // frames, index % frames
            here = phase[k, t]
            for dk, dt in neighbours:
                kk, tt = k + dk, t + dt
                if kk < 0 or kk >= bins or tt < 0 or tt >= frames or done[kk * frames + tt]:
                    continue
                if dt != 0:
                    step = 0.5 * (time_step[k, t] + time_step[kk, tt])
                else:
                    step = 0.5 * (freq_step[k, t] + freq_step[kk, tt]) + np.pi
                phase[kk, tt] = here + step if (dt > 0 or dk > 0) else here - step
                done[kk * frames + tt] = True
                size = _heap_push(heap, size, flat, kk * frames + tt)
    return phase


@numba.njit(cache=True)
def _keyed_push(keys, indices, size, key, index):
    """Push ``index`` with ``key`` on a max-heap kept as two arrays (no lookups through the magnitudes)."""
    position = size
    while position > 0:
        parent = (position - 1) >> 1
        if keys[parent] > key or (keys[parent] == key and indices[parent] < index):
            break
        keys[position], indices[position] = keys[parent], indices[parent]
        position = parent
    keys[position], indices[position] = key, index
    return size + 1


@numba.njit(cache=True)
def _keyed_pop(keys, indices, size):
    """Pop the largest key's index (ties: the lower index) from :func:`_keyed_push`'s heap."""
    top = indices[0]
    size -= 1
    key, index = keys[size], indices[size]
    position = 0
    while True:
        child = 2 * position + 1
        if child >= size:
            break
        if child + 1 < size and (keys[child + 1] > keys[child] or
                                 (keys[child + 1] == keys[child] and indices[child + 1] < indices[child])):
            child += 1
        if not (keys[child] > key or (keys[child] == key and indices[child] < index)):
            break
        keys[position], indices[position] = keys[child], indices[child]
        position = child
    keys[position], indices[position] = key, index
    return top, size


@numba.njit(cache=True)
def heap_integrate_frame(magnitude, time_step, freq_step, threshold, phase):
    """Real-time PGHI of one frame (Prusa & Holighaus 2017): the new frame's phase from the one before.

    Parameters and visiting order as ``numpy_backend.heap_integrate_frame`` (a heap entry is
    ``bin * 2 + column``). It runs once per frame and channel of a live stream, so only the new
    frame's coefficients go on the heap (its keys beside the indices): the previous frame's,
    which never join it later, are sorted once and merged with it in the same order, and the
    islands' order is sorted only if one is needed.
    """
    bins = magnitude.shape[0]
    done = np.empty(bins, dtype=np.bool_)  # the new frame's coefficients that have their phase
    keys = np.empty(bins, dtype=np.float64)
    indices = np.empty(bins, dtype=np.int64)
    size = remaining = 0
    for k in range(bins):
        done[k] = magnitude[k, 1] <= threshold
        remaining += not done[k]
    # the previous frame's coefficients above the threshold, largest first (ties: the lower bin)
    previous = np.argsort(-magnitude[:, 0], kind="mergesort")
    n_previous = 0
    while n_previous < bins and magnitude[previous[n_previous], 0] > threshold:
        n_previous += 1
    next_previous = 0
    order = np.empty(0, dtype=np.int64)
    next_seed = 0
    while remaining > 0:
        if size == 0 and next_previous == n_previous:  # an island the previous frame does not reach: phase 0
            if order.shape[0] == 0:
                order = np.argsort(-magnitude[:, 1], kind="mergesort")
            while done[order[next_seed]]:
                next_seed += 1
            k = order[next_seed]
            done[k] = True
            remaining -= 1
            phase[k, 1] = 0.0
            size = _keyed_push(keys, indices, size, magnitude[k, 1], 2 * k + 1)
        # the larger of the previous frame's next and the heap's top (ties: the lower entry index)
        from_previous = next_previous < n_previous
        if from_previous and size > 0:
            k = previous[next_previous]
            key = magnitude[k, 0]
            from_previous = key > keys[0] or (key == keys[0] and 2 * k < indices[0])
        if from_previous:
            k = previous[next_previous]
            next_previous += 1
            if not done[k]:
                phase[k, 1] = phase[k, 0] + 0.5 * (time_step[k, 0] + time_step[k, 1])
                done[k] = True
                remaining -= 1
                size = _keyed_push(keys, indices, size, magnitude[k, 1], 2 * k + 1)
            continue
        index, size = _keyed_pop(keys, indices, size)
        k = index >> 1
        for dk in (1, -1):
            kk = k + dk
            if kk < 0 or kk >= bins or done[kk]:
                continue
            step = 0.5 * (freq_step[k] + freq_step[kk]) + np.pi
            phase[kk, 1] = phase[k, 1] + step if dk > 0 else phase[k, 1] - step
            done[kk] = True
            remaining -= 1
            size = _keyed_push(keys, indices, size, magnitude[kk, 1], 2 * kk + 1)
    return phase


@numba.njit(cache=True)
def keep_magnitude(target, magnitude, estimate):
    """The magnitude projection of iterative phase retrieval, in place in ``target``; parameters and result
    as ``numpy_backend.keep_magnitude`` (one pass, no temporaries: it runs for every frame of a stream)."""
    change = np.empty_like(target)
    flat_target, flat_estimate, flat_change = target.reshape(-1), estimate.reshape(-1), change.reshape(-1)
    flat_magnitude = magnitude.reshape(-1)
    for i in range(flat_target.shape[0]):
        re, im = flat_estimate[i].real, flat_estimate[i].imag
        power = re * re + im * im
        if power > 0:
            scale = flat_magnitude[i] / np.sqrt(power)
            new = complex(re * scale, im * scale)
            flat_change[i] = new - flat_target[i]
            flat_target[i] = new
        else:
            flat_change[i] = 0.0
    return change


@numba.njit(cache=True)
def normalized_frames(signal, weight, window, offset, hop, count, tiny):
    """Windowed frames of an overlap-added signal over its summed squared windows; parameters and result as
    ``numpy_backend.normalized_frames`` (one pass: it runs for every refinement of a stream's frames)."""
    batch, n_fft = signal.shape[0], window.shape[0]
    out = np.empty((batch, count, n_fft))
    for b in range(batch):
        for i in range(count):
            start = offset + i * hop
            for t in range(n_fft):
                value, w = signal[b, start + t], weight[start + t]
                if w > tiny:
                    value = value / w
                out[b, i, t] = value * window[t]
    return out


@numba.njit(cache=True)
def overlap_add_frames(signal, frames, window, offset, hop):
    """``signal[:, offset + i hop + t] += frames[:, i, t] window[t]`` in place; as ``numpy_backend.overlap_add_frames``."""
    n_fft = window.shape[0]
    for b in range(signal.shape[0]):
        for i in range(frames.shape[1]):
            start = offset + i * hop
            for t in range(n_fft):
                signal[b, start + t] += frames[b, i, t] * window[t]
    return signal


@numba.njit(cache=True)
def polyphase_outputs(history, phases, first, count, up, down, offset, history_start):
    """Outputs of a causal polyphase resampler; parameters and result as ``numpy_backend.polyphase_outputs``
    (it runs on every block of a stream)."""
    channels, taps = history.shape[0], phases.shape[1]
    out = np.empty((channels, count), dtype=np.float32)
    for j in range(count):
        position = (first + j) * down + offset
        phase = position % up
        start = position // up - history_start - taps + 1
        for c in range(channels):
            total = 0.0
            for t in range(taps):
                total += np.float64(history[c, start + t]) * np.float64(phases[phase, t])
            out[c, j] = total
    return out


@numba.njit(fastmath=True, cache=True)
def frame_product(weights, columns, out):
    """``out = weights @ columns`` for a few columns (a stream's channels); as ``numpy_backend.frame_product``.

    A live stream computes one frame of a layer at a time: BLAS would hand such a product to
    its threads (a wake-up that costs more than the product, at random) or, on one thread,
    read the weights once per column. Here each column is copied contiguous once and every
    row of weights read once for two columns at a time, in one thread. The sums are
    reassociated (``fastmath``, for SIMD) in an order fixed by the shapes alone (no peeling
    for alignment), so a frame's result does not depend on where the arrays lie.
    """
    n_out, n_in = weights.shape
    batch = columns.shape[1]
    x = np.empty((batch, n_in), dtype=np.float32)
    for k in range(n_in):
        for b in range(batch):
            x[b, k] = columns[k, b]
    for o in range(n_out):
        b = 0
        while b + 1 < batch:
            first = np.float32(0.0)
            second = np.float32(0.0)
            for k in range(n_in):
                w = weights[o, k]
                first += w * x[b, k]
                second += w * x[b + 1, k]
            out[o, b] = first
            out[o, b + 1] = second
            b += 2
        if b < batch:
            total = np.float32(0.0)
            for k in range(n_in):
                total += weights[o, k] * x[b, k]
            out[o, b] = total
    return out


@numba.njit(cache=True)
def _csr_times(indptr, indices, data, x, out):
    """``out = A @ x`` for A in CSR form and x (n, T), row by row in the order of A's entries (as scipy)."""
    for i in range(out.shape[0]):
        for t in range(out.shape[1]):
            out[i, t] = 0.0
        for jj in range(indptr[i], indptr[i + 1]):
            j, a = indices[jj], data[jj]
            for t in range(out.shape[1]):
                out[i, t] += a * x[j, t]


@numba.njit(cache=True)
def mel_fista_start(Ft_indptr, Ft_indices, Ft_data, M, coverage, bins):
    """FISTA's starting point ``F^T M / coverage``; parameters and result as ``numpy_backend.mel_fista_start``."""
    P = np.empty((bins, M.shape[1]), dtype=np.float32)
    _csr_times(Ft_indptr, Ft_indices, Ft_data, M, P)
    for i in range(bins):
        for t in range(M.shape[1]):
            P[i, t] = P[i, t] / coverage[i]
    return P


@numba.njit(cache=True)
def mel_fista_steps(F_indptr, F_indices, F_data, Ft_indptr, Ft_indices, Ft_data, M, step, momenta, P, Y):
    """FISTA steps for ``min ||F P - M||^2, P >= 0`` from the state (P, Y), two arrays, in place; parameters
    as ``numpy_backend.mel_fista_steps`` (without a Python step per iteration: a stream inverts a frame or
    two at a time)."""
    step = np.float32(step)
    n_mels, T = M.shape
    bins = P.shape[0]
    residual = np.empty((n_mels, T), dtype=np.float32)
    gradient = np.empty((bins, T), dtype=np.float32)
    for momentum in momenta:
        _csr_times(F_indptr, F_indices, F_data, Y, residual)
        for i in range(n_mels):
            for t in range(T):
                residual[i, t] = residual[i, t] - M[i, t]
        _csr_times(Ft_indptr, Ft_indices, Ft_data, residual, gradient)
        for i in range(bins):
            for t in range(T):
                value = Y[i, t] - step * gradient[i, t]
                P_next = value if value > 0 else np.float32(0.0)
                Y[i, t] = P_next + momentum * (P_next - P[i, t])
                P[i, t] = P_next
    return P
