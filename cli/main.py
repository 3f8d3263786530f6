"""The ``nstaudio`` command: click parses, the library computes, this module reports.

No math happens here: files are read and written through ``nstaudio.audio``,
``nstaudio.models`` and ``nstaudio.jobs``, and the work is one call to
``nstaudio.jobs.stylize_file`` (``run``, ``demo``), ``nstaudio.batch``, or a trainer
(``train_lossnet``, ``train_style``, ``train_gan``). Every error a user can cause is an
``NstAudioError`` and becomes one line on stderr with exit status 2.
"""

import json
import os
import signal
import sys
import time

import click
import numpy as np

import nstaudio
from nstaudio import audio, files, jobs, models, storage
from nstaudio.api import PHASE_INITS, methods
from nstaudio.methods import REGISTRY
from nstaudio.errors import NstAudioError
from nstaudio.examples import example_path
from nstaudio.kernels import DEVICES, available_backends, cuda_status
from nstaudio.methods.optimize import INITS, NETWORKS, OPTIMIZERS
from nstaudio.nn import melgan
from nstaudio.nn.trainers.gan import LOSSES as GAN_LOSSES
from nstaudio.streaming.stream import PHASE_DEFAULTS, SPREAD_HOPS


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


def _parse_weights(ctx, param, value):
    if value is None:
        return None
    try:
        weights = [float(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None
    return weights


def _defaults(option, fmt=lambda value: f"{value:g}" if isinstance(value, float) else str(value)):
    """An option's default per method, from the methods registry (never a hand-kept copy)."""
    return REGISTRY.defaults_text(option, fmt)


def _only(option):
    """The methods that take ``option`` (those with a default for it)."""
    return ", ".join(name for name in REGISTRY.names() if REGISTRY.get(name).defaults[option] is not None)


def _with_options(func, options):
    for option in reversed(options):
        func = option(func)
    return func


def stylize_options(func):
    """The options shared by ``run`` and ``demo``: the method's settings, a plot, quiet."""
    return _with_options(func, [*_method_options(), *_plot_and_quiet()])


def _with_method_options(func):
    """The method's settings (``batch``): ``stylize_options`` less the plot and quiet."""
    return _with_options(func, _method_options())


def _plot_and_quiet():
    return [
        click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
                     help="Also save content/style/output spectrograms to this image (needs matplotlib)."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary."),
    ]


def _method_options():
    """The options that set the method and its settings (``run``, ``demo``, ``batch``)."""
    return [
        click.option("--alpha", type=float, default=None,
                     help=f"Content weight; 0 keeps only the style [default: {_defaults('alpha')}]."),
        click.option("--iterations", type=int, default=300, show_default=True,
                     help="Most optimizer iterations (the run stops earlier once the loss stops improving)."),
        click.option("--tol", "tolerance", type=float, default=None,
                     help="Stop when the loss fell by less than this fraction over --tol-window iterations; "
                          f"0 runs all --iterations [default: {_defaults('tolerance')}]."),
        click.option("--tol-window", "tolerance_window", type=int, default=None,
                     help=f"Iterations over which --tol is measured [default: {_defaults('tolerance_window')}]."),
        click.option("--temporal-weight", type=float, default=None,
                     help="Weight of Verma & Smith's temporal envelope: the output's energy per frame held to the "
                          f"content's; {_only('temporal_weight')} only [default: {_defaults('temporal_weight')}]."),
        click.option("--spectral-weight", type=float, default=None,
                     help="Weight of Verma & Smith's spectral envelope: the output's energy per frequency held to "
                          f"the style's; {_only('spectral_weight')} only [default: {_defaults('spectral_weight')}]."),
        click.option("--network", type=click.Choice(NETWORKS), default=None,
                     help="random: the loss through --filters random filters; expected: its expectation over the "
                          "random filters in closed form, no filters, 10-30x faster on clips of seconds, time and "
                          f"memory growing as the square of the length; {_only('network')} only "
                          f"[default: {_defaults('network')}]."),
        click.option("--filters", "n_filters", type=int, default=None,
                     help=f"Random conv filters [default: {_defaults('n_filters')}]."),
        click.option("--width", type=int, default=None,
                     help=f"Filter width in frames [default: {_defaults('width')}]."),
        click.option("--n-fft", type=int, default=None,
                     help="FFT size (timedomain: frame size) [default: 2048, or the model's]."),
        click.option("--hop", "hop_length", type=int, default=None,
                     help=f"Hop length [default: {_defaults('hop_divisor', 'n_fft/{}'.format)}; or the model's]."),
        click.option("--sr", "sr_work", type=int, default=None,
                     help="Working sample rate; the output keeps the content's rate [default: 22050, or the model's]."),
        click.option("--optimizer", type=click.Choice(OPTIMIZERS), default=None,
                     help="plbfgs: nstaudio's L-BFGS on the backend's arrays; lbfgs: SciPy's L-BFGS-B (the "
                          f"papers'); adam [default: {_defaults('optimizer')}]."),
        click.option("--learning-rate", type=float, default=None,
                     help=f"Adam step size [default: {_defaults('learning_rate')}]."),
        click.option("--init", type=click.Choice(INITS), default="noise", show_default=True,
                     help="Start from noise (the papers), from the content, or (optimize's random network) from "
                          "the optimum the expected network reaches from that noise: 0.33-0.86 of the time."),
        click.option("--phase-iters", type=int, default=None,
                     help=f"Fast Griffin-Lim iterations [default: {_defaults('phase_iters')}; none for methods "
                          "that return a waveform]."),
        click.option("--phase-init", type=click.Choice(PHASE_INITS), default=None,
                     help="Griffin-Lim starts from the content's phase, random phase (the papers), or the phase "
                          "PGHI (phase gradient heap integration) finds for the output's magnitude; pghi with "
                          f"--phase-iters 0 is PGHI alone [default: {_defaults('phase_init')}]."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True),
    ]


@main.command()
@click.argument("content", type=click.Path(dir_okay=True))
@click.argument("style", nargs=-1, type=click.Path(dir_okay=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Output file; the format follows the extension [default: CONTENT-stylized.wav here].")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="A model from `nstaudio train-style` or `nstaudio train-gan`: stylize in one pass with the "
                   "model's method (no STYLE files).")
@click.option("--method", type=click.Choice(methods()), default=None,
              help="; ".join(f"{m.name}: {m.summary}" for m in map(REGISTRY.get, methods()))
              + f" [default: {REGISTRY.resolve(None, None).name}, or the model's method with --model].")
@click.option("--style-weights", callback=_parse_weights, default=None,
              help="Comma-separated weights, one per style file (e.g. 0.7,0.3).")
@click.option("--json", "as_json", is_flag=True,
              help="Also print the run's record as one JSON object on stdout (what `nstaudio batch` records), "
                   "a failed run's too.")
@stylize_options
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
        runs_models = ", ".join(m for m in methods() if REGISTRY.get(m).needs == "model")
        raise click.UsageError(f"--model is used by the methods that run models ({runs_models}), not by {method}")
    if model_path is None and not style:
        raise click.UsageError("missing STYLE: give one or more style files, or --model")
    _run(content, list(style), output, style_weights=style_weights, model_path=model_path, method=method,
         as_json=as_json, **options)


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="demo-stylized.wav", show_default=True)
@stylize_options
def demo(output, **options):
    """Stylize the bundled example: 4 s of piano with the timbre of a violin."""
    _run(example_path("content"), [example_path("style")], output, style_weights=None, model_path=None, method=None,
         **options)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--outdir", type=click.Path(file_okay=False), required=True,
              help="Output directory: each output keeps its input's path (relative to the directory or manifest "
                   "it came from), name and format; the results file nstaudio-batch.jsonl goes here too.")
@click.option("--style", "styles", multiple=True, type=click.Path(dir_okay=False),
              help="A style file for every item that names none (repeat for several); without --style or "
                   "--model the last PATH is the style.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="A model from `nstaudio train-style` or `nstaudio train-gan` for every item that names no style.")
@click.option("--method", type=click.Choice(methods()), default=None,
              help=f"As for run [default: {REGISTRY.resolve(None, None).name}, or the model's method].")
@click.option("--style-weights", callback=_parse_weights, default=None,
              help="Comma-separated weights, one per style file.")
@click.option("--scheduler", default=None,
              help="Run on an existing Dask cluster (its scheduler's address, e.g. tcp://10.0.0.5:8786) instead of a "
                   "local one; its workers must reach the same paths.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes of the local cluster [default: one per core over --threads-per-worker].")
@click.option("--threads-per-worker", type=click.IntRange(min=1), default=None,
              help="Items each local worker runs at once [default: 1].")
@_with_method_options
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
    progress = _BatchProgress(quiet)
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


@main.command()
@click.argument("input_path", metavar="INPUT", required=False, type=click.Path(dir_okay=False))
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="A model from `nstaudio train-style` (`--causal` for low latency) or `nstaudio train-gan`.")
@click.option("-o", "--output", default=None,
              help="The output file (same rate, channels, format and length as INPUT, the stream's latency "
                   "removed); with --live, the output device (an index or part of a name) [default: the "
                   "system's].")
@click.option("--block-size", type=int, default=512, show_default=True,
              help="Samples per channel in each block the stream takes (64 or more).")
@click.option("--lookahead", type=click.IntRange(0, 1), default=None,
              help="Frames of look-ahead of the real-time PGHI phase: 1 or 0 (one hop less latency) "
                   f"[default: {PHASE_DEFAULTS[True][0]} for a causal model, else {PHASE_DEFAULTS[False][0]}].")
@click.option("--phase-iters", type=int, default=None,
              help="Passes of real-time iterative phase refinement (RTISI-LA) per frame; 0: real-time PGHI alone "
                   f"[default: {PHASE_DEFAULTS[True][2]} for a causal model, else {PHASE_DEFAULTS[False][2]}].")
@click.option("--phase-frames", type=int, default=None,
              help="Frames kept open for that refinement, a hop of latency each "
                   f"[default: {PHASE_DEFAULTS[True][1]} for a causal model, else n_fft/hop - 1].")
@click.option("--spread", type=int, default=None,
              help="Hops of latency over which the work of the frames next due is done ahead, a piece per block "
                   f"[default: {SPREAD_HOPS['style']} for a style model, {SPREAD_HOPS['gan']} for a gan model].")
@click.option("--input-gain", type=float, default=None,
              help="Gain before the network, undone after it [default: -1 dB, for input that peaks at full "
                   "scale].")
@click.option("--live", is_flag=True,
              help="A live effect between audio devices (needs `pip install 'nstaudio[live]'`): --input and "
                   "--output name them; stop with Ctrl-C.")
@click.option("--input", "input_device", default=None,
              help="With --live: the input device (an index or part of a name) [default: the system's].")
@click.option("--channels", type=int, default=1, show_default=True, help="With --live: channels in and out.")
@click.option("--sr", type=int, default=None, help="With --live: the devices' sample rate [default: the model's].")
@click.option("--seconds", type=float, default=None, help="With --live: stop after this long.")
@click.option("--list-devices", is_flag=True, help="List the audio devices (for --live) and exit.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def stream(input_path, model_path, output, block_size, lookahead, phase_iters, phase_frames, spread, input_gain, live,
           input_device, channels, sr, seconds, list_devices, quiet):
    """Stylize INPUT block by block with a trained --model, as a real-time effect would.

    The stream runs the model frame by frame at a constant latency (printed); the output
    file is aligned with INPUT. With --live, the effect runs between audio devices instead.
    """
    from nstaudio.streaming import files as stream_files, live as stream_live

    if list_devices:
        click.echo(stream_live.list_devices())
        return
    if model_path is None:
        raise click.UsageError("missing --model (a model from `nstaudio train-style` or `nstaudio train-gan`)")
    model = models.load_model(model_path, kind=("style", "gan"))
    settings = dict(block_size=block_size, lookahead=lookahead, input_gain=input_gain, phase_iters=phase_iters,
                    phase_frames=phase_frames, spread=spread)
    if live:
        if input_path is not None:
            raise click.UsageError("--live takes no INPUT file: --input names the input device")
        if not quiet:
            click.echo("live: Ctrl-C stops", err=True)
        report = stream_live.run_live(model, input_device=input_device, output_device=output, channels=channels,
                                      sr=sr, seconds=seconds, **settings)
        if not quiet:
            click.echo(f"{report['blocks']} blocks, latency {report['latency']} samples"
                       + (f", {len(report['status'])} device warnings" if report["status"] else ""), err=True)
        return
    if input_path is None:
        raise click.UsageError("missing INPUT (an audio file), or --live")
    if output is None:
        raise click.UsageError("missing -o/--output (the output file)")
    unused = [name for name, value in (("--input", input_device), ("--sr", sr), ("--seconds", seconds))
              if value is not None]
    if unused or channels != 1:
        raise click.UsageError(f"{(unused or ['--channels'])[0]} is for --live; a file keeps its own")
    jobs.check_not_input(output, [model_path])
    bar = []  # made at the first block: the checks before it print nothing but their error

    def progress(done, total):
        if not bar:
            bar.append(click.progressbar(length=total, label="streaming", file=sys.stderr, show_eta=True))
            bar[0].__enter__()
        bar[0].update(done - bar[0].pos)

    try:
        summary = stream_files.stream_file(model, input_path, output, callback=None if quiet else progress,
                                           **settings)
    finally:
        if bar:
            bar[0].__exit__(None, None, None)
    if not quiet:
        click.echo(f"wrote {output}: {summary.frames / summary.sr:.2f} s, {summary.channels} ch, {summary.sr} Hz | "
                   f"latency {summary.latency} samples ({1000 * summary.latency / summary.sr:.0f} ms), "
                   f"{summary.seconds:.1f} s (real-time factor {summary.real_time_factor:.2f})", err=True)


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
    progress = _Progress(quiet)
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


def training_run_options(func):
    """The options every training command has: where the network goes, the seed, checkpoints, device, quiet."""
    return _with_options(func, [
        click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
                     help="Network file (.npz); also holds the unfinished run every --checkpoint-every steps."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--checkpoint-every", type=click.IntRange(min=1), default=200, show_default=True,
                     help="Save the unfinished run to --output every this many steps."),
        click.option("--resume", is_flag=True, help="Continue the unfinished run saved in --output."),
        click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                     help="Where the networks train: auto takes cuda when a GPU is usable, else cpu (numba)."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary."),
    ])


