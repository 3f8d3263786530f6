"""Hand-written ``numba.cuda`` kernels of the cuda backend.

Importable without CuPy and without a GPU: under ``NUMBA_ENABLE_CUDASIM=1`` the same
kernels run on the CPU, on numpy arrays, which is how CI tests them. On a GPU they take
CuPy arrays through ``__cuda_array_interface__``. Every kernel walks its index space
with a grid-stride loop, so any launch configuration covers every element; the tests
launch them with tiny blocks to exercise the bounds.

Shapes and meanings match the numba CPU kernels in ``nstaudio.kernels.cpu``.
"""

import math

from numba import cuda

# Threads per block for the element-wise kernels on a real GPU.
THREADS = 256


def launch_config(n, threads=None, max_blocks=65535):
    """(blocks, threads) covering ``n`` items with a grid-stride loop (``threads`` default: THREADS)."""
    threads = THREADS if threads is None else threads
    return max(1, min(max_blocks, math.ceil(n / threads))), threads


@cuda.jit
def im2col(X, K, t0, out):
    """``out[k*C + c, j] = X[c, t0 + j + k]``."""
    C = X.shape[0]
    rows, width = out.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for idx in range(start, rows * width, stride):
        row = idx // width
        j = idx - row * width
        k = row // C
        c = row - k * C
        out[row, j] = X[c, t0 + j + k]


@cuda.jit
def col2im_add(cols, K, t0, out):
    """``out[c, t0 + j + k] += cols[k*C + c, j]``; each thread owns one output element (no races)."""
    C = out.shape[0]
    width = cols.shape[1]
    span = width + K - 1  # output columns t0 .. t0 + span - 1 receive something
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for idx in range(start, C * span, stride):
        c = idx // span
        u = idx - c * span  # t - t0
        acc = out[c, t0 + u]
        for k in range(K):
            j = u - k
            if 0 <= j < width:
                acc += cols[k * C + c, j]
        out[c, t0 + u] = acc


@cuda.jit
def relu_content(F, Fc, has_content, total):
    """ReLU in place; if ``has_content``, add ``sum((F - Fc)**2)`` into ``total[0]`` (float64)."""
    N, T = F.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    acc = 0.0
    for idx in range(start, N * T, stride):
        n = idx // T
        t = idx - n * T
        v = F[n, t]
        if v < 0:
            v = 0
            F[n, t] = 0
        if has_content:
            r = float(v) - float(Fc[n, t])
            acc += r * r
    if has_content:
        cuda.atomic.add(total, 0, acc)


@cuda.jit
def mask_content_grad(F, Fc, dF, two_alpha, has_content):
    """``dF = [F > 0] * (dF + two_alpha * (F - Fc))`` in place (content term only if ``has_content``)."""
    N, T = F.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for idx in range(start, N * T, stride):
        n = idx // T
        t = idx - n * T
        if F[n, t] > 0:
            if has_content:
                dF[n, t] += two_alpha * (F[n, t] - Fc[n, t])
        else:
            dF[n, t] = 0


@cuda.jit
def sum_squares(A, total):
    """Add ``sum(A**2)`` (float64) into ``total[0]``, for a 2-D array."""
    rows, cols = A.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    acc = 0.0
    for idx in range(start, rows * cols, stride):
        i = idx // cols
        v = float(A[i, idx - i * cols])
        acc += v * v
    cuda.atomic.add(total, 0, acc)


@cuda.jit
def overlap_add_normalized(frames, window, hop, weights, out):
    """``out[i] = weights[i] * sum_t window[i - t*hop] * frames[t, i - t*hop]``, one thread per sample."""
    T, n_fft = frames.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.shape[0], stride):
        acc = 0.0
        if weights[i] != 0:
            t_hi = min(T - 1, i // hop)
            t_lo = max(0, (i - n_fft) // hop + 1)
            for t in range(t_lo, t_hi + 1):
                j = i - t * hop
                acc += window[j] * frames[t, j]
        out[i] = acc * weights[i]


@cuda.jit
def frame_windowed(y, window, hop, out):
    """``out[t, j] = window[j] * y[t*hop + j]``."""
    T, n_fft = out.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for idx in range(start, T * n_fft, stride):
        t = idx // n_fft
        j = idx - t * n_fft
        out[t, j] = window[j] * y[t * hop + j]


@cuda.jit
def phase_update(S, rebuilt, previous, coef, use_previous, spec_out, total):
    """Fast Griffin-Lim phase step; adds ``sum((S - |rebuilt|)**2)`` into ``total[0]``.

    ``a = rebuilt - coef * previous``; ``spec_out = S * a / (|a| + 1e-16)``.
    """
    T, F = S.shape
    start, stride = cuda.grid(1), cuda.gridsize(1)
    acc = 0.0
    for idx in range(start, T * F, stride):
        t = idx // F
        f = idx - t * F
        re = rebuilt[t, f].real
        im = rebuilt[t, f].imag
        d = S[t, f] - math.sqrt(re * re + im * im)
        acc += float(d) * float(d)
        if use_previous:
            re -= coef * previous[t, f].real
            im -= coef * previous[t, f].imag
        scale = S[t, f] / (math.sqrt(re * re + im * im) + 1e-16)
        spec_out[t, f] = complex(re * scale, im * scale)
    cuda.atomic.add(total, 0, acc)


@cuda.jit
def strided_windows(x, K, stride, padding, out):
    """``out[b, c, k, t] = x[b, c, t*stride + k - padding]``, zero outside x (the network layers' im2col)."""
    B, C, T = x.shape
    _, _, _, T_out = out.shape
    start, step = cuda.grid(1), cuda.gridsize(1)
    for idx in range(start, B * C * K * T_out, step):
        t = idx % T_out
        k = (idx // T_out) % K
        c = (idx // (T_out * K)) % C
        b = idx // (T_out * K * C)
        s = t * stride + k - padding
        out[b, c, k, t] = x[b, c, s] if 0 <= s < T else 0


@cuda.jit
def overlap_windows(cols, stride, padding, bias, out):
    """``out[b, c, s] = bias[c] + sum of cols[b, c, k, t] over t*stride + k - padding = s``.

    One thread per output element gathers its taps (no atomics, no races).
    """
    B, C, K, T = cols.shape
    length = out.shape[2]
    start, step = cuda.grid(1), cuda.gridsize(1)
    for idx in range(start, B * C * length, step):
        s = idx % length
        c = (idx // length) % C
        b = idx // (length * C)
        acc = bias[c]
        for k in range(K):
            q = s + padding - k  # = t * stride
            if q >= 0 and q % stride == 0 and q // stride < T:
                acc += cols[b, c, k, q // stride]
        out[b, c, s] = acc


@cuda.jit
def arccos_kernel(U, a2, b2, kappa, d_u, d_a2):
    """The arc-cosine kernel and its derivatives, element-wise over U (R, S), float64 inside;
    see ``numpy_backend.arccos_kernel``."""
    R, S = U.shape
    two_pi = 2.0 * math.pi
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for idx in range(start, R * S, stride):
        i = idx // S
        j = idx - i * S
        a = float(a2[i])
        u = float(U[i, j])
        ab2 = a * float(b2[j])
        s = math.sqrt(max(ab2 - u * u, 0.0))
        ab = math.sqrt(ab2)
        cos = u / ab if ab > 0 else 0.0
        cos = min(max(cos, -1.0), 1.0)
        rest = math.pi - math.acos(cos)
        kappa[i, j] = (s + rest * u) / two_pi
        d_u[i, j] = rest / two_pi
        d_a2[i, j] = s / (2.0 * two_pi * a) if a > 0 else 0.0
