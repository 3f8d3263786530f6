"""Exceptions raised by nstaudio.

Every error a user can cause derives from :class:`NstAudioError`, so the CLI can
turn it into one line on stderr instead of a traceback (the librosa convention
of a single package-level root exception).
"""


class NstAudioError(Exception):
    """Root of every error nstaudio raises on purpose."""


class ParameterError(NstAudioError, ValueError):
    """A parameter has an invalid value; the message names the parameter and the value."""


class AudioError(NstAudioError):
    """Audio that cannot be used: unreadable, empty, silent, non-finite or too short."""


class BackendError(NstAudioError, RuntimeError):
    """A requested compute backend is not available; the message names the missing piece."""


class OutputError(NstAudioError, OSError):
    """An output that cannot be written: missing or read-only directory, bad name, full disk."""


class NumericalError(NstAudioError, ArithmeticError):
    """A computation stopped being finite (a diverging optimizer or training run); nothing is written."""