def training_options(func):
    """The options of ``train-lossnet`` and ``train-style``: the run's, and the autoencoder's crops and Adam."""
    return training_run_options(_with_options(func, [
        click.option("--batch-size", type=click.IntRange(min=1), default=24, show_default=True, help="Random crops per step."),
        click.option("--crop", type=int, default=64, show_default=True,
                     help="Frames per crop (a multiple of 16; anything else is refused)."),
        click.option("--learning-rate", type=float, default=1e-3, show_default=True, help="Adam step size."),
        click.option("--weight-decay", type=float, default=1e-4, show_default=True, help="Adam weight decay."),
    ]))


@main.command("train-lossnet")
@click.argument("corpus_dir", type=click.Path(file_okay=True))
@click.option("--steps", type=click.IntRange(min=1), default=5000, show_default=True, help="Training steps.")
@click.option("--channels", default="128,64,64,32", show_default=True,
              help="Channels of the 4 encoder layers, comma-separated.")
@click.option("--n-fft", type=int, default=2048, show_default=True, help="FFT size.")
@click.option("--hop", "hop_length", type=int, default=512, show_default=True, help="Hop length.")
@click.option("--sr", "sr_work", type=int, default=22050, show_default=True, help="Working sample rate.")
@training_options
def train_lossnet(corpus_dir, output, channels, quiet, **options):
    """Train a loss network (spectrogram autoencoder) on the audio files under CORPUS_DIR."""
    try:
        channels = tuple(int(c) for c in channels.split(","))
    except ValueError:
        channels = ()
    if len(channels) != 4:
        raise click.BadParameter("expected 4 comma-separated integers", param_hint="--channels")
    _check_training_output(output, [corpus_dir])
    audio.corpus_files(corpus_dir)  # a wrong directory fails now
    models.check_train_lossnet(channels=channels, checkpoint=output, **options)  # before the corpus is read
    clips, rates, paths = _load_corpus(corpus_dir, output, quiet)
    _train(models.train_lossnet, output, quiet, clips, rates, channels=channels, labels=paths, **options)


