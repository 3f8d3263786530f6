"""Every package directory of the source tree is listed in pyproject.toml (a clean install ships it)."""

import os

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python >= 3.11")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_all_packages_are_listed():
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
