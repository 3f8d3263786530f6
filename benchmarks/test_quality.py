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

One seed draws the random filters and the starting point (and the reference's random phase),
and a different draw moves these measures by a few hundredths on its own. With
``NSTAUDIO_QUALITY_SEEDS=0,1,2`` every row runs once per seed: the table gives each measure's
mean over the seeds with the per-seed values beside it, and compares methods with the
reference by those means (default: seed 0 alone).

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
from nstaudio import quality

from audio_fixtures import AUDIO_DIR
from conftest import machine_description, module_ran_whole, write_section

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

_rows = {}  # (pair index, method or "reference", seed) -> row


def _seeds(text):
    """The seeds of ``NSTAUDIO_QUALITY_SEEDS`` ("0,1,2"): distinct non-negative integers, in order."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise pytest.UsageError(f"NSTAUDIO_QUALITY_SEEDS must be distinct non-negative integers like 0,1,2, "
                                f"got {text!r}")
    return seeds


SEEDS = _seeds(os.environ.get("NSTAUDIO_QUALITY_SEEDS", "0"))


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
    """``record(pair_index, method, seed, row)``; the table is written when the module ran whole and passed."""
    yield lambda index, method, seed, row: _rows.__setitem__((index, method, seed), row)
    complete = module_ran_whole(request)
    table = _table()
    print("\n" + table)
    if complete and any(method == "reference" for _, method, _ in _rows):
        seeds = ("seed 0" if SEEDS == [0] else
                 f"seeds {', '.join(map(str, SEEDS))} (each measure: the mean over the seeds, then each seed's)")
        header = (f"Machine: {machine_description()}. Date: {time.strftime('%Y-%m-%d')}; {seeds}. Each method at its "
                  f"defaults (device cpu); reference: Ulyanov & Lebedev's setup in torch (SciPy L-BFGS-B "
                  f"unbounded, 100 iterations; Griffin-Lim from random phase, 100 iterations). style: texture "
                  f"movement content -> style (0 none, 1 all); content: onset-envelope correlation; phase: "
                  f"spectral convergence (dB); time: seconds, and as a fraction of the reference's.")
        write_section("quality", header, table)


def _table():
    lines = ["| pair | method | style | content | phase (dB) | seconds | time / reference |",
             "|---|---|---:|---:|---:|---:|---:|"]
    means = {}  # (pair index, method) -> the row's measures averaged over its seeds
    for index, pair in enumerate(PAIRS):
        for method in ("reference",) + METHODS:
            runs = [_rows[(index, method, seed)] for seed in SEEDS if (index, method, seed) in _rows]
            if runs:
                means[(index, method)] = {key: float(np.mean([run[key] for run in runs])) for key in runs[0]}
                means[(index, method)]["runs"] = runs
        reference = means.get((index, "reference"))
        for method in ("reference",) + METHODS:
            row = means.get((index, method))
            if row is None:
                continue
            share = f"{row['seconds'] / reference['seconds']:.2f}" if reference and method != "reference" else ""
            phase = "" if row["phase"] != row["phase"] else f"{row['phase']:.1f}"
            lines.append(f"| {_pair_id(pair)} | {method} | {_cell(row, 'style')} | {_cell(row, 'content')} | "
                         f"{phase} | {row['seconds']:.1f} | {share} |")
    return "\n".join(lines + [""] + _summary(means))


def _cell(row, key):
    """A measure's mean, and with several seeds each seed's value after it."""
    text = f"{row[key]:.2f}"
    if len(row["runs"]) > 1:
        text += " (" + ", ".join(f"{run[key]:.2f}" for run in row["runs"]) + ")"
    return text


def _summary(means):
    """A line per method: its lowest measures and, beside the reference, its worst differences and the
    pairs within 0.02 of it on both measures (the target of issue 15); with several seeds, each
    measure's largest spread over the seeds."""
    summary = []
    for method in ("reference",) + METHODS:
        rows = [(means[(i, method)], means.get((i, "reference"))) for i in range(len(PAIRS)) if (i, method) in means]
        if not rows or (method == "reference" and len(SEEDS) == 1):
            continue
        line = f"- {method}: {len(rows)} pairs"
        if method != "reference":
            line += (f"; lowest style {min(r['style'] for r, _ in rows):.2f}, lowest content "
                     f"{min(r['content'] for r, _ in rows):.2f}")
            against = [(r, ref) for r, ref in rows if ref]
            if against:
                within = sum(r["style"] >= ref["style"] - 0.02 and r["content"] >= ref["content"] - 0.02
                             for r, ref in against)
                worst = {key: _signed(min(r[key] - ref[key] for r, ref in against)) for key in ("style", "content")}
                line += (f"; against the reference, style {worst['style']} and content {worst['content']} at worst, "
                         f"within 0.02 on both on {within} of {len(against)}, time "
                         f"{max(r['seconds'] / ref['seconds'] for r, ref in against):.2f} of it at most")
        if len(SEEDS) > 1:
            spread = {key: max(np.ptp([run[key] for run in r["runs"]]) for r, _ in rows)
                      for key in ("style", "content")}
            line += f"; largest spread over the seeds: style {spread['style']:.2f}, content {spread['content']:.2f}"
        summary.append(line)
    return summary


def _signed(difference):
    """``+0.03``, ``-0.12``; a difference that rounds to zero is ``+0.00`` whatever its sign."""
    return f"{round(difference, 2) + 0.0:+.2f}"


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


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{seed}" for seed in SEEDS])
@pytest.mark.parametrize("index", range(len(PAIRS)), ids=[_pair_id(p) for p in PAIRS])
def test_reference(index, seed, record, torch):
    from torch_reference import torch_ulyanov

    (content, sr), (style, style_sr) = _load(PAIRS[index][0]), _load(PAIRS[index][1])
    start = time.perf_counter()
    y, info = torch_ulyanov(content, style, sr, style_sr=style_sr, seed=seed)
    seconds = time.perf_counter() - start
    assert y.shape == content.shape and np.all(np.isfinite(y))
    record(index, "reference", seed, dict(_measure(y, content, sr, style, style_sr), phase=info["phase_convergence_db"],
                                    seconds=seconds))


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{seed}" for seed in SEEDS])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("index", range(len(PAIRS)), ids=[_pair_id(p) for p in PAIRS])
def test_method(index, method, seed, record, style_models):
    (content, sr), (style, style_sr) = _load(PAIRS[index][0]), _load(PAIRS[index][1])
    given = dict(model=style_models(PAIRS[index][1])) if method == "feedforward" else dict(style=style,
                                                                                          style_sr=style_sr)
    name, settings = VARIANTS.get(method, (method, {}))
    start = time.perf_counter()
    y, info = nst.stylize(content, sr=sr, method=name, device="cpu", seed=seed, return_info=True, **given,
                          **settings)
    seconds = time.perf_counter() - start
    assert y.shape == content.shape and np.all(np.isfinite(y))
    record(index, method, seed, dict(_measure(y, content, sr, style, style_sr), phase=info.phase_convergence_db,
                               seconds=seconds))
