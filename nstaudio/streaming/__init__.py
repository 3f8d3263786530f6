"""Real time: a trained model as a streaming effect (:class:`Stream`), and a file or audio devices through one."""

from .stream import Stream

__all__ = ["Stream"]
