"""The numba.cuda kernels of the cuda backend, run on the CPU by numba's CUDA simulator.

Run with ``NUMBA_ENABLE_CUDASIM=1`` (``tests/test_cuda_simulator.py`` does that in a
subprocess, so a plain ``pytest`` covers them). Kernels are launched with tiny blocks and
several blocks, on odd sizes, so grid-stride indexing and bounds are exercised; each result
is compared with the numpy reference.
"""

import numpy as np
import pytest
from numba import config

from nstaudio.kernels import cuda_kernels as ck, numpy_backend as ref
from nstaudio.kernels.cpu import window_sum_weights

pytestmark = pytest.mark.skipif(not config.ENABLE_CUDASIM, reason="needs NUMBA_ENABLE_CUDASIM=1")

# (blocks, threads): fewer threads than items, several blocks, and one thread alone
LAUNCHES = [(3, 4), (2, 7), (1, 1)]


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("C,T,K,t0,width", [(3, 9, 2, 0, 8), (5, 13, 4, 3, 5), (1, 4, 1, 1, 2)])
def test_im2col_and_col2im(launch, C, T, K, t0, width):
    rng = np.random.default_rng(C * T)
    X = rng.standard_normal((C, T)).astype(np.float32)
    cols = np.full((K * C, width), np.nan, np.float32)
    ck.im2col[launch](X, K, t0, cols)
    expected = np.concatenate([X[:, t0 + k:t0 + k + width] for k in range(K)])
    np.testing.assert_array_equal(cols, expected)

    out = rng.standard_normal((C, T)).astype(np.float32)
    expected_out = out.copy()
    for k in range(K):
        expected_out[:, t0 + k:t0 + k + width] += cols[k * C:(k + 1) * C]
    ck.col2im_add[launch](cols, K, t0, out)
    np.testing.assert_allclose(out, expected_out, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("with_content", [True, False])
def test_relu_content_and_mask(launch, with_content):
    rng = np.random.default_rng(1)
    F_pre = rng.standard_normal((7, 11)).astype(np.float32)
    Fc = np.maximum(rng.standard_normal((7, 11)), 0).astype(np.float32)
    F_ref, c_ref = ref.relu_content(F_pre, Fc if with_content else None)
    F = F_pre.copy()
    total = np.zeros(1)
    ck.relu_content[launch](F, Fc, with_content, total)
    np.testing.assert_array_equal(F, F_ref)
    assert total[0] == pytest.approx(c_ref, rel=1e-6)

    dF = rng.standard_normal((7, 11)).astype(np.float32)
    expected = ref.relu_content_backward(F_ref, Fc if with_content else None, dF.copy(), 0.3)
    ck.mask_content_grad[launch](F, Fc, dF, np.float32(0.6), with_content)
    np.testing.assert_allclose(dF, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("launch", LAUNCHES)
def test_sum_squares(launch):
    A = np.random.default_rng(2).standard_normal((13, 5)).astype(np.float32)
    total = np.zeros(1)
    ck.sum_squares[launch](A, total)
    assert total[0] == pytest.approx(np.sum(A.astype(np.float64) ** 2), rel=1e-12)


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("n_fft,hop,T", [(16, 4, 9), (15, 4, 5), (8, 8, 3), (10, 3, 1)])
def test_framing_and_overlap_add(launch, n_fft, hop, T):
    from nstaudio.spectral import overlap_add

    rng = np.random.default_rng(n_fft * hop)
    frames = rng.standard_normal((T, n_fft)).astype(np.float32)
    window = rng.random(n_fft).astype(np.float32)
    weights = window_sum_weights(window, hop, T, n_fft // 2)
    out = np.full(weights.shape, np.nan, np.float32)
    ck.overlap_add_normalized[launch](frames, window, hop, weights, out)
    np.testing.assert_allclose(out, overlap_add(frames * window, hop) * weights, rtol=1e-5, atol=1e-6)

    framed = np.full((T, n_fft), np.nan, np.float32)
    ck.frame_windowed[launch](out, window, hop, framed)
    expected = np.stack([out[t * hop:t * hop + n_fft] * window for t in range(T)])
    np.testing.assert_allclose(framed, expected, rtol=1e-6)


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("use_previous", [True, False])
def test_phase_update(launch, use_previous):
    rng = np.random.default_rng(3)
    shape = (5, 9)
    S = rng.random(shape).astype(np.float32)
    rebuilt = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    previous = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    coef = np.float32(0.99 / 1.99)
    a = rebuilt - coef * previous if use_previous else rebuilt
    expected = S * a / (np.abs(a) + 1e-16)
    spec = np.zeros(shape, np.complex64)
    total = np.zeros(1)
    ck.phase_update[launch](S, rebuilt, previous, coef, use_previous, spec, total)
    np.testing.assert_allclose(spec, expected, rtol=1e-5, atol=1e-6)
    assert total[0] == pytest.approx(np.sum((S - np.abs(rebuilt)).astype(np.float64) ** 2), rel=1e-5)


def test_launch_config_covers_everything():
    assert ck.launch_config(1) == (1, ck.THREADS)
    blocks, threads = ck.launch_config(10**6)
    assert blocks * threads >= 10**6
    assert ck.launch_config(10**12)[0] == 65535  # the grid-stride loop covers the rest


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("B,C,K,stride,padding,T,extra", [(2, 3, 3, 2, 1, 9, 0), (1, 2, 5, 2, 2, 8, 1),
                                                          (2, 1, 2, 3, 0, 7, 2), (1, 2, 1, 1, 0, 4, 0)])
def test_strided_windows_and_overlap(launch, B, C, K, stride, padding, T, extra):
    """The network layers' im2col and its adjoint (with bias), odd strides, paddings and windows past the end."""
    rng = np.random.default_rng(B * C * K + T)
    T_out = (T + 2 * padding - K) // stride + 1 + extra
    x = rng.standard_normal((B, C, T)).astype(np.float32)
    cols = np.full((B, C, K, T_out), np.nan, np.float32)
    ck.strided_windows[launch](x, K, stride, padding, cols)
    np.testing.assert_array_equal(cols, ref.strided_windows(x, K, stride, padding, np.empty_like(cols)))
    z = rng.standard_normal(cols.shape).astype(np.float32)
    bias = rng.standard_normal(C).astype(np.float32)
    out = np.full((B, C, T), np.nan, np.float32)
    ck.overlap_windows[launch](z, stride, padding, bias, out)
    expected = ref.overlap_windows(z, stride, padding, bias, np.empty_like(out))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("launch", LAUNCHES)
def test_arccos_kernel(launch):
    rng = np.random.default_rng(5)
    P = rng.random((6, 9)) + 0.1
    Q = rng.random((5, 9)) + 0.1
    Q[2] = 0  # a silent patch
    U, a2, b2 = (P @ Q.T).astype(np.float32), np.sum(P * P, 1).astype(np.float32), np.sum(Q * Q, 1).astype(np.float32)
    out = [np.full(U.shape, np.nan, np.float32) for _ in range(3)]
    ck.arccos_kernel[launch](U, a2, b2, *out)
    for got, want in zip(out, ref.arccos_kernel(U, a2, b2)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
