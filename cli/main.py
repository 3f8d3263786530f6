"""The ``nstaudio`` command: click parses, the library computes, this module reports.

This module holds the group, which turns every user error into one line; the commands live one
module per group of them (``stylize``: run, demo, batch; ``train``: the trainers; ``stream``),
their options built from the settings schema (``options``) and their progress bars in
``progress``. No math happens here: files are read and written through ``nstaudio.audio``,
``nstaudio.models`` and ``nstaudio.jobs``. Every error a user can cause is an
``NstAudioError`` and becomes one line on stderr with exit status 2.
"""

import signal
import sys

import click

import nstaudio
from nstaudio.errors import NstAudioError
from nstaudio.kernels import available_backends, cuda_status

from . import stream, stylize, train

# click >= 8.2 raises this for a bare `nstaudio`; older clicks print the help themselves.
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


class _Group(click.Group):
    """A click group that reports every user error as one line on stderr and exit status 2.

    nstaudio's own errors and click's usage errors alike: click's usual three lines (usage,
    a hint, the error) become the error alone. SIGTERM and SIGHUP end the run the way Ctrl-C
    does, so the temporary file of an unfinished output is removed (``nstaudio.files``).
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NstAudioError as exc:
            _fail(exc, 2)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        with _terminate_on_signals():
            try:
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except _NO_ARGS_IS_HELP as exc:  # bare `nstaudio`: the help, as click prints it
                click.echo(exc.ctx.get_help(), err=True)
                code = exc.exit_code
            except click.ClickException as exc:
                _fail(exc.format_message(), exc.exit_code)
            except click.Abort:
                click.echo("Aborted!", err=True)
                code = 130
        sys.exit(code if isinstance(code, int) else 0)


def _fail(message, code):
    """Print ``Error: message`` as one line on stderr and exit with ``code``."""
    text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
    click.echo(f"Error: {text}", err=True)
    sys.exit(code)


class _terminate_on_signals:
    """SIGTERM and SIGHUP raise SystemExit(128 + signal) while the CLI runs, so cleanup code runs.

    Python's default for them is to die on the spot, leaving an unfinished output's temporary
    file behind. Only the main thread may set handlers; elsewhere (an embedding host) this
    does nothing. The previous handlers come back afterwards.
    """

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))

    def __enter__(self):
        self.previous = {}
        try:
            for sig in self.SIGNALS:
                self.previous[sig] = signal.signal(sig, self._raise)
        except ValueError:  # not the main thread
            pass
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    @staticmethod
    def _raise(signum, frame):
        raise SystemExit(128 + signum)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(nstaudio.__version__, prog_name="nstaudio")
def main():
    """Neural audio style transfer: keep the notes and words of one recording, take the timbre of another."""


@click.command()
def info():
    """Versions and available compute backends."""
    from importlib.metadata import version

    import soundfile

    click.echo(f"nstaudio {nstaudio.__version__}")
    click.echo(f"python {sys.version.split()[0]}")
    for package in ("numpy", "scipy", "numba", "soundfile", "click"):
        click.echo(f"{package} {version(package)}")
    click.echo(f"libsndfile {soundfile.__libsndfile_version__}")
    click.echo(f"backends: {', '.join(available_backends())} (auto picks {available_backends()[0]})")
    reason = cuda_status()
    if reason is not None:
        click.echo(f"cuda: unavailable: {reason}")


for command in (stylize.run, stylize.demo, stylize.batch, stream.stream, info, train.train_lossnet, train.train_style,
                train.train_gan):
    main.add_command(command)
