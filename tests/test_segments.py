"""Long contents in overlapping segments (nstaudio.methods.segments): the cuts, the crossfades, and the
optimizing methods run segment by segment against one style target."""

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

import nstaudio as nst
from nstaudio.cli.main import main
from nstaudio.errors import ParameterError
from nstaudio.methods.segments import crossfade_weights, join, run_in_segments, segment_spans

from conftest import harmonic_tone

SR = 8000
TINY = dict(sr_work=SR, n_fft=256, n_filters=32, iterations=6, tolerance=0.0, device="cpu", seed=3)


@settings(max_examples=200, deadline=None)
@given(length=st.integers(1, 5000), segment=st.integers(1, 600), overlap_share=st.floats(0.0, 1 / 3))
def test_segments_cover_the_content_with_the_overlap_asked_and_weights_that_sum_to_one(length, segment,
                                                                                        overlap_share):
    overlap = int(overlap_share * segment)
    spans = segment_spans(length, segment, overlap)
    if length <= segment:
        assert spans == [(0, length)]
        return
    sizes = [stop - start for start, stop in spans]
    assert max(sizes) <= segment and max(sizes) - min(sizes) <= 1  # spread evenly, no longer than asked
    assert spans[0][0] == 0 and spans[-1][1] == length
    # the fewest: one segment less could not cover the content with this overlap
    assert (len(spans) - 1) * (segment - overlap) + overlap < length
    for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
        assert a0 < b0 <= a1 and a1 - b0 == overlap
    for (a0, a1), (c0, c1) in zip(spans, spans[2:]):
        assert c0 >= a1  # no frame in three
    total = np.zeros(length)
    for (start, stop), weight in zip(spans, crossfade_weights(spans)):
        assert np.all(weight >= 0)
        total[start:stop] += weight
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_an_overlap_over_a_third_of_a_segment_is_refused():
    with pytest.raises(ParameterError, match="third"):
        segment_spans(100, 20, 7)


def test_segments_of_an_identity_join_back_into_the_content_exactly_where_they_are_cut():
    """Each segment's result lands where it was cut: an identity method's segments join into the content."""
    content = np.random.default_rng(0).standard_normal((2, 5, 1000)).astype(np.float32)
    spans = segment_spans(1000, 130, 20)
    seen = []

    def identity(segment, report):
        seen.append(segment.shape)
        report(1, 0.0)
        return segment, dict(loss=1.0, iterations=1, evaluations=2, converged=True, history=np.ones(1))

    steps = []
    out, info = run_in_segments(identity, content, spans, 7, lambda step, loss: steps.append(step))
    np.testing.assert_allclose(out, content, rtol=1e-6, atol=1e-6)
    assert seen == [(2, 5, stop - start) for start, stop in spans]
    assert steps == [7 * k + 1 for k in range(len(spans))]  # progress counts over the whole content
    assert info["loss"] == len(spans) and info["evaluations"] == 2 * len(spans) and info["segments"] == len(spans)


def test_join_blends_neighbours_only_inside_their_overlap():
    spans = segment_spans(300, 100, 10)
    pieces = [np.full((1, stop - start), float(k)) for k, (start, stop) in enumerate(spans)]
    out = join(pieces, spans, 300)[0]
    for k, (start, stop) in enumerate(spans):
        alone_from = spans[k - 1][1] if k else 0
        alone_to = spans[k + 1][0] if k + 1 < len(spans) else 300
        np.testing.assert_array_equal(out[alone_from:alone_to], k)
        if k + 1 < len(spans):
            blend = out[spans[k + 1][0]:stop]
            assert np.all(np.diff(blend) > 0) and k < blend.min() and blend.max() < k + 1


@pytest.mark.parametrize("method, extra", [("optimize", {}), ("optimize", dict(network="expected")),
                                           ("timedomain", dict(width=3))])