@main.command("train-style")
@click.argument("style", type=click.Path(dir_okay=True))
@click.argument("corpus_dir", type=click.Path(file_okay=True))
@click.option("--lossnet", "lossnet_path", type=click.Path(dir_okay=False), default=None,
              help="Loss network from `nstaudio train-lossnet` [default: the one shipped with nstaudio].")
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True, help="Training steps.")
@click.option("--alpha", type=float, default=100.0, show_default=True, help="Content weight.")
@click.option("--beta", type=float, default=1e4, show_default=True, help="Style weight.")
@click.option("--causal", is_flag=True,
              help="A causal model: no output frame depends on a later input frame, so `nstaudio stream` runs it "
                   "without network look-ahead (low latency); use it with --stride 1.")
@click.option("--stride", type=int, default=None,
              help="The model's time stride per encoder layer [default: the loss network's, 2]; a causal model "
                   "wants 1.")
@training_options
def train_style(style, corpus_dir, output, lossnet_path, quiet, **options):
    """Train a style model for the timbre of STYLE on the content recordings under CORPUS_DIR."""
    _check_training_output(output, [style, corpus_dir, *([lossnet_path] if lossnet_path else [])])
    audio.corpus_files(corpus_dir)  # a wrong directory fails now, not after the other files are read
    audio.check_audio_file(style)
    lossnet = models.default_lossnet() if lossnet_path is None else models.load_model(lossnet_path, kind="lossnet")
    models.check_train_style(lossnet=lossnet, checkpoint=output, **options)  # before any audio is read
    y, style_sr = audio.load(style)
    clips, rates, paths = _load_corpus(corpus_dir, output, quiet)
    _train(models.train_style, output, quiet, y, clips, rates, style_sr=style_sr, lossnet=lossnet, labels=paths,
           **options)


