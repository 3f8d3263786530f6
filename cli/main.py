"""The ``nstaudio`` command: click parses, the library computes, this module reports.

No math happens here: files are read and written through ``nstaudio.audio`` and
the work is one call to ``nstaudio.stylize``. Every error a user can cause is an
``NstAudioError`` and becomes one line on stderr with exit status 2.
"""

import os
import sys
import time

import click

import nstaudio
from nstaudio import audio
from nstaudio.api import PHASE_INITS, stylize
from nstaudio.errors import NstAudioError, ParameterError
from nstaudio.examples import example_path
from nstaudio.kernels import DEVICES, available_backends, cuda_status
from nstaudio.methods.optimize import DEFAULT_TOLERANCE, DEFAULT_TOLERANCE_WINDOW, INITS, OPTIMIZERS


class _Group(click.Group):
    """A click group that reports nstaudio's errors as one line and exit status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NstAudioError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(nstaudio.__version__, prog_name="nstaudio")
def main():
    """Neural audio style transfer: keep the notes and words of one recording, take the timbre of another."""


def _parse_weights(ctx, param, value):
    if value is None:
        return None
    try:
        weights = [float(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None
    return weights


def stylize_options(func):
    """The options shared by ``run`` and ``demo``."""
    options = [
        click.option("--alpha", type=float, default=1e-2, show_default=True,
                     help="Content weight; 0 keeps only the style."),
        click.option("--iterations", type=int, default=300, show_default=True,
                     help="Most optimizer iterations (the run stops earlier once the loss stops improving)."),
        click.option("--tol", "tolerance", type=float, default=DEFAULT_TOLERANCE, show_default=True,
                     help="Stop when the loss fell by less than this fraction over --tol-window iterations; "
                          "0 runs all --iterations."),
        click.option("--tol-window", "tolerance_window", type=int, default=DEFAULT_TOLERANCE_WINDOW,
                     show_default=True, help="Iterations over which --tol is measured."),
        click.option("--filters", "n_filters", type=int, default=4096, show_default=True,
                     help="Random conv filters."),
        click.option("--width", type=int, default=11, show_default=True, help="Filter width in frames."),
        click.option("--n-fft", type=int, default=2048, show_default=True, help="FFT size."),
        click.option("--hop", "hop_length", type=int, default=None, help="Hop length [default: n_fft/4]."),
        click.option("--sr", "sr_work", type=int, default=22050, show_default=True,
                     help="Working sample rate; the output keeps the content's rate."),
        click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="lbfgs", show_default=True,
                     help="SciPy's L-BFGS-B, nstaudio's projected L-BFGS (faster per iteration, "
                          "slightly higher final loss), or Adam."),
        click.option("--learning-rate", type=float, default=0.03, show_default=True, help="Adam step size."),
        click.option("--init", type=click.Choice(INITS), default="noise", show_default=True,
                     help="Start from noise (the papers) or from the content."),
        click.option("--phase-iters", type=int, default=100, show_default=True,
                     help="Fast Griffin-Lim iterations."),
        click.option("--phase-init", type=click.Choice(PHASE_INITS), default="content", show_default=True,
                     help="Griffin-Lim starts from the content's phase, or random phase as in the papers."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True),
        click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
                     help="Also save content/style/output spectrograms to this image (needs matplotlib)."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.command()
@click.argument("content", type=click.Path(dir_okay=True))
@click.argument("style", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Output file; the format follows the extension [default: CONTENT-stylized.wav here].")
@click.option("--style-weights", callback=_parse_weights, default=None,
              help="Comma-separated weights, one per style file (e.g. 0.7,0.3).")
@stylize_options
def run(content, style, output, style_weights, **options):
    """Stylize CONTENT with the timbre of STYLE (one or more files)."""
    if output is None:
        stem, ext = os.path.splitext(os.path.basename(content))
        output = f"{stem}-stylized{ext if ext else '.wav'}"
    _run(content, list(style), output, style_weights=style_weights, **options)


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="demo-stylized.wav", show_default=True)
@stylize_options
def demo(output, **options):
    """Stylize the bundled example: 4 s of piano with the timbre of a violin."""
    _run(example_path("content"), [example_path("style")], output, style_weights=None, **options)


@main.command()
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


def _run(content_path, style_paths, output, *, style_weights, plot_path, quiet, **options):
    """Load, check, stylize, save: the steps shared by ``run`` and ``demo``."""
    for path in [content_path, *style_paths]:
        if audio.same_file(output, path):
            raise ParameterError(f"output {output!r} is one of the inputs; choose another path")
        if plot_path is not None and audio.same_file(plot_path, path):
            raise ParameterError(f"--plot {plot_path!r} is one of the inputs; choose another path")
    audio.output_format(output)  # fail on a bad extension before the long computation
    out_dir = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(out_dir):
        raise ParameterError(f"output directory {out_dir!r} does not exist")
    if plot_path is not None:
        from nstaudio.plot import require_matplotlib

        require_matplotlib()

    y, sr, file_info = audio.load(content_path, return_info=True)
    styles, style_srs = zip(*(audio.load(p) for p in style_paths))

    progress = _Progress(quiet)
    started = time.perf_counter()
    try:
        out, result = stylize(y, list(styles), sr, style_sr=list(style_srs), style_weights=style_weights,
                              callback=progress, return_info=True, **options)
    finally:
        progress.close()
    audio.save(output, out, sr, subtype=file_info.subtype)
    if plot_path is not None:
        from nstaudio.plot import plot_spectrograms

        plot_spectrograms(plot_path, {"content": (y, sr), "style": (styles[0], style_srs[0]), "output": (out, sr)})
    if not quiet:
        elapsed = time.perf_counter() - started
        click.echo(
            f"wrote {output}: {out.shape[-1] / sr:.2f} s, {out.shape[0]} ch, {sr} Hz | {elapsed:.1f} s, "
            f"{result.iterations} iterations{' (converged)' if result.converged else ''}, loss {result.initial_loss:.4g} -> {result.loss:.4g} "
            f"(style {result.initial_style_loss:.4g} -> {result.style_loss:.4g}), "
            f"phase {result.phase_convergence_db:.1f} dB, backend {result.backend}",
            err=True,
        )


class _Progress:
    """Progress bars on stderr for the two stages of a run, fed by ``stylize``'s callback."""

    LABELS = {"optimize": "optimizing", "phase": "phase     "}

    def __init__(self, quiet):
        self.quiet = quiet
        self.stage = None
        self.bar = None

    def __call__(self, stage, step, total, value):
        if self.quiet:
            return
        if stage != self.stage:
            self.close()
            self.stage = stage
            unit = "loss" if stage == "optimize" else "dB"
            self.bar = click.progressbar(length=total, label=self.LABELS[stage], file=sys.stderr,
                                         show_eta=True, show_pos=True,
                                         item_show_func=lambda v: None if v is None else f"{unit} {v:.4g}")
            self.bar.__enter__()
            self.done = 0
        self.bar.update(step - self.done, value)
        self.done = step

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
