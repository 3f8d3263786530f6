"""Real time: a trained style model as a streaming effect (:class:`Stream`)."""

from .stream import Stream

__all__ = ["Stream"]
