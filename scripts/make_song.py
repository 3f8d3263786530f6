"""Render a reproducible song of any length, for the long-recording benchmarks (benchmarks/test_long.py).

Four parts in one General MIDI file, rendered by fluidsynth with the FluidR3 GM SoundFont
(MIT licence, Debian's fluid-soundfont-gm) as stereo 44.1 kHz: piano chords, a bass line, a
melody (flute, then trumpet, then violin, a verse each) and a drum kit, in a seeded key and
tempo, the parts panned apart. Needs fluidsynth, fluid-soundfont-gm and the ``corpus``
extra (mido)::

    apt-get install fluidsynth fluid-soundfont-gm
    pip install ".[corpus]"
    python scripts/make_song.py build/song-60s.wav --seconds 60
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

import nstaudio as nst

SR = 44100
SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
TICKS = 480
MAJOR = (0, 2, 4, 5, 7, 9, 11)
PROGRESSION = (0, 5, 3, 4)  # I vi IV V, as scale degrees
MELODY_PROGRAMS = (73, 56, 40)  # flute, trumpet, violin
PIANO, BASS, DRUMS = 0, 33, 9  # programs; 9 is the drum channel


def song_midi(path, seconds, seed):
    """Write a song of about ``seconds`` as a type-1 MIDI file (one track per part)."""
    import mido

    rng = np.random.default_rng(seed)
    tempo = int(rng.integers(90, 130))
    root = int(rng.integers(55, 62))
    bars = max(1, int(np.ceil(seconds * tempo / 60 / 4)))
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS)
    meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo))])
    mid.tracks.append(meta)
    parts = {name: mido.MidiTrack() for name in ("piano", "bass", "melody", "drums")}
    for channel, (name, pan) in enumerate((("piano", 40), ("bass", 64), ("melody", 88))):
        parts[name].append(mido.Message("control_change", channel=channel, control=10, value=pan, time=0))
    parts["piano"].append(mido.Message("program_change", channel=0, program=PIANO, time=0))
    parts["bass"].append(mido.Message("program_change", channel=1, program=BASS, time=0))
    events = {name: [] for name in parts}  # (tick, note, velocity, length, channel)
    verse = max(1, bars // len(MELODY_PROGRAMS))
    scale = [root + 12 * octave + step for octave in (-1, 0, 1) for step in MAJOR]
    for bar in range(bars):
        start = bar * 4 * TICKS
        degree = PROGRESSION[bar % len(PROGRESSION)]
        chord = [root + MAJOR[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
        for beat in (0, 2):
            for note in chord:
                events["piano"].append((start + beat * TICKS, note, 70, 2 * TICKS - 20, 0))
        for beat in range(4):
            events["bass"].append((start + beat * TICKS, chord[0] - 24, 90, TICKS - 30, 1))
        if bar % verse == 0:
            program = MELODY_PROGRAMS[min(bar // verse, len(MELODY_PROGRAMS) - 1)]
            events["melody"].append((start, None, program, 0, 2))
        tick = start
        while tick < start + 4 * TICKS:
            length = int(rng.choice([TICKS // 2, TICKS, TICKS, 2 * TICKS]))
            note = int(rng.choice([n for n in scale if abs(n - chord[0] - 12) <= 9]))
            events["melody"].append((tick, note, int(rng.integers(70, 110)), length - 20, 2))
            tick += length
        for eighth in range(8):
            tick = start + eighth * TICKS // 2
            events["drums"].append((tick, 42, 60, TICKS // 4, DRUMS))  # closed hi-hat
            if eighth in (0, 4):
                events["drums"].append((tick, 36, 110, TICKS // 4, DRUMS))  # kick
            if eighth in (2, 6):
                events["drums"].append((tick, 38, 100, TICKS // 4, DRUMS))  # snare
    for name, track in parts.items():
        messages = []
        for tick, note, velocity, length, channel in events[name]:
            if note is None:  # a program change for the next verse
                messages.append((tick, 0, mido.Message("program_change", channel=channel, program=velocity)))
                continue
            messages.append((tick, 1, mido.Message("note_on", channel=channel, note=note, velocity=velocity)))
            messages.append((tick + length, 0, mido.Message("note_off", channel=channel, note=note, velocity=0)))
        now = 0
        for tick, _, message in sorted(messages, key=lambda m: (m[0], m[1])):
            track.append(message.copy(time=tick - now))
            now = tick
        mid.tracks.append(track)
    mid.save(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.seconds > 0:
        sys.exit(f"error: --seconds must be positive, got {args.seconds}")
    if not os.path.exists(SOUNDFONT):
        sys.exit(f"error: {SOUNDFONT} not found; install fluid-soundfont-gm")
    with tempfile.TemporaryDirectory() as tmp:
        midi, raw = os.path.join(tmp, "song.mid"), os.path.join(tmp, "song.wav")
        song_midi(midi, args.seconds, args.seed)
        subprocess.run(["fluidsynth", "-ni", "-g", "0.5", "-r", str(SR), "-F", raw, SOUNDFONT, midi],
                       check=True, capture_output=True)
        y, sr = nst.load(raw)
        y = y[:, :int(round(args.seconds * sr))]
        y *= np.float32(0.5 / max(float(np.abs(y).max()), 1e-9))  # -6 dBFS peak
        nst.save(args.output, y, sr)
    print(f"wrote {args.output}: {y.shape[1] / sr:.1f} s, {y.shape[0]} channels, {sr} Hz")


if __name__ == "__main__":
    main()
