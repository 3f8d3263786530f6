"""Phase starts for fast Griffin-Lim: random, the content's, and PGHI, on true spectrograms and on outputs.

Spectral convergence (dB, lower is better) after 0, 8, 32 and 100 iterations from each start,
on the true magnitudes of real recordings (where the content start is the true phase, so only
random and PGHI tell anything) and on what the ``optimize`` method makes of three pairs at its
defaults (where the content start is the content recording's phase). Written to the ``phase``
section of RESULTS.md when this module ran whole and passed; the default ``phase_init`` of
each method is chosen from this table.
"""

import os
import time

import numpy as np
import pytest

import nstaudio as nst
from nstaudio import spectral

from audio_fixtures import AUDIO_DIR, SR
from conftest import machine_description, module_ran_whole, write_section

N_FFT, HOP = 2048, 512
CHECKPOINTS = (0, 8, 32, 100)
STARTS = ("random", "content", "pghi")
RECORDINGS = ("piano.wav", "violin.wav", "drums.wav", "speech_festival.wav")
OUTPUT_PAIRS = (("piano.wav", "violin.wav"), ("speech_festival.wav", "drums.wav"), ("drums.wav", "violin.wav"))

_rows = []


def _mono(name):
    path = os.path.join(AUDIO_DIR, name)
    if not os.path.isfile(path):
        pytest.skip(f"{path} is not there (set NSTAUDIO_AUDIO_DIR)")
    return nst.load(path, sr=SR, mono=True)[0][0]


def _convergence_curve(S, start, content_spec):
    """SC (dB) at each of CHECKPOINTS, and the seconds the start itself took."""
    began = time.perf_counter()
    if start == "pghi":
        init = nst.pghi(S, hop_length=HOP, seed=0)
    elif start == "content":
        init = content_spec
    else:
        init = 2 * np.pi * np.random.default_rng(0).random(S.shape)
    start_seconds = time.perf_counter() - began
    angles = np.exp(1j * np.angle(init)) if np.iscomplexobj(init) else np.exp(1j * init)
    rebuilt = nst.stft(nst.istft(S * angles, hop_length=HOP), n_fft=N_FFT, hop_length=HOP)
    curve = {0: spectral.spectral_convergence(S, rebuilt)}
    _, history = nst.griffin_lim(S, n_iter=max(CHECKPOINTS), hop_length=HOP, init=init, seed=0,
                                 return_convergence=True, device="cpu")
    curve.update({n: float(history[n - 1]) for n in CHECKPOINTS if n})
    return curve, start_seconds


@pytest.fixture(scope="module")
def record(request):
    yield _rows.append
    lines = ["| magnitudes | start | " + " | ".join(f"{n} it." for n in CHECKPOINTS) + " | start (s) |",
             "|---|---|" + "---:|" * (len(CHECKPOINTS) + 1)]
    for row in sorted(_rows, key=lambda r: (r['what'].startswith('optimize'), r['what'], STARTS.index(r['start']))):
        lines.append(f"| {row['what']} | {row['start']} | "
                     + " | ".join(f"{row['curve'][n]:.1f}" for n in CHECKPOINTS) + f" | {row['seconds']:.2f} |")
    table = "\n".join(lines)
    print("\n" + table)
    complete = module_ran_whole(request)
    if complete and _rows:
        header = (f"Machine: {machine_description()}. Date: {time.strftime('%Y-%m-%d')}. Spectral convergence "
                  f"(dB) of fast Griffin-Lim (momentum 0.99, n_fft {N_FFT}, hop {HOP}) after 0, 8, 32 and 100 "
                  f"iterations from each start; on true magnitudes the content start is the true phase.")
        write_section("phase", header, table)


@pytest.mark.parametrize("name", RECORDINGS)
@pytest.mark.parametrize("start", STARTS)
def test_true_spectrogram(name, start, record):
    spec = nst.stft(_mono(name), n_fft=N_FFT, hop_length=HOP)
    curve, seconds = _convergence_curve(np.abs(spec), start, spec)
    assert all(np.isfinite(v) for v in curve.values())
    record(dict(what=f"true: {name}", start=start, curve=curve, seconds=seconds))


@pytest.fixture(scope="module")
def outputs():
    """The optimize method's output magnitudes and the content's STFT, per pair (computed once)."""
    cache = {}

    def get(pair):
        if pair not in cache:
            content, style = _mono(pair[0]), _mono(pair[1])
            X = np.log1p(np.abs(nst.stft(content[None], n_fft=N_FFT, hop_length=HOP)))
            S = np.log1p(np.abs(nst.stft(style, n_fft=N_FFT, hop_length=HOP)))
            Y, _ = nst.optimize(X, [S], device="cpu")
            cache[pair] = np.expm1(Y[0]), nst.stft(content, n_fft=N_FFT, hop_length=HOP)
        return cache[pair]
    return get


@pytest.mark.parametrize("pair", OUTPUT_PAIRS, ids=lambda p: f"{p[0]}<-{p[1]}")
@pytest.mark.parametrize("start", STARTS)
def test_optimize_output(pair, start, record, outputs):
    magnitude, content_spec = outputs(pair)
    curve, seconds = _convergence_curve(magnitude, start, content_spec)
    assert all(np.isfinite(v) for v in curve.values())
    record(dict(what=f"optimize: {pair[0]} <- {pair[1]}", start=start, curve=curve, seconds=seconds))
