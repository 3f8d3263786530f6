"""Generate the speech and instrument corpus the shipped loss network is trained on.

Reproducible: every text, voice, melody and instrument below is drawn from a seeded
generator, and the tools are deterministic. Needs the Debian packages espeak-ng, festival
and fluidsynth with fluid-soundfont-gm, and the ``corpus`` extra (mido)::

    apt-get install espeak-ng festival fluidsynth fluid-soundfont-gm
    pip install ".[corpus]"
    python scripts/make_corpus.py build/corpus

A style domain for ``nstaudio train-gan`` is one instrument alone, e.g. 24 violin melodies
(General MIDI program 40; about 4.4 minutes)::

    python scripts/make_corpus.py build/violin --speech 0 --festival 0 --instruments 24 --program 40

Writes mono 22.05 kHz WAV files named ``speech-espeak-NNN.wav``, ``speech-festival-NNN.wav``
and ``instrument-NNN.wav``. An existing directory is refilled from scratch only if it holds
nothing but such files (a corpus made before); any other non-empty directory is refused.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

import nstaudio as nst
from nstaudio.models import TRAINING_PEAK

SR = 22050
SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"

SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "A journey of a thousand miles begins with a single step.",
    "Every morning the baker opens his shop before the sun comes up.",
    "Music is the space between the notes, and silence gives it shape.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "The rain in Spain stays mainly in the plain, or so the old song says.",
    "Seven slow swans swam silently across the cold and quiet lake.",
    "In the beginning the universe was created, and this made a lot of people angry.",
    "We choose to go to the moon not because it is easy, but because it is hard.",
    "The library closes at nine, so return your books before the evening bell.",
    "Thunder rolled across the valley as the farmers hurried the cattle home.",
    "How much wood would a woodchuck chuck if a woodchuck could chuck wood?",
    "The orchestra tuned their instruments while the audience found their seats.",
    "Numbers, letters and colours fill the pages of the child's first book.",
    "Bright lights and loud voices filled the station as the last train arrived.",
    "Reading aloud helps you hear the rhythm and the music of a sentence.",
    "The old clock in the hallway struck twelve, and the house fell silent.",
    "Fresh bread, ripe cheese and cold water made a perfect summer lunch.",
    "Sound travels faster through water than it does through air.",
]

ESPEAK_VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "de", "fr", "es", "it", "nl"]
ESPEAK_VARIANTS = ["m1", "m2", "m3", "m4", "m7", "f1", "f2", "f3", "f4", "f5", "croak", "whisper"]

# General MIDI programs (0-based) with a playable pitch range each.
INSTRUMENTS = [
    (0, 48, 84), (4, 48, 84), (6, 48, 84), (11, 53, 89), (19, 36, 84), (24, 40, 76), (25, 40, 76),
    (33, 28, 55), (40, 55, 96), (41, 48, 84), (42, 36, 72), (48, 40, 84), (52, 48, 79), (56, 55, 82),
    (57, 40, 72), (60, 41, 77), (65, 49, 80), (68, 58, 91), (71, 50, 91), (73, 60, 96), (75, 60, 96),
    (80, 48, 84), (81, 48, 84), (89, 36, 84), (105, 48, 77), (114, 48, 84),
]
MAJOR, MINOR = [0, 2, 4, 5, 7, 9, 11], [0, 2, 3, 5, 7, 8, 10]


def _require(tool):
    if shutil.which(tool) is None:
        sys.exit(f"error: {tool} not found; install espeak-ng, festival, fluidsynth and fluid-soundfont-gm")


def _to_corpus_wav(source, target):
    """Any WAV -> mono 22.05 kHz at the level networks train on (peak -1 dBFS)."""
    y, sr = nst.load(source, sr=SR, mono=True)
    peak = np.max(np.abs(y))
    if peak > 0:
        nst.save(target, y * (TRAINING_PEAK / peak), SR)


def espeak_clip(text, voice, variant, speed, pitch, target, tmp):
    raw = os.path.join(tmp, "espeak.wav")
    subprocess.run(["espeak-ng", "-v", f"{voice}+{variant}", "-s", str(speed), "-p", str(pitch), "-w", raw, text],
                   check=True, capture_output=True)
    _to_corpus_wav(raw, target)


def festival_clip(text, stretch, target, tmp):
    raw, script = os.path.join(tmp, "festival.wav"), os.path.join(tmp, "text.txt")
    with open(script, "w") as f:
        f.write(text)
    subprocess.run(["text2wave", "-o", raw, "-eval", f"(Parameter.set 'Duration_Stretch {stretch})", script],
                   check=True, capture_output=True)
    _to_corpus_wav(raw, target)


def melody_midi(path, program, low, high, rng, seconds=8.0):
    """A random melody in a random key (with chords on polyphonic instruments) as a MIDI file."""
    import mido

    tempo = int(rng.integers(70, 150))
    ticks = 480
    mid = mido.MidiFile(ticks_per_beat=ticks)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo)))
    track.append(mido.Message("program_change", program=program, channel=0))
    scale = MAJOR if rng.random() < 0.5 else MINOR
    root = int(rng.integers(low, max(low + 1, high - 12)))
    pitches = [p for octave in range(-2, 4) for p in (root + 12 * octave + s for s in scale) if low <= p <= high]
    index = len(pitches) // 2
    beats = seconds * tempo / 60
    elapsed = 0.0
    while elapsed < beats:
        length = float(rng.choice([0.25, 0.5, 0.5, 1.0, 1.0, 1.5, 2.0]))
        index = int(np.clip(index + rng.integers(-3, 4), 0, len(pitches) - 1))
        chord = [pitches[index]]
        if program in (0, 4, 6, 19, 24, 48, 52) and rng.random() < 0.3:
            chord += [p for p in (pitches[min(index + 2, len(pitches) - 1)], pitches[min(index + 4, len(pitches) - 1)])
                      if p not in chord]
        velocity = int(rng.integers(60, 120))
        for i, p in enumerate(chord):
            track.append(mido.Message("note_on", note=p, velocity=velocity, time=0))
        duration = int(length * ticks)
        for i, p in enumerate(chord):
            track.append(mido.Message("note_off", note=p, velocity=0, time=duration if i == 0 else 0))
        elapsed += length
    mid.save(path)


def instrument_clip(program, low, high, rng, target, tmp):
    midi, raw = os.path.join(tmp, "melody.mid"), os.path.join(tmp, "fluidsynth.wav")
    melody_midi(midi, program, low, high, rng)
    subprocess.run(["fluidsynth", "-ni", "-g", "0.6", "-r", str(SR), "-F", raw, SOUNDFONT, midi],
                   check=True, capture_output=True)
    _to_corpus_wav(raw, target)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("--speech", type=int, default=60, help="espeak-ng clips (default 60)")
    parser.add_argument("--festival", type=int, default=20, help="festival clips (default 20)")
    parser.add_argument("--instruments", type=int, default=80, help="fluidsynth clips (default 80)")
    parser.add_argument("--program", type=int, default=None,
                        help="render every instrument clip with this General MIDI program (0-127) instead of the "
                             "mix: a one-instrument style domain for train-gan")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.program is not None and not 0 <= args.program <= 127:
        sys.exit(f"error: --program must be a General MIDI program from 0 to 127, got {args.program}")
    ranges = {program: (low, high) for program, low, high in INSTRUMENTS}
    for tool in ("espeak-ng", "text2wave", "fluidsynth"):
        _require(tool)
    if not os.path.exists(SOUNDFONT):
        sys.exit(f"error: {SOUNDFONT} not found; install fluid-soundfont-gm")
    if os.path.exists(args.out_dir):
        if not os.path.isdir(args.out_dir):
            sys.exit(f"error: {args.out_dir} exists and is not a directory")
        foreign = [name for name in os.listdir(args.out_dir)
                   if not (name.startswith(("speech-", "instrument-")) and name.endswith(".wav"))]
        if foreign:
            sys.exit(f"error: {args.out_dir} holds other files ({', '.join(sorted(foreign)[:3])}...); "
                     f"give a new or a corpus directory")
        shutil.rmtree(args.out_dir)
    os.makedirs(args.out_dir)
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.speech):
            text = " ".join(rng.choice(SENTENCES, size=2, replace=False))
            espeak_clip(text, rng.choice(ESPEAK_VOICES), rng.choice(ESPEAK_VARIANTS), int(rng.integers(120, 200)),
                        int(rng.integers(20, 80)), os.path.join(args.out_dir, f"speech-espeak-{i:03d}.wav"), tmp)
        for i in range(args.festival):
            text = " ".join(rng.choice(SENTENCES, size=2, replace=False))
            festival_clip(text, round(float(rng.uniform(0.8, 1.3)), 2),
                          os.path.join(args.out_dir, f"speech-festival-{i:03d}.wav"), tmp)
        for i in range(args.instruments):
            if args.program is None:
                program, low, high = INSTRUMENTS[i % len(INSTRUMENTS)]
            else:
                program, (low, high) = args.program, ranges.get(args.program, (48, 84))
            instrument_clip(program, low, high, rng, os.path.join(args.out_dir, f"instrument-{i:03d}.wav"), tmp)
    print(f"{len(os.listdir(args.out_dir))} clips in {args.out_dir}")


if __name__ == "__main__":
    main()
