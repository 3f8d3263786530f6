"""The quality benchmark: what a listener hears, each method at its defaults beside Ulyanov's original in torch.

For every (content, style) pair of real recordings (instruments, speech and drums in both
roles, mono and stereo, from ``NSTAUDIO_AUDIO_DIR`` or ``../shared/audio``), each registered
method runs at its defaults (and two variants of ``optimize``: ``optimize-expected`` with
``network="expected"``, ``optimize-warm`` with ``init="expected"``) and the torch reference runs Ulyanov & Lebedev's original setup
(:func:`torch_reference.torch_ulyanov`: SciPy L-BFGS-B without bounds, 100 iterations,
Griffin-Lim from random phase, 100 iterations). Measured with :mod:`nstaudio.quality`, whose
statistics no method optimizes:

- style: how far the output's log-mel texture moved from the content's toward the style's
  (0 none, 1 all the way);
- content: correlation of the output's and the content's onset envelopes;
- phase: spectral convergence of the phase reconstruction (dB; none for ``timedomain``);
- seconds, and the time as a fraction of the reference's in the same run.

The table goes to the ``quality`` section of RESULTS.md when this module ran whole and
passed (``pytest benchmarks/test_quality.py`` or ``pytest benchmarks``). The ``feedforward``
method needs a style model per style, trained with the defaults (``nstaudio train-style
STYLE build/corpus -o build/style-models/<style file stem>.npz``) in ``build/style-models`` or
``NSTAUDIO_STYLE_MODELS``; without one its rows are skipped with that reason. Nothing here
asserts a quality: the summary under the table sets each method against the reference.
"""

import os
import time

import numpy as np
import pytest

import nstaudio as nst
from audio_fixtures import AUDIO_DIR
from conftest import machine_description, module_ran_whole, write_section
from nstaudio import quality

# (content, style): every kind of sound in both roles, and the stereo 44.1 kHz clip.
PAIRS = [
    ("piano.wav", "violin.wav"),
    ("violin.wav", "piano.wav"),
    ("piano.wav", "drums.wav"),
    ("drums.wav", "violin.wav"),
    ("drums.wav", "speech_espeak.wav"),
    ("speech_festival.wav", "drums.wav"),
    ("speech_festival.wav", "violin.wav"),
    ("speech_espeak.wav", "piano.wav"),
    ("violin.wav", "speech_festival.wav"),
    ("piano_stereo_44k.wav", "violin.wav"),
]
METHODS = ("optimize", "timedomain", "feedforward", "optimize-expected", "optimize-warm")
# Rows that run a method with one setting changed from its defaults: name -> (method, settings).
VARIANTS = {"optimize-expected": ("optimize", dict(network="expected")),
            "optimize-warm": ("optimize", dict(init="expected"))}
BUILD = os.path.join(os.path.dirname(__file__), os.pardir, "build")
STYLE_MODELS = os.environ.get("NSTAUDIO_STYLE_MODELS", os.path.join(BUILD, "style-models"))

_rows = {}  # (pair index, method or "reference") -> row


def _pair_id(pair):
    return f"{os.path.splitext(pair[0])[0]}<-{os.path.splitext(pair[1])[0]}"


def _load(name):
    path = os.path.join(AUDIO_DIR, name)
    if not os.path.isfile(path):
        pytest.skip(f"{path} is not there (set NSTAUDIO_AUDIO_DIR)")
    return nst.load(path)


def _measure(y, content, sr, style, style_sr):
    movement, parts = quality.style_movement(y, content, style, sr, style_sr=style_sr, return_parts=True)
    return dict(style=movement, style_means=parts["means"], style_covariance=parts["covariance"],
                content=quality.content_preservation(y, content, sr))


@pytest.fixture(scope="module")
def record(request):
    """``record(pair_index, method, row)``; the table is written when the module ran whole and passed."""
    yield lambda index, method, row: _rows.__setitem__((index, method), row)
    complete = module_ran_whole(request)
    table = _table()
    print("\n" + table)
    if complete and any(method == "reference" for _, method in _rows):
        header = (f"Machine: {machine_description()}. Date: {time.strftime('%Y-%m-%d')}. Each method at its "
                  f"defaults (device cpu); reference: Ulyanov & Lebedev's setup in torch (SciPy L-BFGS-B "
                  f"unbounded, 100 iterations; Griffin-Lim from random phase, 100 iterations). style: texture "
                  f"movement content -> style (0 none, 1 all); content: onset-envelope correlation; phase: "
                  f"spectral convergence (dB); time: seconds, and as a fraction of the reference's.")
        write_section("quality", header, table)