@main.command("train-gan")
@click.argument("content_dir", type=click.Path(file_okay=True))
@click.argument("style_dir", type=click.Path(file_okay=True))
@click.option("--steps", type=click.IntRange(min=1), default=2500, show_default=True,
              help="Training steps (batches); the generator trains on every (--critic-steps + 1)-th.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Crops of 72 frames (0.86 s at the default --sr and --hop) from each domain per step.")
@click.option("--critic-steps", type=click.IntRange(min=0), default=3, show_default=True,
              help="Critic-only steps between generator steps.")
@click.option("--learning-rate", type=float, default=1e-4, show_default=True, help="Adam step size (beta1 0.5).")
@click.option("--identity-warmup", type=click.IntRange(min=0), default=0, show_default=True,
              help="Of the --steps, how many at the start train the generator alone to reproduce style crops, "
                   "before the adversarial steps.")
@click.option("--sr", "sr_work", type=int, default=melgan.SR, show_default=True,
              help="The model's sample rate: the recordings are resampled to it, and stylizing resamples to it and "
                   "back.")
@click.option("--n-fft", type=int, default=melgan.N_FFT, show_default=True, help="FFT size (= window) of the mel "
              "spectrogram.")
@click.option("--hop", "hop_length", type=int, default=melgan.HOP_LENGTH, show_default=True,
              help="Hop length of the mel spectrogram.")
