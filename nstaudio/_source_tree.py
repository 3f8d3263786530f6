"""A checkout imports as the installed package does.

The repository keeps ``kernels/`` and ``cli/`` beside ``nstaudio/`` (DESIGN.md), and the
installer maps them in as ``nstaudio.kernels`` and ``nstaudio.cli``. Python run inside a
checkout (``python -c "import nstaudio"``, ``python -m nstaudio``, a test's subprocess)
finds the source folder ``nstaudio/`` first, where those subpackages are missing. This module
gives the source tree the same mapping with a finder on ``sys.meta_path`` that answers for
exactly those two names (their own submodules then come from their folders as usual). An
installed copy, which has them inside, is left alone.
"""

import importlib.abc
import importlib.util
import os
import sys

# Subpackage -> folder beside nstaudio/, as [tool.setuptools.package-dir] in pyproject.toml maps them.
MAPPED = {"nstaudio.kernels": "kernels", "nstaudio.cli": "cli"}


class SourceTreeFinder(importlib.abc.MetaPathFinder):
    """Finds ``nstaudio.kernels`` and ``nstaudio.cli`` in the folders beside the source package.

    Parameters
    ----------
    root : str
        The checkout: the folder holding ``nstaudio/``, ``kernels/`` and ``cli/``.
    """

    def __init__(self, root):
        self.root = root

    def find_spec(self, fullname, path=None, target=None):
        folder = MAPPED.get(fullname)
        if folder is None:
            return None
        location = os.path.join(self.root, folder)
        return importlib.util.spec_from_file_location(fullname, os.path.join(location, "__init__.py"),
                                                      submodule_search_locations=[location])


def install():
    """Put a :class:`SourceTreeFinder` first on ``sys.meta_path`` when this package is a checkout's source folder."""
    package = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(package)
    if all(os.path.isdir(os.path.join(package, folder)) for folder in MAPPED.values()):
        return  # installed: the subpackages are inside
    if not all(os.path.isfile(os.path.join(root, folder, "__init__.py")) for folder in MAPPED.values()):
        return
    if not any(isinstance(finder, SourceTreeFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, SourceTreeFinder(root))
