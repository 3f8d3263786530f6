"""nstaudio.Stream and its parts: each against the offline computation it streams, for any block sizes."""

import gc
import threading
import time
from unittest import mock

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

import nstaudio as nst
from nstaudio.cli.main import main
from nstaudio.kernels import cpu, numpy_backend
from nstaudio.methods.feedforward import feedforward
from nstaudio.methods.gan import gan as gan_method
from nstaudio.models import Network
from nstaudio.nn import gan_features as gan_module
from nstaudio.nn.autoencoder import Architecture, Autoencoder
from nstaudio.nn.melgan import GanArchitecture
from nstaudio.streaming import Stream, frames as frames_module
from nstaudio.streaming.frames import GanFrames, StyleFrames
from nstaudio.streaming.network import IncrementalNetwork
from nstaudio.streaming.phase import PhaseSynthesis
from nstaudio.streaming.resample import StreamingResampler, polyphase_filter

from conftest import harmonic_tone

SR, N_FFT, HOP = 8000, 64, 16


def random_network(arch, seed=0):
    """An untrained network with BatchNorm statistics that are not the identity's."""
    params, state = Autoencoder(arch).init_params(seed=seed)
    rng = np.random.default_rng(seed + 1)
    for values in state.values():
        values["running_mean"][:] = 0.1 * rng.standard_normal(values["running_mean"].shape)
        values["running_var"][:] = 0.5 + rng.random(values["running_var"].shape)
    return params, state