@training_run_options
def train_gan(content_dir, style_dir, output, quiet, **options):
    """Train a MelGAN-VC model that gives recordings like those under CONTENT_DIR the timbre of those
    under STYLE_DIR (unpaired; a few minutes of each)."""
    _check_training_output(output, [content_dir, style_dir])
    audio.corpus_files(content_dir)  # wrong directories fail now, before anything is read
    audio.corpus_files(style_dir)
    nstaudio.check_train_gan(checkpoint=output, **options)
    content, content_rates, content_paths = _load_corpus(content_dir, output, quiet)
    style, style_rates, style_paths = _load_corpus(style_dir, output, quiet)
    _train(nstaudio.train_gan, output, quiet, content, style, list(content_rates), style_sr=list(style_rates),
           content_labels=content_paths, style_labels=style_paths, **options)


def _check_training_output(output, inputs):
    """A network file that is none of the inputs and can be written."""
    jobs.check_not_input(output, inputs)
    files.check_can_write(output)


def _load_corpus(corpus_dir, output, quiet):
    """Every audio file under ``corpus_dir`` (none of them the output), with a progress bar."""
    jobs.check_not_input(output, audio.corpus_files(corpus_dir))
    bar = None

    def advance(i, count, path):
        nonlocal bar
        if quiet:
            return
        if bar is None:
            bar = click.progressbar(length=count, label="reading   ", file=sys.stderr, show_pos=True)
            bar.__enter__()
        bar.update(1)

    try:
        clips, rates, paths = audio.load_corpus(corpus_dir, callback=advance)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    return clips, rates, paths


