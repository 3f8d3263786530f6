"""nstaudio.kernels.products: products that BLAS computes on one thread, in blocks fixed by the shapes.

Each is checked against numpy's product in float64 (to float32's rounding), and against itself
on 1, 2, 3 and 4 threads bit for bit, over shapes hypothesis draws for every way a product is
cut (rows, columns, the sum) and for views of larger arrays.
"""

import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from nstaudio.kernels import blas_threads, cpu, products
from nstaudio.kernels.thread_share import limit_threads

THREADS = (1, 2, 3, 4)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few rows, so that small products are cut as large ones are, and run in threads."""
    monkeypatch.setattr(products, "MIN_BLOCK", 4)
    monkeypatch.setattr(products, "MIN_DEPTH", 8)
    monkeypatch.setattr(products, "PARALLEL_MACS", 1)


def operands(rng, M, K, N, layout):
    """a (M, K) and b (K, N), each C-ordered, a transpose, or a view into a larger array."""
    def one(rows, cols, kind):
        if kind == "transposed":
            return rng.standard_normal((cols, rows)).astype(np.float32).T
        if kind == "view":
            return rng.standard_normal((rows + 3, cols + 5)).astype(np.float32)[2:2 + rows, 1:1 + cols]
        return rng.standard_normal((rows, cols)).astype(np.float32)
    return one(M, K, layout[0]), one(K, N, layout[1])


LAYOUTS = st.tuples(*[st.sampled_from(["c", "transposed", "view"])] * 2)


@pytest.mark.usefixtures("small_blocks")
@settings(max_examples=60, deadline=None)
@given(M=st.integers(1, 70), K=st.integers(1, 200), N=st.integers(1, 70), layout=LAYOUTS, seed=st.integers(0, 99))
def test_matmul_is_the_product_and_the_same_on_any_thread_count(M, K, N, layout, seed):
    a, b = operands(np.random.default_rng(seed), M, K, N, layout)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    results = []
    for threads in THREADS:
        with limit_threads(threads):
            results.append(products.matmul(a, b))
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    np.testing.assert_array_less(np.abs(results[0] - exact), 8 * K * np.finfo(np.float32).eps * scale + 1e-30)
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])


@pytest.mark.usefixtures("small_blocks")
@settings(max_examples=40, deadline=None)
@given(M=st.integers(1, 60), K=st.integers(1, 300), transposed=st.booleans(), seed=st.integers(0, 99))
def test_gram_is_a_times_its_transpose_exactly_symmetric_on_any_thread_count(M, K, transposed, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((K, M) if transposed else (M, K)).astype(np.float32)
    a = a.T if transposed else a
    exact = a.astype(np.float64) @ a.T.astype(np.float64)
    results = []
    for threads in THREADS:
        with limit_threads(threads):
            results.append(products.gram(a, out=np.full((M, M), np.nan, np.float32)))
    scale = np.abs(a).astype(np.float64) @ np.abs(a.T).astype(np.float64)
    np.testing.assert_array_less(np.abs(results[0] - exact), 8 * K * np.finfo(np.float32).eps * scale + 1e-30)
    np.testing.assert_array_equal(results[0], results[0].T)
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])


@pytest.mark.parametrize("shape, axis", [((4096, 11275, 250), "rows"),   # (M, K, N): the default conv of 6 s
                                         ((250, 4096, 250), "depth"),   # F^T F, F^T S of the kernel form
                                         ((64, 512, 44000), "columns"),  # a network layer over a batch
                                         ((100, 100, 100), "rows")])
def test_the_cut_follows_from_the_shapes(shape, axis):
    M, K, N = shape
    got, parts = products.plan(M, N, K)
    assert got == axis
    length = {"rows": shape[0], "columns": shape[2], "depth": shape[1]}[axis]
    assert parts[0][0] == 0 and parts[-1][1] == length
    assert all(stop == start for (_, stop), (start, _) in zip(parts[:-1], parts[1:]))
    assert len(parts) <= products.MAX_BLOCKS


@pytest.mark.usefixtures("small_blocks")
def test_a_failing_block_raises_in_the_caller_and_releases_blas():
    a = np.ones((40, 8), np.float32)
    with limit_threads(2), pytest.raises(ValueError):
        products.matmul(a, np.ones((8, 40), np.float32), out=np.empty((40, 41), np.float32))
    assert blas_threads._Process.holders == 0


def test_blas_is_held_on_one_thread_and_given_back_as_it_was():
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads_now():
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    with threadpool_limits(2, user_api="blas"):
        with blas_threads.one_blas_thread():
            with blas_threads.one_blas_thread():  # re-entrant
                assert blas_threads_now() == {1}
            assert blas_threads_now() == {1}
        assert blas_threads_now() == {2}


def test_concurrent_holds_keep_blas_on_one_thread_until_the_last_ends():
    from threadpoolctl import threadpool_info, threadpool_limits

    inside, release = threading.Barrier(3), threading.Event()
    seen = []

    def hold():
        with blas_threads.one_blas_thread():
            inside.wait()
            release.wait(30)
            seen.append({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})

    with threadpool_limits(2, user_api="blas"):
        workers = [threading.Thread(target=hold) for _ in range(2)]
        for worker in workers:
            worker.start()
        inside.wait(30)
        release.set()
        for worker in workers:
            worker.join(30)
        assert seen == [{1}, {1}]
        assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} == {2}


@pytest.mark.usefixtures("small_blocks")
def test_the_cpu_backends_style_losses_are_the_same_on_any_thread_count():
    """The backend's reductions (prange loops) add their rows' totals in order: the same float64 sum."""
    rng = np.random.default_rng(3)
    F = np.maximum(rng.standard_normal((48, 40)).astype(np.float32), 0)
    S = np.maximum(rng.standard_normal((48, 30)).astype(np.float32), 0)
    Fc = np.maximum(rng.standard_normal((48, 40)).astype(np.float32), 0)
    G = products.gram(S) / np.float32(30)
    seen = []
    for threads in THREADS:
        with limit_threads(threads):
            kernel_value, kernel_grad = cpu.style_loss_kernel(F, S, 1.0)
            nxn_value, nxn_grad = cpu.style_loss_nxn(F, G)
            _, content = cpu.relu_content(F - 0.5, Fc)
            seen.append((kernel_value, kernel_grad.copy(), nxn_value, nxn_grad.copy(), content, cpu.sum_squares(F)))
    for values in seen[1:]:
        for got, first in zip(values, seen[0]):
            np.testing.assert_array_equal(got, first)
