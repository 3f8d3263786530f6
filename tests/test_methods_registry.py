"""Methods as plug-ins (issue 15, part 1): adding a method is one Method and one registration.

A toy method registered here runs through ``stylize`` like the real ones; ``stylize`` names no
method; the CLI's per-method defaults come from the registry.
"""

import inspect
import re

import numpy as np
import pytest
from click.testing import CliRunner

import nstaudio as nst
from nstaudio import api
from nstaudio.cli.main import main
from nstaudio.errors import ParameterError
from nstaudio.methods import REGISTRY
from nstaudio.methods.registry import DEFAULTED, Method

from conftest import harmonic_tone

TOY_DEFAULTS = dict(alpha=None, n_filters=None, width=None, learning_rate=None, optimizer=None, tolerance=None,
                    tolerance_window=None, phase_iters=16, phase_init="content", temporal_weight=None,
                    spectral_weight=None, hop_divisor=4)


def _identity(content, styles, options, model, callback):
    return content, dict(loss=0.0, initial_loss=0.0, style_loss=0.0, initial_style_loss=0.0, content_loss=0.0,
                         iterations=0, evaluations=0, converged=False, backend="numpy", gram_form="none",
                         history=np.empty(0))


@pytest.fixture
def registered():
    """Register methods for one test, and remove them afterwards."""
    names = []

    def register(method):
        REGISTRY.register(method)
        names.append(method.name)
        return method

    yield register
    for name in names:
        REGISTRY.unregister(name)


def test_a_toy_spectrogram_method_runs_through_the_pipeline(registered):
    seen = {}

    def run(content, styles, options, model, callback):
        seen.update(content=content.shape, styles=[s.shape for s in styles], n_fft=options["n_fft"])
        return _identity(content, styles, options, model, callback)

    registered(Method(name="toy-identity", summary="keeps the content's magnitudes", needs="style",
                      input="log_spectrogram", output="log_spectrogram", defaults=TOY_DEFAULTS, run=run))
    content, style = harmonic_tone(1.0), harmonic_tone(1.0, f0=330)
    out, info = nst.stylize(content, style, 22050, method="toy-identity", n_fft=512, return_info=True)
    assert seen == {"content": (1, 257, 1 + 22050 // 128), "styles": [(257, 1 + 22050 // 128)], "n_fft": 512}
    assert info.method == "toy-identity" and out.shape == content.shape
    assert np.corrcoef(out, content)[0, 1] > 0.99  # its own magnitudes from its own phase: the content again


def test_a_toy_waveform_method_needs_no_phase_step(registered):
    registered(Method(name="toy-half", summary="halves the waveform", needs="style", input="waveform",
                      output="waveform", defaults=dict(TOY_DEFAULTS, phase_iters=None, phase_init=None),
                      run=lambda content, styles, options, model, callback: (
                          0.5 * content, _identity(content, styles, options, model, callback)[1])))
    content = harmonic_tone(1.0)
    out = nst.stylize(content, harmonic_tone(1.0, f0=330), 22050, method="toy-half", match_loudness=False)
    np.testing.assert_allclose(out, 0.5 * content, atol=1e-6)
    with pytest.raises(ParameterError, match="reconstructs no phase"):
        nst.stylize(content, content, 22050, method="toy-half", phase_iters=5)
    with pytest.raises(ParameterError, match="phase_init does not apply"):
        nst.stylize(content, content, 22050, method="toy-half", phase_init="pghi")


def _code(function):
    """A function's source without its docstring (which may well name methods)."""
    return inspect.getsource(function).replace(function.__doc__ or "", "")


def test_stylize_names_no_method():
    source = _code(api.stylize) + _code(api._resolve_options)
    source = source.replace('stage="optimize"', "stage=STAGE")  # the progress stage of that name, not the method
    for name in REGISTRY.names():
        assert not re.search(rf"[\"']{name}[\"']", source), f"stylize names {name!r}"


def test_registry_checks_what_a_method_declares(registered):
    with pytest.raises(ValueError, match="gives no default"):
        Method(name="incomplete", summary="", needs="style", input="waveform", output="waveform",
               defaults={"alpha": 1.0}, run=_identity)
    with pytest.raises(ValueError, match="needs a model"):
        Method(name="no-settings", summary="", needs="model", input="waveform", output="waveform",
               defaults=TOY_DEFAULTS, run=_identity)
    with pytest.raises(ValueError, match="registered already"):
        REGISTRY.register(REGISTRY.get("optimize"))
    with pytest.raises(ParameterError, match="method must be one of"):
        nst.stylize(harmonic_tone(1.0), harmonic_tone(1.0), 22050, method="no-such-method")


def test_the_default_is_the_first_style_method_or_the_first_model_method():
    assert REGISTRY.resolve(None, None).name == api.methods()[0] == "optimize"
    assert REGISTRY.resolve(None, object()).needs == "model"


def test_cli_help_shows_every_method_and_its_defaults():
    text = " ".join(CliRunner().invoke(main, ["run", "--help"]).output.split())
    for name in REGISTRY.names():
        method = REGISTRY.get(name)
        assert " ".join(method.summary.split()) in text
        for option in DEFAULTED:
            value = method.defaults[option]
            if value is not None and option != "hop_divisor":
                shown = f"{value:g}" if isinstance(value, float) else str(value)
                assert re.search(rf"\b{re.escape(shown)}( for [a-z, ]*{name})?", text), (name, option, shown)


README_ROWS = {"--alpha": "alpha", "--tol": "tolerance", "--tol-window": "tolerance_window", "--width": "width",
               "--optimizer": "optimizer", "--learning-rate": "learning_rate", "--phase-iters": "phase_iters",
               "--phase-init": "phase_init", "--hop": "hop_divisor",
               "--temporal-weight": "temporal_weight", "--spectral-weight": "spectral_weight",
               "--filters": "n_filters", "--network": "network"}


@pytest.mark.parametrize("flag", sorted(README_ROWS))
def test_readme_defaults_match_the_registry(flag):
    """The README's option table shows each method's default as the registry has it: "0.01 (1 for `timedomain`)"."""
    import os

    readme = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")).read()
    cell = re.search(rf"^\| `{flag}` \| ([^|]+) \|", readme, re.M).group(1).strip()
    option = README_ROWS[flag]
    fmt = "n_fft/{}".format if option == "hop_divisor" else (lambda v: f"{v:g}" if isinstance(v, float) else str(v))
    values = {}
    for name in REGISTRY.names():
        value = REGISTRY.get(name).defaults[option]
        if value is not None:
            values.setdefault(fmt(value), []).append(f"`{name}`")
    (first, _), *others = values.items()
    expected = first + (" (" + "; ".join(f"{v} for {', '.join(n)}" for v, n in others) if others else "")
    assert cell.startswith(expected), (cell, expected)
