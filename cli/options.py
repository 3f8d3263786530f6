"""Command-line options built from the settings schema (:mod:`nstaudio.settings`), never kept by hand.

:class:`SettingsCommand` adds ``--method`` and every setting of the registered methods to a
command each time it parses or shows its help, so a method registered at run time brings its
options with it.
"""

import click

from nstaudio import settings as schema
from nstaudio.methods import REGISTRY


def with_options(func, options):
    """``func`` decorated with each of ``options`` (click decorators), the first outermost."""
    for option in reversed(options):
        func = option(func)
    return func


def parse_weights(ctx, param, value):
    """``--style-weights 0.7,0.3`` as a list of floats."""
    if value is None:
        return None
    try:
        return [float(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None


def method_option(help_text=None):
    """``--method``, its choices and help from the registry as it is now."""
    methods = REGISTRY.methods()
    default = REGISTRY.resolve(None, None).name
    text = help_text or "; ".join(f"{m.name}: {m.summary}" for m in methods)
    return click.Option(["--method"], type=click.Choice([m.name for m in methods]), default=None,
                        help=f"{text} [default: {default}, or the model's method with --model].")


def setting_options():
    """A click option for every command-line setting of the registered methods (default None: not given)."""
    options = []
    for setting, help_text in schema.cli_settings(REGISTRY.methods()):
        kind = click.Choice(setting.choices) if setting.choices else setting.kind
        options.append(click.Option([setting.flag, setting.name], type=kind, default=None, help=help_text))
    return options


class SettingsCommand(click.Command):
    """A click command that takes the methods' settings (and ``--method``, unless ``method=False``).

    Parameters
    ----------
    method : bool
        Add ``--method``.
    method_help : str or None
        Its help text before the default (None: each method's summary).
    """

    def __init__(self, *args, method=True, method_help=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.method, self.method_help = method, method_help

    def get_params(self, ctx):
        own = super().get_params(ctx)  # this command's parameters, then --help
        schema_options = ([method_option(self.method_help)] if self.method else []) + setting_options()
        return [*own[:len(self.params)], *schema_options, *own[len(self.params):]]
