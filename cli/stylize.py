"""``nstaudio run``, ``demo`` and ``batch``: stylize one file, the bundled example, or many files.

The work is one call to ``nstaudio.jobs.stylize_file`` or ``nstaudio.batch``; the settings'
options come from the schema (:class:`~nstaudio.cli.options.SettingsCommand`).
"""

import json
import os
import sys
import time

import click

import nstaudio
from nstaudio import jobs, models, storage
from nstaudio.errors import NstAudioError
from nstaudio.examples import example_path
from nstaudio.methods import REGISTRY

from .options import SettingsCommand, parse_weights, with_options
from .progress import BatchProgress, RunProgress


def plot_and_quiet(func):
    """``--plot`` and ``-q`` (``run``, ``demo``)."""
    return with_options(func, [
        click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
                     help="Also save content/style/output spectrograms to this image (needs matplotlib)."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary."),
    ])


@click.command(cls=SettingsCommand)
@click.argument("content", type=click.Path(dir_okay=True))
@click.argument("style", nargs=-1, type=click.Path(dir_okay=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Output file; the format follows the extension [default: CONTENT-stylized.wav here].")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="A model from `nstaudio train-style` or `nstaudio train-gan`: stylize in one pass with the "
                   "model's method (no STYLE files).")
@click.option("--style-weights", callback=parse_weights, default=None,
              help="Comma-separated weights, one per style file (e.g. 0.7,0.3).")
@click.option("--json", "as_json", is_flag=True,
              help="Also print the run's record as one JSON object on stdout (what `nstaudio batch` records), "
                   "a failed run's too.")
@plot_and_quiet
def run(content, style, output, model_path, method, style_weights, as_json, **options):
    """Stylize CONTENT with the timbre of STYLE (one or more files), or with a trained --model."""
    if output is None:
        stem, ext = os.path.splitext(os.path.basename(content))
        output = f"{stem}-stylized{ext if ext else '.wav'}"
    chosen = None if method is None else REGISTRY.get(method)
    if model_path is None and chosen is not None and chosen.needs == "model":
        raise click.UsageError(f"--method {method} needs --model (a {models.describe_kind(chosen.model_kind)} from "
                               f"`nstaudio train-{chosen.model_kind}`)")
    if model_path is not None and style:
        raise click.UsageError("a style model carries its style: give STYLE files or --model, not both")
    if model_path is not None and chosen is not None and chosen.needs != "model":
        runs_models = ", ".join(m.name for m in REGISTRY.methods() if m.needs == "model")
        raise click.UsageError(f"--model is used by the methods that run models ({runs_models}), not by {method}")
    if model_path is None and not style:
        raise click.UsageError("missing STYLE: give one or more style files, or --model")
    _run(content, list(style), output, style_weights=style_weights, model_path=model_path, method=method,
         as_json=as_json, **options)


@click.command(cls=SettingsCommand, method=False)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="demo-stylized.wav", show_default=True)
@plot_and_quiet
def demo(output, **options):
    """Stylize the bundled example: 4 s of piano with the timbre of a violin."""
    _run(example_path("content"), [example_path("style")], output, style_weights=None, model_path=None, method=None,
         **options)


@click.command(cls=SettingsCommand, method_help="As for run")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--outdir", type=click.Path(file_okay=False), required=True,
              help="Output directory: each output keeps its input's path (relative to the directory or manifest "
                   "it came from), name and format; the results file nstaudio-batch.jsonl goes here too.")
