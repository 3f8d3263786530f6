"""Progress bars on stderr: a run's stages, a batch's items, training steps, corpus reading, a stream.

Each is fed by the library's callback and draws nothing before its first report, so the checks
that run before any work print only their error.
"""

import sys
import time

import click
import numpy as np

from nstaudio.nn.trainers.gan import LOSSES as GAN_LOSSES


def _bar(length, label, **options):
    """An entered click progress bar on stderr."""
    bar = click.progressbar(length=length, label=label, file=sys.stderr, **options)
    bar.__enter__()
    return bar


class _Closing:
    """A progress display whose bar, once made, is closed by :meth:`close`."""

    bar = None

    def __init__(self, quiet=False):
        self.quiet = quiet

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


class RunProgress(_Closing):
    """The stages of a run, fed by ``stylize``'s callback ``(stage, step, total, value)``."""

    LABELS = {"warm start": "warm start", "optimize": "optimizing", "phase": "phase     "}

    def __init__(self, quiet):
        self.quiet = quiet
        self.stage = None

    def __call__(self, stage, step, total, value):
        if self.quiet:
            return
        if stage != self.stage:
            self.close()
            self.stage = stage
            unit = "dB" if stage == "phase" else "loss"
            self.bar = _bar(total, self.LABELS.get(stage, stage), show_eta=True, show_pos=True,
                            item_show_func=lambda v: None if v is None else f"{unit} {v:.4g}")
            self.done = 0
        self.bar.update(step - self.done, value)
        self.done = step


class BatchProgress(_Closing):
    """A batch's items, with what the workers report of the items running now."""

    def __init__(self, quiet):
        self.quiet = quiet
        self.shown = 0

    def __call__(self, progress):
        if self.quiet:
            return
        if self.bar is None:
            self.bar = _bar(progress.total, "stylizing ", show_eta=True, show_pos=True,
                            item_show_func=lambda text: text)
        running = [f"{key}: {stage} {step}/{steps}" for key, (stage, step, steps) in sorted(progress.running.items())]
        text = ", ".join(running[:2]) + (f" (+{len(running) - 2})" if len(running) > 2 else "")
        self.bar.update(progress.finished - self.shown, text or None)
        self.shown = progress.finished


def losses_text(loss):
    """One loss, or a gan's (critic, generator, identity, TraVeL), for the progress bar and the summary."""
    if np.ndim(loss) == 0:
        return f"{float(loss):.4g}"
    return ", ".join(f"{name} {value:.3g}" for name, value in zip(GAN_LOSSES, loss))


class TrainProgress(_Closing):
    """Training steps, fed by a trainer's callback ``(step, steps, loss)``: loss, steps per second and ETA."""

    def __call__(self, step, steps, loss):
        if self.quiet:
            return
        if self.bar is None:
            self.first_step, self.started = step - 1, time.perf_counter()
            self.bar = _bar(steps, "training  ", show_eta=True, show_pos=True, item_show_func=lambda text: text)
            self.bar.update(step - 1)
        rate = (step - self.first_step) / max(time.perf_counter() - self.started, 1e-9)
        self.bar.update(1, f"{'' if np.ndim(loss) else 'loss '}{losses_text(loss)}, {rate:.1f} steps/s")


class CorpusProgress(_Closing):
    """The files of a corpus as they are read, fed by ``load_corpus``'s callback ``(i, count, path)``."""

    def __call__(self, i, count, path):
        if self.quiet:
            return
        if self.bar is None:
            self.bar = _bar(count, "reading   ", show_pos=True)
        self.bar.update(1)


class StreamProgress(_Closing):
    """Samples streamed, fed by ``stream_file``'s callback ``(done, total)``."""

    def __call__(self, done, total):
        if self.bar is None:
            self.bar = _bar(total, "streaming", show_eta=True)
        self.bar.update(done - self.bar.pos)
