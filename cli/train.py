"""``nstaudio train-lossnet``, ``train-style`` and ``train-gan``: read a corpus, train, write the network.

The work is one call to a trainer (``nstaudio.train_lossnet``, ``train_style``, ``train_gan``),
with a progress bar; every check that needs no audio runs before the corpus is read.
"""

import time

import click

import nstaudio
from nstaudio import audio, files, jobs, models
from nstaudio.kernels import DEVICES
from nstaudio.nn import melgan

from .options import with_options
from .progress import CorpusProgress, TrainProgress, losses_text


def training_run_options(func):
    """The options every training command has: where the network goes, the seed, checkpoints, device, quiet."""
    return with_options(func, [
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
    return training_run_options(with_options(func, [
        click.option("--batch-size", type=click.IntRange(min=1), default=24, show_default=True, help="Random crops per step."),
        click.option("--crop", type=int, default=64, show_default=True,
                     help="Frames per crop (a multiple of 16; anything else is refused)."),
        click.option("--learning-rate", type=float, default=1e-3, show_default=True, help="Adam step size."),
        click.option("--weight-decay", type=float, default=1e-4, show_default=True, help="Adam weight decay."),
    ]))


@click.command("train-lossnet")
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


@click.command("train-style")
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


@click.command("train-gan")
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
    progress = CorpusProgress(quiet)
    try:
        return audio.load_corpus(corpus_dir, callback=progress)
    finally:
        progress.close()


def _train(trainer, output, quiet, *args, **options):
    """Run a trainer with a progress bar (loss, steps/s, ETA) and report where the network went."""
    progress = TrainProgress(quiet)
    started = time.perf_counter()
    try:
        network = trainer(*args, callback=progress, checkpoint=output, **options)
    finally:
        progress.close()
    if not quiet:
        steps = network.meta["steps"]
        shape = list(network.arch.channels) if network.kind != "gan" else f"{network.arch.n_mels} mel bands"
        click.echo(f"wrote {output}: {network.kind} {shape} after {steps} steps, final loss "
                   f"{losses_text(network.meta['final_loss'])} | {time.perf_counter() - started:.1f} s", err=True)