def test_a_content_shorter_than_a_segment_runs_as_it_would_whole(method, extra):
    content, style = harmonic_tone(1.0, SR, f0=220.0), harmonic_tone(1.0, SR, f0=660.0, seed=2)
    whole = nst.stylize(content, style, SR, method=method, segment=0, **TINY, **extra)
    np.testing.assert_array_equal(nst.stylize(content, style, SR, method=method, segment=2.0, **TINY, **extra),
                                  whole)


@pytest.mark.parametrize("method, extra", [("optimize", {}), ("optimize", dict(network="expected")),
                                           ("timedomain", dict(width=3))])
def test_a_long_content_is_optimized_segment_by_segment_with_progress_over_all_of_it(method, extra):
    content = np.stack([harmonic_tone(3.0, SR, f0=220.0), harmonic_tone(3.0, SR, f0=330.0, seed=1)])
    style = harmonic_tone(1.0, SR, f0=660.0, seed=2)
    reports = []
    out, info = nst.stylize(content, style, SR, method=method, segment=1.0, segment_overlap=0.25, return_info=True,
                            callback=lambda stage, step, total, value: reports.append((stage, step, total)),
                            **TINY, **extra)
    assert out.shape == content.shape and np.all(np.isfinite(out))
    optimizing = [(step, total) for stage, step, total in reports if stage == "optimize"]
    segments = len(segment_spans(3 * SR, SR, SR // 4))  # in samples; as many in frames
    assert segments == 4
    assert {total for _, total in optimizing} == {TINY["iterations"] * segments}
    assert [step for step, _ in optimizing] == sorted(step for step, _ in optimizing)
    assert optimizing[-1][0] == TINY["iterations"] * segments and info.iterations == TINY["iterations"] * segments
    # the same settings and seed give the same output
    np.testing.assert_array_equal(nst.stylize(content, style, SR, method=method, segment=1.0, segment_overlap=0.25,
                                              **TINY, **extra), out)


def test_segments_bound_what_the_memory_check_counts():
    """A content refused whole for memory is taken in segments (the check counts one segment's frames)."""
    from nstaudio.methods import REGISTRY

    method = REGISTRY.get("optimize")
    options = dict(n_fft=2048, hop_length=512, sr_work=22050, n_filters=4096, width=11, optimizer="plbfgs",
                   network="random", init="noise", segment=12.0, segment_overlap=1.0)
    hour = 3600 * 22050 // 512
    whole = method.memory({**options, "segment": 0.0}, 2, hour, 1000)
    segmented = method.memory(options, 2, hour, 1000)
    assert segmented < whole / 100
    assert segmented <= method.memory(options, 2, round(12 * 22050 / 512), 1000)


@pytest.mark.parametrize("args, message", [
    (["--segment-overlap", "-1"], "segment_overlap must be >= 0"),
    (["--segment", "0.01"], "segment: 0.01 s is shorter than"),
    (["--segment", "-1"], "segment must be >= 0"),
])
def test_bad_segment_settings_get_one_line_and_exit_2(tmp_path, args, message):
    content, style = tmp_path / "c.wav", tmp_path / "s.wav"
    nst.save(content, harmonic_tone(1.0, SR), SR)
    nst.save(style, harmonic_tone(1.0, SR, f0=660.0), SR)
    out = tmp_path / "out.wav"
    result = CliRunner().invoke(main, ["run", str(content), str(style), "-o", str(out), "-q", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1 and not out.exists()


@settings(max_examples=100, deadline=None)
@given(length=st.integers(1, 3000), segment=st.integers(2, 300), width=st.integers(1, 100))
def test_every_segment_a_segment_length_allows_holds_the_filter_width(length, segment, width):
    """What check_segments lets through gives no segment shorter than the width the method needs."""
    from nstaudio.methods.optimizing import check_segments, spans

    options = dict(segment=float(segment), segment_overlap=float(segment) / 8)
    try:
        check_segments(options, 1.0, width)
    except ParameterError:
        assert segment < 2 * width
        return
    assert min(stop - start for start, stop in spans(options, length, 1.0)) >= min(width, length)