def _table():
    lines = ["| pair | method | style | content | phase (dB) | seconds | time / reference |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for index, pair in enumerate(PAIRS):
        reference = _rows.get((index, "reference"))
        for method in ("reference",) + METHODS:
            row = _rows.get((index, method))
            if row is None:
                continue
            share = f"{row['seconds'] / reference['seconds']:.2f}" if reference and method != "reference" else ""
            phase = "" if row["phase"] != row["phase"] else f"{row['phase']:.1f}"
            lines.append(f"| {_pair_id(pair)} | {method} | {row['style']:.2f} | {row['content']:.2f} | {phase} | "
                         f"{row['seconds']:.1f} | {share} |")
    summary = []
    for method in METHODS:
        rows = [(_rows[(i, method)], _rows.get((i, "reference"))) for i in range(len(PAIRS)) if (i, method) in _rows]
        if not rows:
            continue
        worst_style = min(r["style"] for r, _ in rows)
        worst_content = min(r["content"] for r, _ in rows)
        line = f"- {method}: {len(rows)} pairs; lowest style {worst_style:.2f}, lowest content {worst_content:.2f}"
        against = [(r, ref) for r, ref in rows if ref]
        if against:
            line += (f"; against the reference, style {min(r['style'] - ref['style'] for r, ref in against):+.2f} "
                     f"and content {min(r['content'] - ref['content'] for r, ref in against):+.2f} at worst, time "
                     f"{max(r['seconds'] / ref['seconds'] for r, ref in against):.2f} of it at most")
        summary.append(line)
    return "\n".join(lines + [""] + summary)


@pytest.fixture(scope="module")
def style_models():
    """``get(style_file) -> model``: a trained style model per style, loaded or trained once (skips without)."""
    models = {}

    def get(style_file):
        stem = os.path.splitext(style_file)[0]
        if stem not in models:
            path = os.path.join(STYLE_MODELS, stem + ".npz")
            if not os.path.isfile(path):
                pytest.skip(f"no style model at {path}: train one with the defaults, `nstaudio train-style "
                            f"{os.path.join(AUDIO_DIR, style_file)} build/corpus -o {path}` (~6 min on 2 cores; "
                            f"the corpus from scripts/make_corpus.py), or set NSTAUDIO_STYLE_MODELS")
            models[stem] = nst.load_model(path, kind="style")
        return models[stem]
    return get


@pytest.mark.parametrize("index", range(len(PAIRS)), ids=[_pair_id(p) for p in PAIRS])
def test_reference(index, record, torch):
    from torch_reference import torch_ulyanov

    (content, sr), (style, style_sr) = _load(PAIRS[index][0]), _load(PAIRS[index][1])
    start = time.perf_counter()
    y, info = torch_ulyanov(content, style, sr, style_sr=style_sr)
    seconds = time.perf_counter() - start
    assert y.shape == content.shape and np.all(np.isfinite(y))
    record(index, "reference", dict(_measure(y, content, sr, style, style_sr), phase=info["phase_convergence_db"],
                                    seconds=seconds))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("index", range(len(PAIRS)), ids=[_pair_id(p) for p in PAIRS])
def test_method(index, method, record, style_models):
    (content, sr), (style, style_sr) = _load(PAIRS[index][0]), _load(PAIRS[index][1])
    given = dict(model=style_models(PAIRS[index][1])) if method == "feedforward" else dict(style=style,
                                                                                          style_sr=style_sr)
    name, settings = VARIANTS.get(method, (method, {}))
    start = time.perf_counter()
    y, info = nst.stylize(content, sr=sr, method=name, device="cpu", return_info=True, **given, **settings)
    seconds = time.perf_counter() - start
    assert y.shape == content.shape and np.all(np.isfinite(y))
    record(index, method, dict(_measure(y, content, sr, style, style_sr), phase=info.phase_convergence_db,
                               seconds=seconds))
