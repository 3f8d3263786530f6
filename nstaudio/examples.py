"""Paths of the example recordings shipped inside the package."""

from importlib import resources


def example_path(name):
    """Path of a bundled example: ``"content"`` (4 s of piano) or ``"style"`` (4 s of violin).

    Both are mono 22.05 kHz clips rendered from the MIT-licensed FluidR3 General MIDI SoundFont.
    """
    return str(resources.files("nstaudio") / "data" / f"example_{name}.wav")
