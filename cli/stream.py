"""``nstaudio stream``: a trained model block by block, on a file or live between audio devices."""

import click

from nstaudio import jobs, models
from nstaudio.streaming.stream import PHASE_DEFAULTS, SPREAD_HOPS

from .progress import StreamProgress


@click.command()
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
        _live(model, stream_live, input_device=input_device, output=output, channels=channels, sr=sr,
              seconds=seconds, quiet=quiet, settings=settings)
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
    _file(model, stream_files, input_path, output, quiet=quiet, settings=settings)


def _live(model, stream_live, *, input_device, output, channels, sr, seconds, quiet, settings):
    """The live effect between audio devices, until Ctrl-C or ``seconds``."""
    if not quiet:
        click.echo("live: Ctrl-C stops", err=True)
    report = stream_live.run_live(model, input_device=input_device, output_device=output, channels=channels,
                                  sr=sr, seconds=seconds, **settings)
    if not quiet:
        click.echo(f"{report['blocks']} blocks, latency {report['latency']} samples"
                   + (f", {len(report['status'])} device warnings" if report["status"] else ""), err=True)


def _file(model, stream_files, input_path, output, *, quiet, settings):
    """``input_path`` streamed through ``model`` into ``output``, with a progress bar and a summary."""
    progress = StreamProgress()  # draws at the first block: the checks before it print nothing but their error
    try:
        summary = stream_files.stream_file(model, input_path, output, callback=None if quiet else progress,
                                           **settings)
    finally:
        progress.close()
    if not quiet:
        click.echo(f"wrote {output}: {summary.frames / summary.sr:.2f} s, {summary.channels} ch, {summary.sr} Hz | "
                   f"latency {summary.latency} samples ({1000 * summary.latency / summary.sr:.0f} ms), "
                   f"{summary.seconds:.1f} s (real-time factor {summary.real_time_factor:.2f})", err=True)