@click.option("--style", "styles", multiple=True, type=click.Path(dir_okay=False),
              help="A style file for every item that names none (repeat for several); without --style or "
                   "--model the last PATH is the style.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="A model from `nstaudio train-style` or `nstaudio train-gan` for every item that names no style.")
@click.option("--style-weights", callback=parse_weights, default=None,
              help="Comma-separated weights, one per style file.")
@click.option("--scheduler", default=None,
              help="Run on an existing Dask cluster (its scheduler's address, e.g. tcp://10.0.0.5:8786) instead of a "
                   "local one; its workers must reach the same paths.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes of the local cluster [default: one per core over --threads-per-worker].")
@click.option("--threads-per-worker", type=click.IntRange(min=1), default=None,
              help="Items each local worker runs at once [default: 1].")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary (failed items are still listed).")
def batch(paths, outdir, styles, model_path, quiet, **options):
    """Stylize many files: PATHS are content files, directories (searched recursively for audio) and manifest
    CSVs, and, without --style or --model, the last PATH is the style file.

    Any path may be an fsspec URL (s3://bucket/songs, gs://..., file://...) where fsspec and the storage's
    package (s3fs, gcsfs) are installed. A manifest has a header row with a content column and any of style (several separated by ;),
    style_weights, model, output and run's settings (alpha, iterations, filters, seed, ...); an empty cell takes
    the command line's value. Rerunning the same command skips the items already done with the same settings
    and redoes the rest. Exit status 0 when every item succeeded, 2 when one failed for a reason of its own
    (a file that is not audio, too short, silent), else 1 when nstaudio or the cluster failed one.
    """
    paths = list(paths)
    if model_path is not None and styles:
        raise click.UsageError("give --style files or --model, not both")
    if not styles and model_path is None and len(paths) >= 2:
        *paths, last = paths
        if os.path.isdir(last) or last.lower().endswith(".csv"):
            raise click.UsageError(f"without --style or --model the last PATH is the style, but {last} is a "
                                   f"{'directory' if os.path.isdir(last) else 'manifest'}; give the style "
                                   "with --style")
        styles = (last,)
    progress = BatchProgress(quiet)
    started = time.perf_counter()
    try:
        records = nstaudio.batch(paths, list(styles), outdir=outdir, model=model_path, callback=progress, **options)
    finally:
        progress.close()
    failed = [r for r in records if r["status"] == "failed"]
    for entry in failed:
        click.echo(f"failed: {entry['error']}" if entry["input"] in entry["error"]
                   else f"failed: {entry['input']}: {entry['error']}", err=True)
    if not quiet:
        counts = {status: sum(r["status"] == status for r in records) for status in ("done", "skipped", "failed")}
        click.echo(f"batch: {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed in "
                   f"{time.perf_counter() - started:.1f} s; records in "
                   f"{storage.join(outdir, nstaudio.batching.LEDGER_NAME)}", err=True)
    if any(not r["internal"] for r in failed):
        sys.exit(2)
    if failed:
        sys.exit(1)


def _run(content_path, style_paths, output, *, style_weights, model_path, plot_path, quiet, as_json=False,
         **options):
    """Check, load, stylize, save: the steps shared by ``run`` and ``demo`` (``nstaudio.jobs``).

    Everything that could fail at the end (an output that cannot be written in this format,
    rate and channel count, a plot path matplotlib cannot write) is checked first. With
    ``as_json`` the job's record goes to stdout as one JSON object, a failed job's too.
    """
    settings = jobs.settings_hash(content_path, style_paths, model_path, dict(options, style_weights=style_weights))
    started = time.perf_counter()
    try:
        job = _run_job(content_path, style_paths, output, style_weights=style_weights, model_path=model_path,
                       plot_path=plot_path, quiet=quiet, **options)
    except NstAudioError as exc:
        if as_json:
            click.echo(json.dumps(jobs.record(content_path, output, settings, error=str(exc),
                                              seconds=time.perf_counter() - started)))
        raise
    if as_json:
        click.echo(json.dumps(jobs.record(content_path, output, settings, job=job)))
    if not quiet:
        info, out, sr = job.info, job.output, job.sr
        method = REGISTRY.get(info.method)
        if method.needs == "model":
            work = f"one pass of {os.path.basename(model_path)}"
        else:
            work = (f"{info.iterations} iterations{' (converged)' if info.converged else ''}, "
                    f"loss {info.initial_loss:.4g} -> {info.loss:.4g} "
                    f"(style {info.initial_style_loss:.4g} -> {info.style_loss:.4g})")
        phase = "" if method.output == "waveform" else f", phase {info.phase_convergence_db:.1f} dB"
        click.echo(f"wrote {output}: {out.shape[-1] / sr:.2f} s, {out.shape[0]} ch, {sr} Hz | {job.seconds:.1f} s, "
                   f"{work}{phase}, backend {info.backend}", err=True)


def _run_job(content_path, style_paths, output, *, style_weights, model_path, plot_path, quiet, **options):
    """The job of ``_run``, with its plot; returns the ``nstaudio.jobs.Job``."""
    inputs = [*style_paths, *([model_path] if model_path else [])]
    jobs.check_job(content_path, output, inputs)
    if plot_path is not None:
        from nstaudio.plot import check_plot_path

        jobs.check_not_input(plot_path, [content_path, *inputs, output], what="--plot")
        check_plot_path(plot_path)

    model = None if model_path is None else models.load_model(model_path, kind=("style", "gan"))
    progress = RunProgress(quiet)
    try:
        job = jobs.stylize_file(content_path, output, style_paths=style_paths, model=model, callback=progress,
                                style_weights=style_weights, **options)
    finally:
        progress.close()
    if plot_path is not None:
        from nstaudio.plot import plot_spectrograms

        style_panel = {"style": job.styles[0]} if job.styles else {}
        plot_spectrograms(plot_path, {"content": (job.content, job.sr), **style_panel, "output": (job.output, job.sr)})
    return job