@pytest.fixture(scope="module")
def model():
    arch = Architecture(n_bins=1 + N_FFT // 2, channels=(12, 10, 8, 6), width=5, stride=2)
    params, state = random_network(arch)
    return Network(arch, params, state, {"kind": "style", "sr": SR, "n_fft": N_FFT, "hop_length": HOP})


def in_blocks(x, sizes, step):
    """Feed ``x`` (..., n) to ``step`` in blocks of the given sizes (cycled); the outputs joined on the last axis."""
    out, start, i = [], 0, 0
    while start < x.shape[-1]:
        size = sizes[i % len(sizes)]
        out.append(step(x[..., start:start + size]))
        start += size
        i += 1
    return np.concatenate(out, axis=-1)


@settings(max_examples=15, deadline=None)
@given(rates=st.sampled_from([(44100, 22050), (22050, 44100), (48000, 22050), (16000, 22050), (8000, 8001)]),
       sizes=st.lists(st.integers(1, 300), min_size=1, max_size=5), backend=st.sampled_from([cpu, numpy_backend]))
def test_resampler_equals_the_whole_signal_filtered(rates, sizes, backend):
    x = np.random.default_rng(0).standard_normal((2, 1500)).astype(np.float32)
    resampler = StreamingResampler(*rates, 2, backend=backend)
    y = in_blocks(x, sizes, resampler.process)
    reference = scipy.signal.upfirdn(polyphase_filter(resampler.up, resampler.down), x, resampler.up, resampler.down,
                                     axis=1)
    assert y.shape[1] == resampler.available(x.shape[1]) > 0
    np.testing.assert_allclose(y, reference[:, :y.shape[1]], atol=2e-6)


def test_resampler_filter_is_resample_polys():
    """resample_poly is the same filter, centred: its output is ours ``half / down`` samples earlier."""
    x = harmonic_tone(0.2, 22050)[np.newaxis]
    resampler = StreamingResampler(22050, 44100, 1, backend=cpu)
    y = resampler.process(np.concatenate([x, np.zeros((1, 100), np.float32)], axis=1))
    offline = nst.resample(x, orig_sr=22050, target_sr=44100)
    delay = int(resampler.delay)
    assert delay == resampler.delay == 20
    np.testing.assert_allclose(y[:, delay:delay + offline.shape[1]], offline, atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(stride=st.integers(1, 3), width=st.sampled_from([1, 3, 5, 7]), sizes=st.lists(st.integers(1, 9), min_size=1,
                                                                                       max_size=4),
       backend=st.sampled_from([cpu, numpy_backend]))
def test_incremental_network_equals_one_pass(stride, width, sizes, backend):
    arch = Architecture(n_bins=9, channels=(7, 6, 5, 4), width=width, stride=stride)
    params, state = random_network(arch, seed=stride + width)
    net = Autoencoder(arch)
    net.train(False)
    multiple = stride ** 4
    x = np.random.default_rng(1).random((2, 9, multiple * (4 + -(-60 // multiple)))).astype(np.float32)
    whole = net.forward(params, state, x, keep_caches=False)[0]
    incremental = IncrementalNetwork(arch, params, state, 2, backend=backend)
    y = in_blocks(x, sizes, incremental.process)
    assert y.shape[2] == incremental.available(x.shape[2])
    assert y.shape[2] >= x.shape[2] - 8 * (width // 2) * multiple  # at most the layers' reach
    np.testing.assert_allclose(y, whole[:, :, :y.shape[2]], atol=1e-5)
    # pulled: never more than a limit that grows by fits and starts, then all that is left
    pulled, limits = IncrementalNetwork(arch, params, state, 2, backend=backend), iter(range(0, 10 ** 6, 3))
    parts = [pulled.process(block, next(limits)) for block in np.array_split(x, 7, axis=2)]
    assert sum(p.shape[2] for p in parts) <= 18
    parts.append(pulled.process(x[:, :, :0]))
    np.testing.assert_allclose(np.concatenate(parts, axis=2), y, atol=1e-5)
    # stepped: a frame of a layer at a time between the calls, as a stream works ahead
    stepped, parts = IncrementalNetwork(arch, params, state, 2, backend=backend), []
    for i, block in enumerate(np.array_split(x, 5, axis=2)):
        parts.append(stepped.process(block, 3 * i))
        for _ in range(sizes[i % len(sizes)] * 3):
            worked, frames = stepped.step(10 ** 6)
            parts.append(frames)
    parts.append(stepped.process(x[:, :, :0]))
    np.testing.assert_array_equal(np.concatenate(parts, axis=2), y)  # one product per frame: to the bit
    assert not stepped.step(10 ** 6)[0]


@pytest.mark.parametrize("stride, causal", [(1, True), (2, False)])
def test_the_copies_a_stream_starts_with_cost_a_few_products(stride, causal):
    """A stream starts with copies of its first frame whose outputs are not needed (``reset(skip=...)``):
    what they cost does not grow with their number, and the frames after them are one pass's."""
    arch = Architecture(n_bins=9, channels=(7, 6, 5, 4), width=5, stride=stride, causal=causal)
    params, state = random_network(arch, seed=3)
    rng = np.random.default_rng(4)
    copies, fresh = 4 * stride ** 4, 16 * stride ** 4
    x = np.concatenate([np.repeat(rng.random((2, 9, 1)), copies, axis=2), rng.random((2, 9, fresh))], axis=2)
    x = x.astype(np.float32)
    net = Autoencoder(arch)
    net.train(False)
    whole = net.forward(params, state, x, keep_caches=False)[0]

    def products(frames, skip):
        calls = []

        class Counting:
            @staticmethod
            def frame_product(weights, columns, out):
                calls.append(weights.shape)
                return cpu.frame_product(weights, columns, out)

        incremental = IncrementalNetwork(arch, params, state, 2, backend=Counting)
        incremental.reset(skip=skip)
        return in_blocks(frames, [7, 30, 1], incremental.process), len(calls)

    y, with_copies = products(x, copies)
    np.testing.assert_allclose(y, whole[:, :, copies:copies + y.shape[2]], atol=1e-5)
    assert y.shape[2] >= fresh - 8 * 2 * stride ** 4
    _, without = products(x[:, :, copies:], 0)  # the fresh frames alone, from the start
    assert with_copies <= without + 8 * 2 * arch.width


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(1, 200), min_size=1, max_size=5))
def test_style_frames_equal_the_offline_feedforward(model, sizes):
    """The frames the stream stylizes are offline feedforward's (the stylize(model=...) step), start included
    (the stream gives them as magnitudes, the network makes log1p magnitudes)."""
    x = np.random.default_rng(2).standard_normal((2, 3000)).astype(np.float32) * np.float32(0.3)
    x[:, -1200:] = 0.0  # what follows the end is silence in both
    offline = feedforward(np.log1p(np.abs(nst.stft(x, n_fft=N_FFT, hop_length=HOP))), model.triple)
    frames = StyleFrames(*model.triple, n_fft=N_FFT, hop_length=HOP, batch=2, context=64, backend=cpu)
    y = in_blocks(x, sizes, frames.process)
    assert y.shape[2] == frames.available(x.shape[1]) > offline.shape[2] // 2
    np.testing.assert_allclose(nst.spectral.log_magnitude(y), offline[:, :, :y.shape[2]], atol=1e-5)


@settings(max_examples=10, deadline=None)
@given(sizes=st.lists(st.integers(1, 200), min_size=1, max_size=5))
def test_a_causal_models_frames_need_no_look_ahead_and_equal_the_offline_ones(sizes):
    arch = Architecture(n_bins=1 + N_FFT // 2, channels=(12, 10, 8, 6), width=5, stride=1, causal=True)
    params, state = random_network(arch, seed=5)
    causal = Network(arch, params, state, {"kind": "style", "sr": SR, "n_fft": N_FFT, "hop_length": HOP})
    x = np.random.default_rng(2).standard_normal((1, 3000)).astype(np.float32) * np.float32(0.3)
    offline = feedforward(np.log1p(np.abs(nst.stft(x, n_fft=N_FFT, hop_length=HOP))), causal.triple)
    # the offline network puts 64 copies of the first frame before it; the stream only the 32 its
    # 8 causal layers of width 5 reach back to
    frames = StyleFrames(*causal.triple, n_fft=N_FFT, hop_length=HOP, batch=1, context=64, backend=cpu)
    assert frames.context == 32 == Stream(causal, block_size=64)._frames.context
    y = in_blocks(x, sizes, frames.process)
    # every frame whose samples are all here is out: no look-ahead
    assert y.shape[2] == frames.spectrogram.available(x.shape[1])
    np.testing.assert_allclose(nst.spectral.log_magnitude(y), offline[:, :, :y.shape[2]], atol=1e-5)


def test_a_causal_model_streams_within_150_ms_at_the_default_settings():
    """2048-sample frames at 22.05 kHz, hop 512, a stereo 44.1 kHz stream: the issue's latency target."""
    arch = Architecture(n_bins=1025, channels=(8, 8, 8, 8), width=5, stride=1, causal=True)
    params, state = random_network(arch)
    causal = Network(arch, params, state, {"kind": "style", "sr": 22050, "n_fft": 2048, "hop_length": 512})
    stream = Stream(causal, channels=2, block_size=256, sr=44100)
    # its defaults: causal phase, refined 4 times with one frame open
    assert (stream.lookahead, stream.phase_iters, stream.latency_parts["phase"]) == (0, 4, 1024)
    assert stream.latency_parts["network"] == 0
    assert stream.latency / 44100 <= 0.150
    # each frame kept open, or of phase look-ahead, costs a hop
    assert Stream(causal, block_size=256, sr=44100, phase_frames=3).latency == stream.latency + 2 * 1024
    assert Stream(causal, block_size=256, sr=44100, lookahead=1).latency == stream.latency + 1024


def _tiny_gan(**spectrogram):
    content = [harmonic_tone(1.5, 16000, f0=f0, seed=i) for i, f0 in enumerate((150.0, 300.0))]
    style = [harmonic_tone(1.5, 22050, f0=900.0, seed=5)]
    arch = GanArchitecture(n_mels=16, frames=8, channels=4, critic_channels=4, embedding=3)
    return nst.train_gan(content, style, 16000, style_sr=22050, steps=2, batch_size=2, arch=arch, **spectrogram)


@pytest.fixture(scope="module")
def gan_model():
    return _tiny_gan()


@pytest.fixture(scope="module")
def gan_model_22k():
    return _tiny_gan(sr_work=22050, n_fft=1024, hop_length=256)


@pytest.mark.parametrize("which, piece_macs", [("gan_model", None), ("gan_model_22k", 50)],
                         ids=["default-spectrogram", "22050-1024-256, generator in parts"])
@settings(max_examples=10, deadline=None)
@given(sizes=st.lists(st.integers(1, 700), min_size=1, max_size=5))
def test_gan_frames_equal_the_offline_gan_method(request, which, piece_macs, sizes):
    """The generator's windows, crossfaded, equal the offline method's bands frame by frame (start
    included; silence after the end, as a stream's end is), and each window's frames go back to STFT
    magnitudes by the offline method's mel inversion. (The tiny models' products are too small to be
    cut into parts at the default ``GENERATOR_PIECE_MACS``; one case cuts them.)

    The bands are compared, not the magnitudes at the end: the stream's features of a few frames and the
    offline method's of the whole clip differ in float32 rounding (a mel product of another shape,
    1e-7), and the mel inversion's 30 FISTA steps amplify that to 1e-4 - 4e-4 in the log magnitude
    of the quietest bins (measured), a property of the inversion, not of the stream."""
    gan_model = request.getfixturevalue(which)
    sr, n_fft, hop = gan_model.spectrogram_settings
    x = np.random.default_rng(3).standard_normal((2, sr)).astype(np.float32) * np.float32(0.3)
    x[:, -sr // 3:] = 0.0
    inverted = []  # (bands, magnitudes) of every call of the mel inversion

    def recorded(unit, *args, **kwargs):  # the offline method's call, and the stream's (in pieces)
        magnitude = yield from in_pieces(unit, *args, **kwargs)
        inverted.append((np.array(unit), magnitude))
        return magnitude

    in_pieces, invert = gan_module.magnitude_in_pieces, gan_module.magnitude_from_features
    piece_macs = frames_module.GENERATOR_PIECE_MACS if piece_macs is None else piece_macs
    with mock.patch.object(gan_module, "magnitude_in_pieces", recorded), \
            mock.patch.object(frames_module, "magnitude_in_pieces", recorded), \
            mock.patch.object(frames_module, "GENERATOR_PIECE_MACS", piece_macs):
        offline = gan_method(np.abs(nst.stft(x, n_fft=n_fft, hop_length=hop)), gan_model)
        [(offline_bands, _)] = inverted
        inverted.clear()
        frames = GanFrames(gan_model, batch=2, backend=cpu)
        y = in_blocks(x, sizes, frames.process)
    assert y.shape[2] == frames.available(x.shape[1]) > offline.shape[2] // 2
    def joined(part):  # a window's frames are inverted in one call, both channels
        return np.concatenate([call[part] for call in inverted], axis=2)

    bands = joined(0)
    np.testing.assert_allclose(bands, offline_bands[:, :, :bands.shape[2]], rtol=0, atol=1e-6)
    basis = gan_module.mel_basis(sr, n_fft, gan_model.arch.n_mels)
    for unit, magnitude in inverted:  # the stream's prepared numba inversion is the offline method's
        np.testing.assert_allclose(magnitude, invert(unit, basis, n_fft), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(y, joined(1))


def test_a_gan_window_waits_until_its_frames_are_due(gan_model):
    """With no frame due (``limit`` 0: a stream's blocks before its latency's padding is out), no window's job
    runs in ``process``: the work is left to the pieces done ahead, a share of a block at a time. (The
    first window, half padding, gives no frame: it was once run as soon as it could be, in one block.)"""
    sr, n_fft, hop = gan_model.spectrogram_settings
    x = np.random.default_rng(4).standard_normal((2, sr // 2)).astype(np.float32) * np.float32(0.3)
    frames = GanFrames(gan_model, batch=2, backend=cpu)
    assert frames.process(x, limit=0).shape[2] == 0 and frames.windows == 0 and frames.job is None
    assert frames.next_piece(frames.hop) == 0  # work ahead may start on what the first frame out takes
    wanted = frames.available(x.shape[1])
    assert frames.process(x[:, :0], limit=wanted).shape[2] == wanted > 0


@pytest.mark.parametrize("which", ["gan_model", "gan_model_22k"], ids=["default-spectrogram", "22050-1024-256"])
def test_a_gan_model_streams(request, which):
    gan_model = request.getfixturevalue(which)
    sr, n_fft, hop = gan_model.spectrogram_settings
    x = harmonic_tone(1.0, 44100, f0=220.0)[np.newaxis]
    stream = Stream(gan_model, block_size=256, sr=44100)
    y = run_stream(stream, x, 256)
    assert y.shape == (1, -(-x.shape[1] // 256) * 256 + stream.latency) and np.all(np.isfinite(y))
    # a frame is out once the generator's last window over it has run: up to a window less one frame later
    assert stream.latency_parts["network"] == round((gan_model.arch.frames - 1) * hop * 44100 / sr)
    assert np.sqrt(np.mean(y[:, stream.latency:] ** 2)) > 0


@settings(max_examples=25, deadline=None)
@given(bins=st.integers(1, 40), seed=st.integers(0, 1000), tolerance=st.sampled_from([0.0, 0.1, 0.5]),
       ties=st.booleans())
def test_frame_heap_integration_matches_the_reference(bins, seed, tolerance, ties):
    rng = np.random.default_rng(seed)
    magnitude = rng.random((bins, 2))
    if ties:  # equal magnitudes in both frames: the visiting order falls back on the entry index
        magnitude = np.round(4 * magnitude) / 4
    magnitude[rng.random((bins, 2)) < 0.2] = 0.0  # islands and gaps
    time_step, freq_step = rng.standard_normal((bins, 2)), rng.standard_normal(bins)
    phase = rng.random((bins, 2))
    expected = numpy_backend.heap_integrate_frame(magnitude, time_step, freq_step, tolerance, phase.copy())
    got = cpu.heap_integrate_frame(magnitude, time_step, freq_step, tolerance, phase.copy())
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got[:, 0], phase[:, 0])  # the previous frame is only read
    quiet = magnitude[:, 1] <= tolerance
    np.testing.assert_array_equal(got[quiet, 1], phase[quiet, 1])


@settings(max_examples=15, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 9)), seed=st.integers(0, 100))
def test_keep_magnitude_matches_the_reference(shape, seed):
    rng = np.random.default_rng(seed)
    target = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    estimate = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    estimate[rng.random(shape) < 0.2] = 0.0  # no phase to take: the target stays
    expected, got = target.copy(), target.copy()
    change = numpy_backend.keep_magnitude(expected, np.abs(target), estimate)
    np.testing.assert_allclose(cpu.keep_magnitude(got, np.abs(target), estimate), change, atol=1e-12)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    np.testing.assert_allclose(np.abs(got), np.abs(target), atol=1e-12)
    moved = estimate != 0
    np.testing.assert_allclose(np.angle(got[moved] * np.conj(estimate[moved])), 0.0, atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(shape=st.tuples(st.integers(1, 40), st.integers(0, 300), st.integers(1, 5)), seed=st.integers(0, 100))
def test_frame_product_matches_the_reference_and_not_where_the_arrays_lie(shape, seed):
    n_out, n_in, batch = shape
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((n_out, n_in)).astype(np.float32)
    columns = rng.standard_normal((n_in, batch)).astype(np.float32)
    expected = numpy_backend.frame_product(weights, columns, np.empty((n_out, batch), np.float32))
    got = cpu.frame_product(weights, columns, np.empty((n_out, batch), np.float32))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.sqrt(n_in))
    for offset in (1, 3):  # the same arrays at other addresses: the same result to the bit
        moved = np.empty(weights.size + offset, np.float32)[offset:].reshape(weights.shape)
        moved[...] = weights
        np.testing.assert_array_equal(cpu.frame_product(moved, columns, np.empty((n_out, batch), np.float32)), got)


@settings(max_examples=15, deadline=None)
@given(channels=st.integers(1, 3), taps=st.integers(1, 30), up=st.integers(1, 5), down=st.integers(1, 5),
       first=st.integers(0, 50), count=st.integers(0, 40), offset=st.integers(0, 4), seed=st.integers(0, 100))
def test_polyphase_outputs_match_the_reference(channels, taps, up, down, first, count, offset, seed):
    rng = np.random.default_rng(seed)
    phases = rng.standard_normal((up, taps)).astype(np.float32)
    history_start = ((first * down + offset) // up) - taps - 3  # the first output's window lies inside
    length = ((first + count) * down + offset) // up - history_start + 1
    history = rng.standard_normal((channels, length)).astype(np.float32)
    expected = numpy_backend.polyphase_outputs(history, phases, first, count, up, down, offset, history_start)
    got = cpu.polyphase_outputs(history, phases, first, count, up, down, offset, history_start)
    assert got.dtype == np.float32 and got.shape == (channels, count)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(batch=st.integers(1, 3), n_fft=st.integers(1, 16), hop=st.integers(1, 8), count=st.integers(1, 4),
       offset=st.integers(0, 5), seed=st.integers(0, 100))
def test_normalized_frames_and_overlap_add_match_the_reference(batch, n_fft, hop, count, offset, seed):
    rng = np.random.default_rng(seed)
    n = offset + (count - 1) * hop + n_fft + 3
    signal, window = rng.standard_normal((batch, n)), rng.random(n_fft)
    weight = rng.random(n)
    weight[rng.random(n) < 0.3] = 0.0  # no window there: the sample is taken as it is
    expected = numpy_backend.normalized_frames(signal, weight, window, offset, hop, count, 1e-10)
    got = cpu.normalized_frames(signal, weight, window, offset, hop, count, 1e-10)
    np.testing.assert_array_equal(got, expected)
    frames = rng.standard_normal((batch, count, n_fft))
    expected_sum = numpy_backend.overlap_add_frames(signal.copy(), frames, window, offset, hop)
    got_sum = cpu.overlap_add_frames(signal.copy(), frames, window, offset, hop)
    np.testing.assert_allclose(got_sum, expected_sum, rtol=1e-14, atol=1e-14)
    untouched = np.ones(n, bool)
    untouched[offset:offset + (count - 1) * hop + n_fft] = False
    np.testing.assert_array_equal(got_sum[:, untouched], signal[:, untouched])


def test_frame_heap_integration_follows_a_stationary_sinusoid():
    """A steady bin's phase advances by exactly its time step; its neighbours' by the frequency steps."""
    bins = 9
    magnitude = np.tile(np.array([0.1, 0.2, 0.5, 1.0, 0.5, 0.2, 0.1, 0.05, 0.02])[:, None], (1, 2))
    time_step = np.tile(np.linspace(0, 3, bins)[:, None], (1, 2))
    freq_step = np.zeros(bins)
    phase = np.zeros((bins, 2))
    cpu.heap_integrate_frame(magnitude, time_step, freq_step, 0.0, phase)
    assert phase[3, 1] == pytest.approx(time_step[3, 0])
    assert phase[4, 1] == pytest.approx(phase[3, 1] + np.pi)  # from the peak, the new frame's own gradient


def test_phase_synthesis_rebuilds_a_true_spectrogram():
    """Real-time PGHI alone, on the magnitudes of a real signal, rebuilds a signal with close to its magnitudes."""
    x = harmonic_tone(1.0, SR, f0=300.0)[np.newaxis]
    magnitude = np.abs(nst.stft(x, n_fft=N_FFT, hop_length=HOP))
    synthesis = PhaseSynthesis(n_fft=N_FFT, hop_length=HOP, batch=1, backend=nst.get_backend("cpu"))
    y = synthesis.process(magnitude)
    rebuilt = nst.stft(y, n_fft=N_FFT, hop_length=HOP)
    frames = rebuilt.shape[-1] - 4  # the last frames lack the samples the look-ahead withholds
    random = nst.stft(nst.istft(magnitude * np.exp(2j * np.pi * np.random.default_rng(0).random(magnitude.shape)),
                                hop_length=HOP), n_fft=N_FFT, hop_length=HOP)
    pghi_db = nst.spectral.spectral_convergence(magnitude[..., :frames], rebuilt[..., :frames])
    random_db = nst.spectral.spectral_convergence(magnitude[..., :frames], random[..., :frames])
    assert pghi_db < -12.0 and pghi_db < random_db - 6.0


def test_phase_refinement_brings_the_signal_closer_to_the_magnitudes():
    """RTISI-LA passes after PGHI: on magnitudes no signal has exactly (as a network's), the rebuilt
    signal's magnitudes come closer to them with each pass."""
    x = harmonic_tone(1.0, SR, f0=300.0)[np.newaxis]
    magnitude = np.abs(nst.stft(x, n_fft=N_FFT, hop_length=HOP))
    magnitude *= np.random.default_rng(1).uniform(0.5, 1.5, magnitude.shape)
    scores = []
    for iterations in (0, 1, 4):
        synthesis = PhaseSynthesis(n_fft=N_FFT, hop_length=HOP, batch=1, iterations=iterations,
                                   backend=nst.get_backend("cpu"))
        y = synthesis.process(magnitude)
        frames = nst.stft(y, n_fft=N_FFT, hop_length=HOP).shape[-1] - 8
        scores.append(nst.spectral.spectral_convergence(magnitude[..., :frames],
                                                        nst.stft(y, n_fft=N_FFT, hop_length=HOP)[..., :frames]))
    assert scores[0] > scores[1] + 0.5 > scores[2] + 1.0, scores


def run_stream(stream, x, block):
    """The stream's output for ``x`` (channels, n) in blocks of ``block`` (the last zero-padded), then its tail."""
    n = -(-x.shape[1] // block) * block
    padded = np.zeros((x.shape[0], n), np.float32)
    padded[:, :x.shape[1]] = x
    out = [stream.process(padded[:, i:i + block]) for i in range(0, n, block)]
    return np.concatenate(out + [stream.flush()], axis=1)


@pytest.mark.parametrize("sr, phase_iters", [(SR, 0), (SR, 2), (2 * SR, 0), (11025, 2)])
def test_stream_output_is_the_processed_input_exactly_latency_behind(model, sr, phase_iters):
    """Any block size gives the same output (no seams at block borders, one latency), and that output is
    the offline chain's: network frames, then the same phase synthesis, delayed by ``latency``."""
    x = (harmonic_tone(1.0, sr, f0=250.0)[np.newaxis] * np.float32(0.8))
    outputs = {}
    for block in (64, 100, 513):
        stream = Stream(model, block_size=block, sr=sr, phase_iters=phase_iters)
        outputs[block] = run_stream(stream, x, block)
    latency = stream.latency
    common = min(y.shape[1] for y in outputs.values())  # (the last block's padding differs)
    for block, y in outputs.items():  # the same to the bit: no seams, one latency
        assert np.all(np.isfinite(y)) and common >= latency + x.shape[1]
        np.testing.assert_array_equal(y[:, :common], outputs[64][:, :common])
    y = outputs[64]
    assert np.all(y[:, :latency - stream.latency_parts["window"]] == 0)  # nothing before the first frame
    if sr != SR:
        return
    gain = np.float32(nst.models.TRAINING_PEAK)
    padded = np.concatenate([x, np.zeros((1, latency + 64), np.float32)], axis=1)
    frames = feedforward(np.log1p(np.abs(nst.stft(padded * gain, n_fft=N_FFT, hop_length=HOP))), model.triple)
    synthesis = PhaseSynthesis(n_fft=N_FFT, hop_length=HOP, batch=1, iterations=phase_iters,
                               backend=nst.get_backend("cpu"))
    expected = synthesis.process(nst.spectral.from_log_magnitude(frames.astype(np.float64))) / gain
    # equal but for float32 rounding (the offline network's products take many frames at once, and
    # a product's rounding depends on its shape), which the iterative refinement carries further;
    # a latency off by a sample would differ by the signal's own size
    tolerance = 1e-4 if phase_iters == 0 else 1e-2
    assert relative_difference(y[:, latency:latency + x.shape[1]], expected[:, :x.shape[1]]) < tolerance


def relative_difference(a, b):
    """RMS of ``a - b`` over the RMS of ``b``."""
    return float(np.sqrt(np.mean((a - b) ** 2) / np.mean(b ** 2)))


def test_stream_latency_parts_and_the_default_model_look_ahead(model):
    stream = Stream(model, block_size=64, phase_iters=0)
    parts = stream.latency_parts
    assert sum(parts.values()) == stream.latency
    assert parts["window"] == N_FFT and parts["phase"] == HOP and parts["resampling"] == 0
    assert parts["spread"] == HOP
    refined = Stream(model, block_size=64, phase_iters=3)  # RTISI-LA keeps n_fft / hop - 1 frames open
    assert refined.latency_parts["phase"] == HOP + 3 * HOP and refined.latency == stream.latency + 3 * HOP
    # a stride-2, width-5 autoencoder sees 60 frames ahead (4 encoder and 4 decoder layers)
    assert parts["network"] == 60 * HOP
    assert Stream(model, block_size=64, lookahead=0, phase_iters=0).latency == stream.latency - HOP
    resampled = Stream(model, block_size=64, sr=2 * SR, phase_iters=0)
    assert resampled.latency_parts["resampling"] == 40  # both filters: half their 41 taps each, at 16 kHz
    assert resampled.latency == 2 * stream.latency + 40


def test_a_stalled_piece_holds_its_kind_back_only_briefly(gan_model, monkeypatch):
    """A piece of work ahead that the machine stalls (here: made to sleep 60 ms) raises the record of its kind
    at most twofold: a record of the stall would hold that work back until its window came due in one
    block. The output is the same."""
    sr = gan_model.spectrogram_settings[0]
    x = np.random.default_rng(8).standard_normal((1, 2 * sr)).astype(np.float32) * np.float32(0.3)
    expected = run_stream(Stream(gan_model, block_size=4096), x, 4096)
    stream = Stream(gan_model, block_size=4096)  # a fifth of a block, 51 ms, is room for a piece of 1 ms
    stream._piece_times = {kind: 1e-3 for kind in stream._piece_times}
    step, stalled = GanFrames.step, []

    def stalling_step(self, *args, **kwargs):
        if not stalled:
            stalled.append(("frames", self.piece if self.job is not None else 0))
            time.sleep(0.06)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(GanFrames, "step", stalling_step)
    block, blocks = 4096, []
    for i in range(0, x.shape[1] - block + 1, block):
        blocks.append(stream.process(x[:, i:i + block]))
        if stalled and len(stalled) == 1:  # the block the stall happened in: the record after it
            stalled.append(stream._piece_times[stalled[0]])
    assert len(stalled) == 2 and 1e-3 <= stalled[1] <= 2e-3 + 1e-12, stalled
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), expected[:, :len(blocks) * block])


@pytest.mark.parametrize("which", ["style", "gan"])
def test_more_spread_is_more_latency_by_whole_hops_and_the_same_output(model, gan_model, which):
    """Spreading the work over more hops delays the output by those hops and changes nothing else."""
    chosen = model if which == "style" else gan_model
    sr, n_fft, hop = chosen.spectrogram_settings
    x = harmonic_tone(0.6, sr, f0=250.0)[np.newaxis] * np.float32(0.8)
    one, three = (Stream(chosen, block_size=100, spread=k) for k in (1, 3))
    assert one.spread == 1 and three.spread == 3
    assert three.latency_parts["spread"] == 3 * hop and three.latency == one.latency + 2 * hop
    a, b = run_stream(one, x, 100), run_stream(three, x, 100)
    assert np.sqrt(np.mean(a ** 2)) > 0
    np.testing.assert_array_equal(b[:, 2 * hop:2 * hop + a.shape[1] - 100], a[:, :a.shape[1] - 100])


def test_stream_stereo_channels_are_independent_and_reset_restarts(model):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2000)).astype(np.float32) * np.float32(0.2)
    stereo = Stream(model, channels=2, block_size=128)
    y = run_stream(stereo, x, 128)
    again = run_stream(stereo, x, 128)  # flush reset it
    np.testing.assert_array_equal(y, again)
    for c in range(2):  # without the phase refinement, which would carry float rounding further
        alone = run_stream(Stream(model, block_size=128, phase_iters=0), x[c:c + 1], 128)[0]
        pair = run_stream(Stream(model, channels=2, block_size=128, phase_iters=0), x, 128)[c]
        np.testing.assert_allclose(pair, alone, atol=1e-4)
    stereo.process(x[:, :128])
    stereo.reset()
    np.testing.assert_array_equal(run_stream(stereo, x, 128), y)


@pytest.mark.parametrize("which", ["style", "gan"])
def test_streams_in_threads_equal_serial_runs(model, gan_model, which):
    chosen = model if which == "style" else gan_model
    x = np.random.default_rng(4).standard_normal((2, 3000)).astype(np.float32) * np.float32(0.2)
    serial = run_stream(Stream(chosen, channels=2, block_size=64), x, 64)
    results = [None, None]

    def work(i):
        results[i] = run_stream(Stream(chosen, channels=2, block_size=64), x, 64)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for result in results:
        np.testing.assert_array_equal(result, serial)


def test_numpy_and_cpu_streams_agree(model):
    x = np.random.default_rng(5).standard_normal((1, 1500)).astype(np.float32) * np.float32(0.2)
    y_cpu = run_stream(Stream(model, block_size=64, device="cpu", phase_iters=0), x, 64)
    y_numpy = run_stream(Stream(model, block_size=64, device="numpy", phase_iters=0), x, 64)
    np.testing.assert_allclose(y_numpy, y_cpu, atol=1e-4)
    refined = [run_stream(Stream(model, block_size=64, device=device), x, 64) for device in ("cpu", "numpy")]
    assert relative_difference(*refined) < 1e-2


@pytest.mark.parametrize("kwargs, block, message", [
    (dict(block_size=32), None, "block_size"),
    (dict(channels=0), None, "channels"),
    (dict(lookahead=2), None, "lookahead"),
    (dict(phase_frames=0), None, "phase_frames"),
    (dict(phase_iters=-1), None, "phase_iters"),
    (dict(device="cuda"), None, "device"),
    (dict(input_gain=0.0), None, "input_gain"),
    (dict(spread=0), None, "spread"),
    (dict(spread=2.5), None, "spread"),
    (dict(sr=10), None, "sr"),
    (dict(block_size=64), np.zeros((1, 65), np.float32), "shape"),
    (dict(block_size=64), np.zeros((2, 64), np.float32), "shape"),
    (dict(block_size=64), np.zeros(64, np.int16), "floating"),
    (dict(block_size=64), np.full(64, np.nan, np.float32), "NaN"),
])
def test_stream_refuses_bad_settings_and_blocks(model, kwargs, block, message):
    with pytest.raises(nst.NstAudioError, match=message):
        Stream(model, **kwargs).process(block)


def test_stream_refuses_other_models(model):
    other = Network(model.arch, model.params, model.state, dict(model.meta, kind="lossnet"))
    with pytest.raises(nst.ParameterError, match="style models"):
        Stream(other)


@pytest.fixture(scope="module")
def model_file(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "model.npz"
    nst.save_model(path, model)
    return path


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_streams_a_file_aligned_with_it(model, model_file, tmp_path):
    x = np.stack([harmonic_tone(0.5, 16000), harmonic_tone(0.5, 16000, f0=330.0)])
    source = tmp_path / "in.wav"
    sf.write(source, x.T, 16000, subtype="PCM_24")
    out = tmp_path / "out.wav"
    result = invoke("stream", "--model", model_file, source, "-o", out, "--block-size", "100", "--spread", "2")
    assert result.exit_code == 0, result.output
    assert "latency" in result.output
    info = sf.info(out)
    assert (info.frames, info.channels, info.samplerate, info.subtype) == (x.shape[1], 2, 16000, "PCM_24")
    y, _ = sf.read(out, always_2d=True, dtype="float32")
    stream = Stream(model, channels=2, block_size=100, sr=16000, spread=2)
    expected = run_stream(stream, sf.read(source, always_2d=True, dtype="float32")[0].T, 100)
    np.testing.assert_allclose(y.T, expected[:, stream.latency:stream.latency + x.shape[1]], atol=2 ** -22)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "out.wav"]


@pytest.mark.parametrize("case", ["missing input", "silent", "nan", "not audio", "too short", "cut short",
                                  "output is input",
                                  "output is model",
                                  "small block", "no spread", "no model", "gan model", "no output", "live option"])
def test_cli_stream_mistakes_are_one_line_and_exit_2(model_file, tmp_path, case):
    good = tmp_path / "good.wav"
    sf.write(good, harmonic_tone(0.3, SR), SR)
    source, out, extra, model_arg = good, tmp_path / "out.wav", [], ["--model", model_file]
    if case == "missing input":
        source = tmp_path / "missing.wav"
    elif case == "silent":
        source = tmp_path / "silent.wav"
        sf.write(source, np.zeros(4000, np.float32), SR)
    elif case == "nan":
        source = tmp_path / "nan.wav"
        sf.write(source, np.full(4000, np.nan, np.float32), SR, subtype="FLOAT")
    elif case == "not audio":
        source = tmp_path / "text.wav"
        source.write_text("not audio")
    elif case == "too short":  # under one frame
        source = tmp_path / "short.wav"
        sf.write(source, np.full(N_FFT - 1, 0.5, np.float32), SR)
    elif case == "cut short":  # a partial download: the header declares more audio than the file holds
        source = tmp_path / "cut.wav"
        sf.write(source, harmonic_tone(0.3, SR), SR)
        source.write_bytes(source.read_bytes()[:4000])
    elif case == "output is input":
        out = good
    elif case == "output is model":
        out = model_file
    elif case == "small block":
        extra = ["--block-size", "8"]
    elif case == "no spread":
        extra = ["--spread", "0"]
    elif case == "no model":
        model_arg = []
    elif case == "gan model":
        model_arg = ["--model", good]
    elif case == "no output":
        out = None
    elif case == "live option":
        extra = ["--seconds", "1"]
    args = ["stream", *model_arg, source, *([] if out is None else ["-o", out]), *extra]
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("Error:"), result.output
    assert case != "cut short" or "is cut short" in result.output, result.output
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before  # nothing written or touched


def test_live_without_sounddevice_says_how_to_get_it(model_file, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails
    for args in (["--list-devices"], ["--model", model_file, "--live", "--seconds", "0"]):
        result = invoke("stream", *args)
        assert result.exit_code == 2 and "nstaudio[live]" in result.output, result.output


def test_live_runs_the_stream_in_the_device_callback(model, monkeypatch):
    """A stand-in for sounddevice calls the callback as PortAudio would: the output is the stream's."""
    import sys
    import types

    from nstaudio.streaming.live import run_live

    gc.unfreeze()  # (if anything froze before)
    x = np.random.default_rng(6).standard_normal((6 * 64, 1)).astype(np.float32) * np.float32(0.2)
    played = []

    class FakeStream:
        def __init__(self, *, device, samplerate, blocksize, channels, dtype, callback):
            assert (samplerate, blocksize, channels, dtype) == (SR, 64, 1, "float32")
            self.callback = callback

        def __enter__(self):
            from threadpoolctl import threadpool_info

            # BLAS on one thread while the devices call (its threads' wake-ups stall a gan model's products)
            blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
            assert blas and set(blas) == {1}, blas
            assert gc.get_freeze_count() > 0  # no full collection scans the objects made before
            for i in range(0, len(x), 64):
                outdata = np.empty((64, 1), np.float32)
                played.append(outdata)
                try:
                    self.callback(x[i:i + 64], outdata, 64, None, None)
                except RuntimeError:  # sounddevice's CallbackAbort: PortAudio stops calling
                    break
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setitem(sys.modules, "sounddevice", types.SimpleNamespace(Stream=FakeStream))
    report = run_live(model, block_size=64, seconds=0)
    assert report["blocks"] == 6 and gc.get_freeze_count() == 0
    gc.freeze()  # a host that froze its objects before keeps them frozen
    played.clear()
    assert run_live(model, block_size=64, seconds=0)["blocks"] == 6 and gc.get_freeze_count() > 0
    gc.unfreeze()
    expected = run_stream(Stream(model, block_size=64), x.T, 64)[:, :len(x)]
    np.testing.assert_allclose(np.concatenate(played).T, expected, atol=1e-6)
    # a failing block (here NaN from the device) ends the run and is raised in the caller's thread
    x[100] = np.nan
    played.clear()
    with pytest.raises(nst.AudioError, match="NaN"):
        run_live(model, block_size=64, seconds=None)  # would wait for ever if the failure did not stop it
    assert np.all(played[-1] == 0.0)
