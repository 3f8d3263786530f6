"""Calls from several threads at once (issue 20): each caller gets exactly what a serial call gives.

DSP hosts call from their own threads and Dask workers run tasks on threads; numba's
workqueue layer aborted the whole process on concurrent parallel regions, and the cpu
backend's scratch buffers were shared by every call. The abort cases run in a child
process, so that a regression fails the test instead of killing the test run.
"""

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import nstaudio as nst

from conftest import harmonic_tone

SETTINGS = dict(n_filters=32, iterations=4, phase_iters=4, n_fft=512, device="cpu", tolerance=0)


def jobs(count):
    """``count`` different (content, style) pairs."""
    return [(harmonic_tone(1.0, f0=180 + 40 * i, seed=i), harmonic_tone(1.0, f0=300 + 25 * i, seed=10 + i))
            for i in range(count)]


def concurrently(function, arguments, threads):
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda args: function(*args), arguments))


@pytest.mark.parametrize("threads", [2, 4])
def test_concurrent_stylize_equals_serial(threads):
    pairs = jobs(threads)
    run = lambda content, style: nst.stylize(content, style, 22050, **SETTINGS)  # noqa: E731
    serial = [run(*pair) for pair in pairs]
    parallel = concurrently(run, pairs, threads)
    for one, other in zip(serial, parallel):
        np.testing.assert_array_equal(other, one)


@pytest.mark.parametrize("threads", [2, 4])
def test_concurrent_spectral_functions_equal_serial(threads):
    signals = [harmonic_tone(2.0, f0=200 + 50 * i, seed=i) for i in range(threads)]

    def work(y):
        S = nst.stft(y, n_fft=1024)
        back = nst.istft(S, length=len(y))
        rebuilt = nst.griffin_lim(np.abs(S), n_iter=8, seed=0, length=len(y), n_fft=1024, device="cpu")
        return back, rebuilt

    serial = [work(y) for y in signals]
    parallel = concurrently(work, [(y,) for y in signals], threads)
    for (back, rebuilt), (back2, rebuilt2) in zip(serial, parallel):
        np.testing.assert_array_equal(back2, back)
        np.testing.assert_array_equal(rebuilt2, rebuilt)


def test_concurrent_training_and_model_application_equal_serial():
    corpus = [harmonic_tone(2.0, f0=150 + 60 * i, seed=i) for i in range(2)]
    train = lambda seed: nst.train_lossnet(corpus, 22050, steps=3, channels=(4, 4, 4, 4), n_fft=256,  # noqa: E731
                                           hop_length=64, crop=16, batch_size=2, seed=seed, device="cpu")
    serial = [train(seed) for seed in (0, 1)]
    parallel = concurrently(train, [(0,), (1,)], 2)
    for one, other in zip(serial, parallel):
        for layer, values in one.params.items():
            for name, value in values.items():
                np.testing.assert_array_equal(other.params[layer][name], value)

    from nstaudio.nn.inference import apply_network

    specs = [np.abs(nst.stft(y, n_fft=256, hop_length=64)).astype(np.float32)[None] for y in corpus]
    net = serial[0]
    apply = lambda X: apply_network(net.arch, net.params, net.state, X)  # noqa: E731
    for one, other in zip([apply(X) for X in specs], concurrently(apply, [(X,) for X in specs], 2)):
        np.testing.assert_array_equal(other, one)


def run_child(code, env=None):
    """Run ``code`` in a fresh Python outside the checkout; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})}, cwd=os.path.expanduser("~"))


CHILD_STYLIZE = """
    import threading
    import numpy as np
    import nstaudio as nst

    def tone(f0):
        t = np.arange(22050) / 22050
        return (0.3 * np.sin(2 * np.pi * f0 * t) + 0.05 * np.sin(2 * np.pi * 3.1 * f0 * t)).astype(np.float32)

    settings = dict(n_filters=32, iterations=6, phase_iters=6, n_fft=512, device="cpu", tolerance=0)
    results = {}

    def work(i):
        results[i] = nst.stylize(tone(200 + 30 * i), tone(330), 22050, **settings)
