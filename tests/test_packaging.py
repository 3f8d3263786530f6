"""Packaging: every package directory ships, and a checkout imports as the installed package does."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("args", [["-c", "import nstaudio.kernels.cpu, nstaudio.cli.main"],
                                  ["-m", "nstaudio", "--help"]])
def test_the_checkout_imports_as_the_installed_package(args):
    """In the repository root Python finds the source folder nstaudio/ first, without kernels/ and cli/ inside.

    With a normal (non-editable) install, as CI has, this child imports the source tree.
    """
    # An editable install's own finder would map kernels/ and cli/ too: take it away, so that only
    # what a checkout itself provides is tested (CI's install is a normal one anyway).
    drop_editable = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path "
                     "if '__editable__' not in getattr(f, '__module__', '') + getattr(type(f), '__module__', '')]; ")
    command = (["-c", drop_editable + args[1]] if args[0] == "-c" else
               ["-c", drop_editable + "import runpy; sys.argv = ['nstaudio', '--help']; "
                "runpy.run_module('nstaudio', run_name='__main__')"])
    proc = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_all_packages_are_listed():
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python >= 3.11")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        config = tomllib.load(f)["tool"]["setuptools"]
    listed = set(config["packages"])
    package_dir = config["package-dir"]
    found = set()
    for package, directory in package_dir.items():
        for here, dirs, files in os.walk(os.path.join(ROOT, directory)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            if "__init__.py" in files:
                relative = os.path.relpath(here, os.path.join(ROOT, directory))
                found.add(package if relative == "." else f"{package}.{relative.replace(os.sep, '.')}")
    assert found <= listed, f"missing from [tool.setuptools] packages: {sorted(found - listed)}"
