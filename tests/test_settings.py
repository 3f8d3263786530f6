"""The settings schema (nstaudio.settings): one declaration of each setting, which everything else reads."""

import inspect

import pytest

import nstaudio as nst
from nstaudio import api, settings as schema
from nstaudio.errors import ParameterError
from nstaudio.methods import REGISTRY
from nstaudio.methods.registry import Method
from nstaudio.settings import Setting


def test_stylize_takes_the_shared_settings_with_the_schemas_defaults():
    parameters = inspect.signature(nst.stylize).parameters
    for setting in schema.SHARED:
        assert parameters[setting.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[setting.name].default == setting.default, setting.name


def test_stylizes_docstring_lists_every_methods_setting():
    for name in schema.every_setting(REGISTRY.methods()):
        assert f"{name} : " in nst.stylize.__doc__, name


def test_a_setting_checks_its_kind_range_and_choices():
    width = Setting("width", int, "", minimum=1, maximum=8)
    assert width.check(3) == 3 and width.flag == "--width" and width.columns == ("width",)
    with pytest.raises(ParameterError, match="width must be <= 8, got 9"):
        width.check(9)
    with pytest.raises(ParameterError, match="width must be an integer"):
        width.check(2.5)
    choice = Setting("colour", str, "", choices=("red", "blue"))
    with pytest.raises(ParameterError, match="colour must be one of 'red', 'blue', got 'green'"):
        choice.check("green")
    assert Setting("tolerance", float, "", flag="--tol").columns == ("tolerance", "tol")
    with pytest.raises(ValueError, match="kind must be"):
        Setting("x", list, "")


def _method(name, *settings, output="waveform"):
    return Method(name=name, summary="", needs="style", input="waveform", output=output, settings=settings,
                  run=lambda *args: None)


def test_methods_that_share_a_setting_must_declare_it_alike():
    a = _method("a", Setting("gain", float, "", default=1.0))
    b = _method("b", Setting("gain", int, "", default=1))
    with pytest.raises(ValueError, match="declares 'gain' unlike another method"):
        schema.every_setting([a, b])


def test_shared_choices_are_all_the_methods_take_and_each_method_checks_its_own():
    a = _method("a", Setting("mode", str, "", default="x", choices=("x", "y")))
    b = _method("b", Setting("mode", str, "", default="x", choices=("x", "z")))
    assert schema.every_setting([a, b])["mode"].choices == ("x", "y", "z")
    assert schema.defaults_text([a, b], "mode") == "x"
    with pytest.raises(ParameterError, match="'z' does not apply to the a method"):
        schema.resolve(a, {"mode": "z"}, methods=[a, b])
    with pytest.raises(ParameterError, match="mode must be one of 'x', 'y', got 'w'"):
        schema.resolve(a, {"mode": "w"}, methods=[a, b])


def test_resolve_gives_every_setting_the_method_takes_and_no_other():
    options = api.resolve_settings({"method": "timedomain"})
    assert options["hop_length"] == 2048 // 8 and options["alpha"] == 1.0 and "network" not in options
    assert options["phase_iters"] == 0 and options["phase_init"] is None
    with pytest.raises(ParameterError, match="unknown settings: colour"):
        api.resolve_settings({"colour": "red"})
    with pytest.raises(TypeError, match="unexpected keyword arguments: colour"):
        nst.stylize([0.0] * 4096, [0.0] * 4096, 22050, colour="red")


def test_a_manifest_column_is_any_spelling_of_a_setting():
    columns = api.manifest_columns()
    for column, name in (("filters", "n_filters"), ("n_filters", "n_filters"), ("tol", "tolerance"),
                         ("hop", "hop_length"), ("sr", "sr_work"), ("seed", "seed"), ("network", "network")):
        assert columns[column].name == name
    assert columns["loudness"].name == columns["match_loudness"].name == "match_loudness"