"""


def test_host_parallel_function_beside_stylize():
    """The host's own numba parallel code runs while nstaudio stylizes in another thread: nobody aborts."""
    proc = run_child(CHILD_STYLIZE + """
    import numba

    @numba.njit(parallel=True)
    def host_sum(x):
        total = 0.0
        for i in numba.prange(x.shape[0]):
            total += x[i]
        return total

    worker = threading.Thread(target=work, args=(0,))
    worker.start()
    x = np.ones(1_000_000)
    sums = [host_sum(x) for _ in range(300)]
    worker.join()
    assert all(s == 1_000_000 for s in sums) and np.all(np.isfinite(results[0]))
    print("layer", numba.threading_layer())
    """)
    assert proc.returncode == 0, proc.stderr
    assert "layer tbb" in proc.stdout or "layer omp" in proc.stdout, proc.stdout


def test_host_choice_of_an_unsafe_layer_is_kept_and_serialised():
    """A host that picked workqueue keeps it; nstaudio's own concurrent calls then take turns instead of aborting."""
    proc = run_child(CHILD_STYLIZE + """
    import numba
    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and all(np.all(np.isfinite(y)) for y in results.values())
    print("layer", numba.threading_layer())
    """, env={"NUMBA_THREADING_LAYER": "workqueue"})
    assert proc.returncode == 0, proc.stderr
    assert "layer workqueue" in proc.stdout


def test_processes_forked_after_parallel_work_still_stylize():
    """GNU OpenMP cannot run in a forked child (numba terminates it): the kernels run serially there instead."""
    proc = run_child(CHILD_STYLIZE + """
    import multiprocessing

    def forked(i):
        work(i)
        return results[i]

    work(0)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        children = pool.map(forked, [0, 0])
    for y in children:
        np.testing.assert_array_equal(y, results[0])
    print("children agree")
    """)
    assert proc.returncode == 0, proc.stderr
    assert "children agree" in proc.stdout


def test_openmp_loaded_spinning_by_the_host_is_not_used():
    """A host that loaded GNU OpenMP first (torch does) fixed its spinning wait policy: nstaudio keeps off it."""
    proc = run_child("""
    import ctypes, os
    os.environ.pop("OMP_WAIT_POLICY", None)
    ctypes.CDLL("libgomp.so.1")
    import numba
    import numpy as np
    import nstaudio as nst
    y = (0.3 * np.sin(np.arange(22050) * 0.05)).astype(np.float32)
    nst.stylize(y, y, 22050, n_filters=8, iterations=2, phase_iters=2, n_fft=512, device="cpu")
    print("layer", numba.threading_layer())
    """, env={"OMP_WAIT_POLICY": ""})
    assert proc.returncode == 0, proc.stderr
    assert "layer omp" not in proc.stdout and "layer " in proc.stdout


def test_forking_while_another_thread_holds_the_region_lock():
    """Under workqueue (with the lock), a child forked while another thread is inside a kernel must not inherit
    the lock held: nobody in the child would ever release it."""
    proc = run_child("""
    import multiprocessing, os, threading
    import numpy as np
    import nstaudio as nst
    from nstaudio.kernels import threading_layer

    S = np.abs(nst.stft(np.sin(np.arange(44100) * 0.05).astype(np.float32), n_fft=512))
    holding, release = threading.Event(), threading.Event()

    def inside_a_kernel():  # as a worker thread is while its parallel region runs
        with threading_layer._Process.region_lock:
            holding.set()
            release.wait()

    worker = threading.Thread(target=inside_a_kernel)
    worker.start()
    holding.wait()
    pool = multiprocessing.get_context("fork").Pool(1)
    try:
        done = pool.apply_async(nst.griffin_lim, (S,), dict(n_iter=2, n_fft=512, device="cpu")).get(timeout=30)
    except multiprocessing.TimeoutError:
        print("the forked child hung on the inherited lock", flush=True)
        os._exit(3)  # the pool could not be shut down cleanly either
    pool.close()
    pool.join()
    release.set()
    worker.join()
    print("forked child ran", done.shape)
    """, env={"NUMBA_THREADING_LAYER": "workqueue"})
    assert proc.returncode == 0, proc.stderr
    assert "forked child ran" in proc.stdout