def _train(trainer, output, quiet, *args, **options):
    """Run a trainer with a progress bar (loss, steps/s, ETA) and report where the network went."""
    progress = _TrainProgress(quiet)
    started = time.perf_counter()
    try:
        network = trainer(*args, callback=progress, checkpoint=output, **options)
    finally:
        progress.close()
    if not quiet:
        steps = network.meta["steps"]
        shape = list(network.arch.channels) if network.kind != "gan" else f"{network.arch.n_mels} mel bands"
        click.echo(f"wrote {output}: {network.kind} {shape} after {steps} steps, final loss "
                   f"{_losses_text(network.meta['final_loss'])} | {time.perf_counter() - started:.1f} s", err=True)


def _losses_text(loss):
    """One loss, or a gan's (critic, generator, identity, TraVeL), for the progress bar and the summary."""
    if np.ndim(loss) == 0:
        return f"{float(loss):.4g}"
    return ", ".join(f"{name} {value:.3g}" for name, value in zip(GAN_LOSSES, loss))


class _TrainProgress:
    """A progress bar for training steps: loss, steps per second and ETA."""

    def __init__(self, quiet):
        self.quiet = quiet
        self.bar = None

    def __call__(self, step, steps, loss):
        if self.quiet:
            return
        if self.bar is None:
            self.first_step, self.started = step - 1, time.perf_counter()
            self.bar = click.progressbar(length=steps, label="training  ", file=sys.stderr, show_eta=True,
                                         show_pos=True, item_show_func=lambda text: text)
            self.bar.__enter__()
            self.bar.update(step - 1)
        rate = (step - self.first_step) / max(time.perf_counter() - self.started, 1e-9)
        self.bar.update(1, f"{'' if np.ndim(loss) else 'loss '}{_losses_text(loss)}, {rate:.1f} steps/s")

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


class _Progress:
    """Progress bars on stderr for the stages of a run, fed by ``stylize``'s callback."""

    LABELS = {"warm start": "warm start", "optimize": "optimizing", "phase": "phase     "}

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
            unit = "dB" if stage == "phase" else "loss"
            self.bar = click.progressbar(length=total, label=self.LABELS.get(stage, stage), file=sys.stderr,
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


class _BatchProgress:
    """A progress bar over a batch's items, with what the workers report of the items running now."""

    def __init__(self, quiet):
        self.quiet = quiet
        self.bar = None
        self.shown = 0

    def __call__(self, progress):
        if self.quiet:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=progress.total, label="stylizing ", file=sys.stderr, show_eta=True,
                                         show_pos=True, item_show_func=lambda text: text)
            self.bar.__enter__()
        running = [f"{key}: {stage} {step}/{steps}" for key, (stage, step, steps) in sorted(progress.running.items())]
        text = ", ".join(running[:2]) + (f" (+{len(running) - 2})" if len(running) > 2 else "")
        self.bar.update(progress.finished - self.shown, text or None)
        self.shown = progress.finished

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
