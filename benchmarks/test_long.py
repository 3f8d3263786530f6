"""Long recordings: a rendered song of 1 and 3 minutes, whole and in segments, with time, peak memory,
quality and seams; writes RESULTS.md's "long" section.

The songs are rendered by scripts/make_song.py (fluidsynth and the FluidR3 GM SoundFont; skipped
without them) into build/. Each run is a process of its own (benchmarks/long_run.py), so that its peak
RSS is its own. The runs at the defaults take minutes each: ``-k expected`` runs the fast half.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from audio_fixtures import AUDIO_DIR
from conftest import machine_description, module_ran_whole, write_section

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
BUILD = os.path.join(ROOT, "build")
STYLE = os.path.join(AUDIO_DIR, "violin.wav")
CASES = [  # (song seconds, settings)
    (60, {"network": "expected", "segment": 0}),
    (60, {"network": "expected"}),
    (180, {"network": "expected"}),
    (60, {}),
]
_rows = []


def song(seconds):
    path = os.path.join(BUILD, f"song-{seconds}s.wav")
    if not os.path.exists(path):
        if shutil.which("fluidsynth") is None or not os.path.exists("/usr/share/sounds/sf2/FluidR3_GM.sf2"):
            pytest.skip("rendering the song needs fluidsynth and fluid-soundfont-gm")
        pytest.importorskip("mido", reason="rendering the song needs the corpus extra (mido)")
        os.makedirs(BUILD, exist_ok=True)
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_song.py"), path,
                        "--seconds", str(seconds)], check=True)
    return path


@pytest.fixture(scope="module", autouse=True)
def table(request):
    yield
    if not module_ran_whole(request) or not os.path.exists(STYLE):
        return
    lines = ["| song | settings | segments | time | seconds per minute | peak RSS | iterations | style / content | "
             "joins over the flux p95 |", "|---|---|---:|---:|---:|---:|---:|---|---|"]
    for seconds, r in _rows:
        described = ", ".join(f"{k}={v}" for k, v in r["settings"].items()) or "defaults"
        joins = "-" if r["segments"] == 1 else f"{r['seams_over']} of {r['segments'] - 1}"
        lines.append(f"| {seconds} s stereo 44.1 kHz | {described} | {r['segments']} | {r['seconds']:.1f} s | "
                     f"{60 * r['seconds'] / seconds:.1f} s | {r['peak_gb']:.2f} GB | {r['iterations']} | "
                     f"{r['style']:.2f} / {r['content']:.2f} | {joins} |")
    write_section("long", f"Machine: {machine_description()}. Written by benchmarks/test_long.py (style: violin.wav, "
                  "device cpu, seed 0).", "\n".join(lines))


@pytest.mark.parametrize("seconds, settings", CASES, ids=[f"{s}s-{json.dumps(c)}" for s, c in CASES])
def test_long_recording(seconds, settings):
    if not os.path.exists(STYLE):
        pytest.skip(f"no {STYLE}")
    run = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "long_run.py"), song(seconds),
                          STYLE, json.dumps(settings)], check=True, capture_output=True, text=True)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    _rows.append((seconds, result))
    assert result["style"] > 0.1 and result["content"] > 0.8, result  # the style moved, the song is still there
    if result["segments"] > 1:
        assert result["peak_gb"] < 2.0 + result["decoded_gb"], result
