"""analyse_style: the style half of stylize, done once, gives exactly what stylize gives by itself.

Also the thread shares (``nstaudio.kernels.thread_share``) that batch workers run under.
"""

import threading

import numba
import numpy as np
import pytest

import nstaudio as nst
from nstaudio.errors import ParameterError
from nstaudio.kernels.thread_share import fft_workers, limit_threads
from nstaudio.methods.optimize import optimize, seeded_filters, style_analysis
from nstaudio.objective import StyleTargets

from conftest import SR, harmonic_tone

SMALL = dict(n_filters=24, width=3, n_fft=256, iterations=6, seed=5)


@pytest.fixture(scope="module")
def clips():
    content = np.stack([harmonic_tone(0.6, seed=1), harmonic_tone(0.6, f0=247, seed=2)])
    styles = [harmonic_tone(0.8, f0=330, seed=3), harmonic_tone(0.5, sr=16000, f0=180, seed=4)]
    return content, styles


@pytest.mark.parametrize("method, settings", [
    ("optimize", dict(SMALL, device="cpu")),
    ("optimize", dict(SMALL, device="numpy", style_weights=[0.25, 0.75], spectral_weight=3.0)),
    ("timedomain", dict(SMALL, style_weights=[2, 1], iterations=3)),
])
def test_analysed_style_gives_what_stylize_gives(clips, method, settings):
    content, styles = clips
    srs = [SR, 16000]
    expected, expected_info = nst.stylize(content, styles, SR, style_sr=srs, method=method, return_info=True,
                                          **settings)
    analysis = nst.analyse_style(styles, srs, method=method, **settings)  # the same settings as stylize's
    got, info = nst.stylize(content, analysis, SR, method=method, return_info=True, **settings)
    np.testing.assert_array_equal(got, expected)
    assert info.loss == expected_info.loss and info.iterations == expected_info.iterations
    assert analysis.method == method and analysis.frames > 0


def test_an_analysis_serves_only_the_settings_it_was_made_for(clips):
    content, styles = clips
    analysis = nst.analyse_style(styles[0], SR, **SMALL)
    for wrong, named in [(dict(SMALL, n_filters=32), "n_filters=32"), (dict(SMALL, seed=6), "seed=6"),
                         (dict(SMALL, n_fft=512), "n_fft=512")]:
        with pytest.raises(ParameterError, match=named):
            nst.stylize(content, analysis, SR, **wrong)
    with pytest.raises(ParameterError, match="made for the optimize method"):
        nst.stylize(content, analysis, SR, method="timedomain", **SMALL)
    two = nst.analyse_style(styles, [SR, 16000], style_weights=[1, 3], **SMALL)
    with pytest.raises(ParameterError, match=r"style_weights=\[1, 1\]"):
        nst.stylize(content, two, SR, style_weights=[1, 1], **SMALL)
    with pytest.raises(ParameterError, match=r"style_weights=\[1\]"):
        nst.stylize(content, two, SR, style_weights=[1], **SMALL)
    nst.stylize(content, two, SR, style_weights=[2, 6], **dict(SMALL, iterations=1))  # the same weights
    with pytest.raises(ParameterError, match="style_sr"):
        nst.stylize(content, analysis, SR, style_sr=SR, **SMALL)
    # settings it does not depend on may differ
    nst.stylize(content[0], analysis, SR, **dict(SMALL, alpha=0.5, iterations=1))


def test_analyse_style_refuses_what_it_cannot_analyse(clips):
    _, styles = clips
    with pytest.raises(ParameterError, match="not sr_work_typo"):
        nst.analyse_style(styles[0], SR, sr_work_typo=1)
    with pytest.raises(ParameterError, match="not content"):
        nst.analyse_style(styles[0], SR, content=styles[0])
    with pytest.raises(ParameterError, match="needs a model"):
        nst.analyse_style(styles[0], SR, method="feedforward")
    with pytest.raises(ParameterError, match="style_sr"):
        nst.analyse_style(styles[0])
    with pytest.raises(nst.AudioError, match="too short"):
        nst.analyse_style(styles[0][:100], SR, **SMALL)


def test_style_targets_need_their_filters(clips):
    content, styles = clips
    spec = np.log1p(np.abs(nst.stft(content, n_fft=256, hop_length=64))).astype(np.float32)
    style_spec = np.log1p(np.abs(nst.stft(styles[0], n_fft=256, hop_length=64))).astype(np.float32)
    options = dict(n_filters=8, width=3, seed=1, style_weights=None, device="numpy")
    filters, targets, expected_targets = style_analysis([style_spec], options)
    assert expected_targets is None  # made for init="expected" only
    assert isinstance(targets, StyleTargets) and targets.features.shape[0] == 8
    np.testing.assert_array_equal(filters, seeded_filters(8, 129, 3, 1))
    with pytest.raises(ParameterError, match="filters they were computed with"):
        optimize(spec, targets, n_filters=8, width=3, seed=1, iterations=1, device="numpy")
    with pytest.raises(ParameterError, match="filters of shape"):
        optimize(spec, targets, filters=filters[:4], n_filters=8, width=3, seed=1, iterations=1, device="numpy")
    from_targets, _ = optimize(spec, targets, filters=filters, n_filters=8, width=3, seed=1, iterations=3,
                               device="numpy")
    from_styles, _ = optimize(spec, [style_spec], n_filters=8, width=3, seed=1, iterations=3, device="numpy")
    np.testing.assert_array_equal(from_targets, from_styles)


def test_two_threads_sharing_one_analysis_equal_one_serial_run(clips):
    content, styles = clips
    analysis = nst.analyse_style(styles[0], SR, **SMALL)
    filters, targets, _ = analysis.prepared
    assert not filters.flags.writeable and not targets.features.flags.writeable  # shared: read only
    serial = [nst.stylize(content[i], analysis, SR, **SMALL) for i in range(2)]
    results = [None, None]

    def work(i):
        results[i] = nst.stylize(content[i], analysis, SR, **SMALL)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, expected in zip(results, serial):
        np.testing.assert_array_equal(got, expected)


def test_thread_shares_are_each_threads_own():
    assert fft_workers() == -1
    before = numba.get_num_threads()
    seen = {}
    barrier = threading.Barrier(2)

    def work(name, share):
        with limit_threads(share):
            barrier.wait()  # both inside their limit at once
            seen[name] = (numba.get_num_threads(), fft_workers())
            barrier.wait()

    threads = [threading.Thread(target=work, args=("one", 1)), threading.Thread(target=work, args=("many", 64))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen["one"] == (1, 1)
    assert seen["many"] == (numba.config.NUMBA_NUM_THREADS, 64)
    assert numba.get_num_threads() == before and fft_workers() == -1
    with pytest.raises(ValueError):
        with limit_threads(0):
            pass
