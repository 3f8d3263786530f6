"""Methods as plug-ins: adding a method is one Method and one registration.

A toy method registered here runs through ``stylize`` like the real ones, and a setting of its
own reaches the CLI, the batch manifest and ``resolve_settings`` with no other file touched;
``stylize`` names no method; the CLI's per-method defaults come from the settings schema.
"""

import inspect
import re

import numpy as np
import pytest
from click.testing import CliRunner

import nstaudio as nst
from nstaudio import api, settings as schema
from nstaudio.cli.main import main
from nstaudio.errors import ParameterError
from nstaudio.methods import REGISTRY
from nstaudio.methods.registry import Method
from nstaudio.settings import Setting

from conftest import harmonic_tone

TOY_PHASE = dict(phase_iters=16, phase_init="content")


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
                      input="log_spectrogram", output="log_spectrogram", run=run, **TOY_PHASE))
    content, style = harmonic_tone(1.0), harmonic_tone(1.0, f0=330)
    out, info = nst.stylize(content, style, 22050, method="toy-identity", n_fft=512, return_info=True)
    assert seen == {"content": (1, 257, 1 + 22050 // 128), "styles": [(257, 1 + 22050 // 128)], "n_fft": 512}
    assert info.method == "toy-identity" and out.shape == content.shape
    assert np.corrcoef(out, content)[0, 1] > 0.99  # its own magnitudes from its own phase: the content again


def test_a_toy_waveform_method_needs_no_phase_step(registered):
    registered(Method(name="toy-half", summary="halves the waveform", needs="style", input="waveform",
                      output="waveform",
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
    return re.sub(r'"""[\s\S]*?"""', "", inspect.getsource(function), count=1)


def test_stylize_names_no_method():
    source = _code(api.stylize) + _code(api._resolve_options) + _code(api.resolve_settings)
    source += inspect.getsource(schema).replace(schema.__doc__, "")
    source = source.replace('stage="optimize"', "stage=STAGE")  # the progress stage of that name, not the method
    for name in REGISTRY.names():
        assert not re.search(rf"[\"']{name}[\"']", source), f"the pipeline names {name!r}"


def _toy_gain(registered, seen):
    """Register ``toy-gain``: a waveform method with one setting of its own, ``gain`` (``--toy-gain``)."""
    def run(content, styles, options, model, callback):
        seen.append(options["toy_gain"])
        return content * np.float32(options["toy_gain"]), _identity(content, styles, options, model, callback)[1]

    return registered(Method(name="toy-gain", summary="scales the waveform", needs="style", input="waveform",
                             output="waveform", run=run,
                             settings=(Setting("toy_gain", float, "What the toy scales by.", default=0.5,
                                               minimum=0.0, maximum=4.0, aliases=("gain",)),)))


def test_a_toy_methods_own_setting_reaches_stylize_the_cli_the_manifest_and_resolve_settings(registered, tmp_path):
    import soundfile as sf

    seen = []
    _toy_gain(registered, seen)
    content, style = harmonic_tone(1.0), harmonic_tone(1.0, f0=330)
    out = nst.stylize(content, style, 22050, method="toy-gain", toy_gain=2.0, match_loudness=False)
    np.testing.assert_allclose(out, 2.0 * content, atol=1e-6)
    assert api.resolve_settings({"method": "toy-gain"})["toy_gain"] == 0.5
    assert api.resolve_settings({"method": "toy-gain", "toy_gain": 3.0})["toy_gain"] == 3.0
    with pytest.raises(ParameterError, match="toy_gain must be <= 4"):
        api.resolve_settings({"method": "toy-gain", "toy_gain": 5.0})
    with pytest.raises(ParameterError, match="toy_gain does not apply to the optimize method"):
        api.resolve_settings({"toy_gain": 1.0})
    with pytest.raises(ParameterError, match="temporal_weight does not apply to the toy-gain method"):
        api.resolve_settings({"method": "toy-gain", "temporal_weight": 1.0})
    assert "alpha" not in api.resolve_settings({"method": "toy-gain", "alpha": 1.0})  # the optimizers' own: ignored

    text = " ".join(CliRunner().invoke(main, ["run", "--help"]).output.split())
    assert "--toy-gain FLOAT What the toy scales by. [toy-gain only; default: 0.5]" in text
    assert "toy-gain: scales the waveform" in text
    sf.write(tmp_path / "c.wav", content, 22050)
    sf.write(tmp_path / "s.wav", style, 22050)
    result = CliRunner().invoke(main, ["run", str(tmp_path / "c.wav"), str(tmp_path / "s.wav"), "-o",
                                       str(tmp_path / "o.wav"), "--method", "toy-gain", "--toy-gain", "1.5", "-q"])
    assert result.exit_code == 0, result.output
    assert seen[-1] == 1.5

    from nstaudio.batching.items import collect

    manifest = tmp_path / "list.csv"
    manifest.write_text("content,method,gain\nc.wav,toy-gain,0.25\n")
    (item,) = collect([str(manifest)], str(tmp_path / "out"), styles=[str(tmp_path / "s.wav")])
    assert item.options == {"method": "toy-gain", "toy_gain": 0.25}


def test_registry_checks_what_a_method_declares(registered):
    with pytest.raises(ValueError, match="gives defaults for phase_iters and phase_init"):
        Method(name="incomplete", summary="", needs="style", input="log_spectrogram", output="log_spectrogram",
               run=_identity)
    with pytest.raises(ValueError, match="is a shared setting"):
        Method(name="shadowing", summary="", needs="style", input="waveform", output="waveform", run=_identity,
               settings=(Setting("seed", int, "", default=1),))
    with pytest.raises(ValueError, match="needs a model"):
        Method(name="no-settings", summary="", needs="model", input="waveform", output="waveform", run=_identity)
    with pytest.raises(ValueError, match="registered already"):
        REGISTRY.register(REGISTRY.get("optimize"))
    with pytest.raises(ParameterError, match="method must be one of"):
        nst.stylize(harmonic_tone(1.0), harmonic_tone(1.0), 22050, method="no-such-method")


def test_the_default_is_the_first_style_method_or_the_first_model_method():
    assert REGISTRY.resolve(None, None).name == api.methods()[0] == "optimize"
    assert REGISTRY.resolve(None, object()).needs == "model"


def test_cli_help_shows_every_method_and_its_defaults():
    text = " ".join(CliRunner().invoke(main, ["run", "--help"]).output.split())
    for method in REGISTRY.methods():
        assert " ".join(method.summary.split()) in text
        for setting, _ in schema.cli_settings([method]):
            name = setting.name
            value = schema.method_default(method, name)
            if value is not None and schema.takes(method, name):
                shown = schema.format_value(value)
                assert re.search(rf"\b{re.escape(shown)}( for [a-z, ]*{method.name})?", text), (method.name, name, shown)


def _docs_table():
    import os

    docs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "cli.md")
    text = open(docs).read()
    return text[text.index("<!-- options:begin -->") + len("<!-- options:begin -->"):text.index("<!-- options:end -->")]


def test_the_docs_option_table_is_the_schemas():
    """docs/cli.md's option table is what the schema makes of the registered methods (scripts/write_cli_docs.py
    writes it): every flag with each method's default, "0.01; 1 for timedomain"."""
    assert _docs_table().strip() == schema.markdown_table(REGISTRY.methods()).strip(), (
        "docs/cli.md's option table is stale: run python scripts/write_cli_docs.py")


@pytest.mark.parametrize("flag", ["--alpha", "--tol", "--width", "--hop", "--phase-iters", "--network", "--filters"])
def test_the_docs_option_table_shows_each_methods_default(flag):
    cell = re.search(rf"^\| `{flag}` \| ([^|]+) \|", _docs_table(), re.M).group(1).strip()
    setting = next(s for s in schema.every_setting(REGISTRY.methods()).values() if s.flag == flag)
    assert cell == schema.defaults_text(REGISTRY.methods(), setting.name)
    by_method = {}
    for method in REGISTRY.methods():  # each method's own declaration, read without the schema's helpers
        own = {s.name: s.default for s in method.settings}
        value = {"--hop": f"n_fft/{method.hop_divisor}", "--phase-iters": method.phase_iters}.get(
            flag, own.get(setting.name))
        if value is not None:
            by_method.setdefault(f"{value:g}" if isinstance(value, float) else str(value), []).append(method.name)
    (first, _), *others = by_method.items()
    assert cell == "; ".join([first] + [f"{value} for {', '.join(names)}" for value, names in others])


def test_the_readmes_common_options_show_the_schemas_defaults():
    """The README's short option table (a front page's excerpt of docs/cli.md) keeps each method's default."""
    import os

    readme = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")).read()
    settings = {s.flag: s for s in schema.every_setting(REGISTRY.methods()).values()}
    rows = re.findall(r"^\| `(--[a-z-]+)` \| ([^|]*) \|", readme, re.M)
    checked = 0
    for flag, cell in rows:
        if flag not in settings or schema.defaults_text(REGISTRY.methods(), settings[flag].name) is None:
            continue
        first, *others = schema.defaults_text(REGISTRY.methods(), settings[flag].name).split("; ")
        assert cell.strip().startswith(first), (flag, cell)
        for other in others:
            value, names = other.split(" for ")
            assert value in cell and all(f"`{name}`" in cell for name in names.split(", ")), (flag, cell, other)
        checked += 1
    assert checked >= 10
