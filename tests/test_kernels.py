"""Every kernel of the fast backends against the numpy reference, on shapes hypothesis draws."""

import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from nstaudio.errors import BackendError, ParameterError
from nstaudio.kernels import available_backends, cpu, get_backend, numpy_backend as ref
from nstaudio.spectral import fast_griffin_lim

FAST = [cpu]

shapes = st.tuples(st.integers(1, 9), st.integers(1, 12), st.integers(1, 5), st.integers(0, 20))


def _problem(N, C, K, extra, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    T = K + extra
    X = rng.standard_normal((C, T)).astype(dtype)
    W = rng.standard_normal((N, C, K)).astype(dtype)
    return X, W


@pytest.mark.parametrize("backend", FAST, ids=lambda b: b.name)
@settings(max_examples=40, deadline=None)
@given(shape=shapes, block=st.sampled_from([1, 3, 1024]))
def test_conv1d_and_adjoint_match_reference(backend, shape, block):
    X, W = _problem(*shape)
    Wp = backend.prepare_weights(W)
    with _block(backend, block):
        Y = backend.conv1d(X, Wp)
        np.testing.assert_allclose(Y, ref.conv1d(X, W), rtol=1e-10, atol=1e-10)
        dY = np.random.default_rng(1).standard_normal(Y.shape)
        np.testing.assert_allclose(backend.conv1d_adjoint(dY, Wp, X.shape[1]),
                                   ref.conv1d_adjoint(dY, W, X.shape[1]), rtol=1e-10, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(shape=shapes)
def test_conv1d_adjoint_is_the_adjoint(shape):
    """<conv(X), dY> == <X, conv^T(dY)> for the reference itself."""
    X, W = _problem(*shape)
    Y = ref.conv1d(X, W)
    dY = np.random.default_rng(2).standard_normal(Y.shape)
    np.testing.assert_allclose(np.sum(Y * dY), np.sum(X * ref.conv1d_adjoint(dY, W, X.shape[1])), rtol=1e-10)


@pytest.mark.parametrize("backend", FAST, ids=lambda b: b.name)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_content", [True, False])
def test_relu_content_and_backward_match_reference(backend, dtype, with_content):
    rng = np.random.default_rng(3)
    F_pre = rng.standard_normal((7, 13)).astype(dtype)
    Fc = np.maximum(rng.standard_normal((7, 13)), 0).astype(dtype) if with_content else None
    F_ref, c_ref = ref.relu_content(F_pre, Fc)
    F, c = backend.relu_content(F_pre.copy(), Fc)
    np.testing.assert_array_equal(F, F_ref)
    np.testing.assert_allclose(c, c_ref, rtol=1e-6)
    dF = rng.standard_normal((7, 13)).astype(dtype)
    expected = ref.relu_content_backward(F_ref, Fc, dF.copy(), 0.3)
    got = backend.relu_content_backward(F, Fc, dF.copy(), 0.3)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", [ref, *FAST], ids=lambda b: b.name)
@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 10), T=st.integers(1, 15), Ts=st.integers(1, 15))
def test_gram_forms_agree(backend, N, T, Ts):
    """The kernel form equals the N x N form, value and gradient, on every backend."""
    rng = np.random.default_rng(N * 100 + T)
    F = np.maximum(rng.standard_normal((N, T)), 0)
    S_hat = np.maximum(rng.standard_normal((N, Ts)), 0) / np.sqrt(Ts)
    G_s = S_hat @ S_hat.T
    v_ref, d_ref = ref.style_loss_nxn(F, G_s)
    v1, d1 = backend.style_loss_nxn(F, G_s)
    v2, d2 = backend.style_loss_kernel(F, S_hat, float(np.sum(G_s**2)))
    np.testing.assert_allclose([v1, v2], [v_ref, v_ref], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(d1, d_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(d2, d_ref, rtol=1e-9, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(B=st.integers(1, 3), C=st.integers(1, 4), K=st.integers(1, 5), stride=st.integers(1, 3),
       padding=st.integers(0, 3), T=st.integers(1, 12), extra=st.integers(0, 2),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_strided_windows_and_their_overlap_match_reference(B, C, K, stride, padding, T, extra, dtype):
    """The conv layers' im2col / col2im (channels first), and that one is the other's adjoint."""
    rng = np.random.default_rng(T)
    T_out = (T + 2 * padding - K) // stride + 1 + extra  # extra: windows past the padded end read zeros
    if T_out < 1:
        return
    x = rng.standard_normal((C, B, T)).astype(dtype)
    cols = np.empty((C, K, B, T_out), dtype)
    cpu.strided_windows_channel_major(x, K, stride, padding, cols)
    np.testing.assert_array_equal(cols, ref.strided_windows_channel_major(x, K, stride, padding,
                                                                          np.full_like(cols, np.nan)))
    z = rng.standard_normal((C, K, B, T_out)).astype(dtype)
    bias = rng.standard_normal(C).astype(dtype)
    out = np.empty((C, B, T), dtype)
    cpu.overlap_windows_channel_major(z, stride, padding, bias, out)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    expected = ref.overlap_windows_channel_major(z, stride, padding, bias, np.full((C, B, T), np.nan, dtype))
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)
    cpu.overlap_windows_channel_major(z, stride, padding, np.zeros(C, dtype), out)
    np.testing.assert_allclose(np.sum(out * x), np.sum(z * cols), rtol=tol, atol=tol)


def test_sum_squares_accumulates_in_float64():
    A = np.full((1000, 1000), 1e-3, dtype=np.float32) + np.float32(1.0)
    assert abs(cpu.sum_squares(A) - 1e6 * float(np.float32(1.001)) ** 2) < 1e-3


def test_dispatch():
    assert get_backend("numpy") is ref
    assert get_backend("cpu") is cpu
    assert get_backend("auto").name == available_backends()[0]
    with pytest.raises(ParameterError, match="device"):
        get_backend("tpu")


def test_cuda_unavailable_is_a_clear_error():
    if "cuda" in available_backends():
        pytest.skip("a usable CUDA backend is present")
    with pytest.raises(BackendError, match="cuda"):
        get_backend("cuda")


class _block:
    """Temporarily set the im2col block size so block boundaries get exercised (in the module
    that holds the backend's convolution)."""

    def __init__(self, backend, size):
        self.backend, self.size = sys.modules[backend.conv1d.__module__], size

    def __enter__(self):
        self.saved = self.backend._BLOCK
        self.backend._BLOCK = self.size

    def __exit__(self, *exc):
        self.backend._BLOCK = self.saved


@pytest.mark.parametrize("backend", FAST, ids=lambda b: b.name)
@pytest.mark.parametrize("n_fft,hop,center", [(256, 64, True), (250, 70, True), (128, 128, False), (64, 20, False)])
def test_griffin_lim_matches_reference(backend, n_fft, hop, center):
    rng = np.random.default_rng(n_fft + hop)
    T = 13
    S = rng.random((n_fft // 2 + 1, T)).astype(np.float32)
    angles = np.exp(2j * np.pi * rng.random(S.shape)).astype(np.complex64)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    opts = dict(window=window, hop_length=hop, center=center, momentum=0.99, n_iter=7)
    y_ref, h_ref = fast_griffin_lim(ref, S, angles, **opts)
    y, h = fast_griffin_lim(backend, S, angles, **opts)
    assert y.shape == y_ref.shape == (n_fft + hop * (T - 1),)
    np.testing.assert_allclose(backend.to_numpy(y), y_ref, atol=1e-4 * np.max(np.abs(y_ref)))
    np.testing.assert_allclose(h, h_ref, atol=0.01)


@pytest.mark.parametrize("backend", FAST, ids=lambda b: b.name)
def test_overlap_add_matches_reference(backend):
    from nstaudio.spectral import overlap_add

    rng = np.random.default_rng(0)
    for n_fft, hop, T in [(16, 4, 9), (15, 4, 5), (8, 8, 3), (10, 3, 1)]:
        frames = rng.standard_normal((T, n_fft)).astype(np.float32)
        window = rng.random(n_fft).astype(np.float32)
        weights = rng.random(n_fft + hop * (T - 1)).astype(np.float32)
        out = np.empty_like(weights)
        backend.overlap_add_normalized(frames, window, hop, weights, out)
        np.testing.assert_allclose(out, overlap_add(frames * window, hop) * weights, rtol=1e-5, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 3), C=st.integers(1, 4), K=st.integers(1, 5), stride=st.integers(1, 3),
       padding=st.integers(0, 3), T=st.integers(1, 12), channel_major=st.booleans())
def test_channel_major_windows_match_reference(B, C, K, stride, padding, T, channel_major):
    """The conv layers' windows with channels first, from a channel-major or a batch-major activation."""
    rng = np.random.default_rng(T + 7)
    T_out = (T + 2 * padding - K) // stride + 1
    if T_out < 1:
        return
    x = rng.standard_normal((C, B, T)).astype(np.float32)
    if not channel_major:  # a (B, C, T) array seen channels first: not contiguous
        x = np.ascontiguousarray(x.transpose(1, 0, 2)).transpose(1, 0, 2)
    cols = np.empty((C, K, B, T_out), np.float32)
    cpu.strided_windows_channel_major(x, K, stride, padding, cols)
    np.testing.assert_array_equal(cols, ref.strided_windows_channel_major(x, K, stride, padding,
                                                                          np.full_like(cols, np.nan)))
    z = rng.standard_normal((C, K, B, T_out)).astype(np.float32)
    bias = rng.standard_normal(C).astype(np.float32)
    out = np.empty((C, B, T), np.float32)
    cpu.overlap_windows_channel_major(z, stride, padding, bias, out)
    expected = ref.overlap_windows_channel_major(z, stride, padding, bias, np.full((C, B, T), np.nan, np.float32))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
