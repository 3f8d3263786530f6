"""The style-transfer methods, one module each, and the registry that lists them (see ``registry``).

Adding a method: a module here that builds a :class:`~nstaudio.methods.registry.Method`, and
its line below. The first method that needs style recordings is the default.
"""

from . import feedforward, gan, optimize, timedomain
from .registry import Method, Registry

__all__ = ["Method", "REGISTRY", "Registry"]

REGISTRY = Registry([optimize.METHOD, feedforward.METHOD, timedomain.METHOD, gan.METHOD])
