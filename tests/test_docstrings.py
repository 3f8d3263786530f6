"""Every public name's numpydoc docstring matches its signature (numpydoc.validate over nstaudio.__all__).

A function's parameters are all documented and nothing else is (PR01, PR02, PR10); a function whose
docstring says it takes another's parameters ("Check :func:`train_style`'s settings") is held to that one's
documentation; a dataclass's fields are its Attributes.
"""

import dataclasses
import inspect
import re

import pytest

import nstaudio

numpydoc = pytest.importorskip("numpydoc.validate", reason="numpydoc is in the test extra")

PUBLIC = [name for name in nstaudio.__all__ if inspect.isfunction(getattr(nstaudio, name))
          or dataclasses.is_dataclass(getattr(nstaudio, name))]
SIGNATURE_CODES = ("PR01", "PR02", "PR10")


def _documented(name):
    from numpydoc.docscrape import FunctionDoc

    doc = FunctionDoc(getattr(nstaudio, name))
    return {n.strip("*") for parameter in doc["Parameters"] for n in parameter.name.split(", ")}


@pytest.mark.parametrize("name", PUBLIC)
def test_the_docstring_matches_the_signature(name):
    obj = getattr(nstaudio, name)
    if dataclasses.is_dataclass(obj):
        from numpydoc.docscrape import ClassDoc

        attributes = {n for a in ClassDoc(obj)["Attributes"] for n in a.name.split(", ")}
        assert {f.name for f in dataclasses.fields(obj)} <= attributes, name
        return
    delegate = re.match(r"\s*(?:As|Check) :func:`(\w+)`", obj.__doc__)
    if delegate is not None:
        own = set(inspect.signature(obj).parameters)
        assert own <= _documented(delegate.group(1)) | {"kind"}, (name, own - _documented(delegate.group(1)))
        return
    errors = [(code, message) for code, message in numpydoc.validate(f"nstaudio.{name}")["errors"]
              if code in SIGNATURE_CODES]
    assert not errors, errors
