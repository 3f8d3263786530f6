"""One stylizing job on files: what ``nstaudio run`` does, and each item of ``nstaudio batch``.

A job checks that its output can be written (and is none of its inputs) before any work,
reads the content and the styles, stylizes, and writes the output atomically
(``nstaudio.files``). Its record, one JSON-ready dict, is what ``run --json`` prints and
``batch`` keeps in its results file.
"""

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass

import numpy as np

from . import audio, storage
from .api import StylizeInfo, resolve_settings, stylize, with_defaults
from .errors import ParameterError


@dataclass
class Job:
    """A finished job: the content as read, the output as written, and what the run did.

    Attributes
    ----------
    content : np.ndarray, shape (samples,) or (channels, samples)
    sr : int
    output : np.ndarray, the shape of ``content``
    styles : list of (np.ndarray, int)
        The style recordings and their rates (empty with a model or a style analysis).
    info : StylizeInfo
    seconds : float
        Wall time of the whole job, reading and writing included.
    """

    content: np.ndarray
    sr: int
    output: np.ndarray
    styles: list
    info: StylizeInfo
    seconds: float


def check_not_input(output, inputs, what="output"):
    """ParameterError if ``output`` names one of ``inputs`` (an input is never overwritten)."""
    for path in inputs:
        if audio.same_file(output, path):
            raise ParameterError(f"{what} {output!r} is one of the inputs; choose another path")


def check_job(content_path, output, inputs):
    """Everything about a job's files that can fail, checked before any work.

    Parameters
    ----------
    content_path : str
    output : str
    inputs : list of str
        Every file the job reads (content, styles, model); the output must be none of them.

    Returns
    -------
    soundfile info of the content (its rate, channels and subtype, which the output keeps)
    """
    check_not_input(output, [content_path, *inputs])
    content_info = audio.check_audio_file(content_path)
    audio.check_output(output, sr=content_info.samplerate, channels=content_info.channels,
                       subtype=content_info.subtype)
    return content_info


def stylize_file(content_path, output, *, style_paths=(), style=None, model=None, callback=None, **options):
    """Stylize the file ``content_path`` into ``output`` (same rate, channels and sample format).

    Parameters
    ----------
    content_path, output : str
    style_paths : sequence of str
        Style recordings to read; or give ``style``.
    style : StyleAnalysis or None
        Styles analysed before (:func:`nstaudio.analyse_style`), shared by many jobs.
    model : Network or None
    callback : callable or None
        :func:`nstaudio.stylize`'s progress callback.
    **options
        :func:`nstaudio.stylize`'s settings.

    Returns
    -------
    Job

    Raises
    ------
    NstAudioError
        Any of the job's own errors (unreadable input, bad settings, unwritable output).
    """
    started = time.perf_counter()
    check_job(content_path, output, list(style_paths))
    y, sr, file_info = audio.load(content_path, return_info=True)
    styles = [audio.load(path) for path in style_paths]
    if style is None and styles:
        style, options["style_sr"] = [s for s, _ in styles], [s_sr for _, s_sr in styles]
    out, info = stylize(y, style, sr, model=model, callback=callback, return_info=True, **options)
    audio.save(output, out, sr, subtype=file_info.subtype)
    return Job(content=y, sr=sr, output=out, styles=styles, info=info, seconds=time.perf_counter() - started)


def file_identity(path):
    """What tells a changed input from the same one: its absolute path, size and modification time (a URL's
    size and its storage's key of its metadata)."""
    if path is None:
        return None
    if storage.is_url(path):
        return storage.identity(path)
    try:
        stat = os.stat(path)
    except OSError:
        return [os.path.abspath(path), None, None]
    return [os.path.abspath(path), stat.st_size, stat.st_mtime_ns]


def settings_hash(content_path, style_paths, model_path, options):
    """A short hash of everything a job's output depends on: the input files as they are now, the
    settings and nstaudio's version.

    The settings are hashed as a run resolves them (:func:`nstaudio.api.resolve_settings`: the
    method's defaults filled in), so that ``--alpha 0.01`` and no ``--alpha`` agree; a model
    job's (whose model gives some of them), or settings that do not resolve, as given, with
    :func:`nstaudio.stylize`'s defaults for those left out.
    """
    from .version import __version__

    settings = with_defaults(options)
    if model_path is None:
        try:
            settings = resolve_settings(options, styles=len(style_paths))
        except ParameterError:
            pass
    described = {
        "nstaudio": __version__,
        "content": file_identity(content_path),
        "styles": [file_identity(path) for path in style_paths],
        "model": file_identity(model_path),
        "settings": {name: value for name, value in sorted(settings.items()) if value is not None},
    }
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def record(content_path, output, settings, *, job=None, error=None, internal=False, seconds=None):
    """A job's summary as a JSON-ready dict: what ``run --json`` prints and ``batch`` records.

    Parameters
    ----------
    content_path, output : str
    settings : str
        :func:`settings_hash` of the job.
    job : Job or None
        The finished job; None when it failed.
    error : str or None
        The one-line error of a failed job.
    internal : bool
        The failure is nstaudio's (a bug, a lost worker), not the input's or the settings'.
    seconds : float or None
        Wall time, where there is no ``job`` to tell it.

    Returns
    -------
    dict
        ``input``, ``output``, ``status`` ("done" or "failed"), ``error``, ``seconds``, ``loss``,
        ``iterations``, ``settings``, ``method``, ``backend``, ``phase_db``, ``output_bytes``;
        numbers that do not apply (a model's loss) are None.
    """
    info = None if job is None else job.info

    def number(value):
        return None if value is None or not math.isfinite(value) else float(value)

    try:
        size = os.path.getsize(output) if job is not None else None
    except OSError:
        size = None
    return {
        "input": os.fspath(content_path),
        "output": os.fspath(output),
        "status": "done" if job is not None else "failed",
        "error": error,
        "internal": bool(internal) if job is None else False,
        "seconds": round(job.seconds if job is not None else (seconds or 0.0), 3),
        "loss": None if info is None else number(info.loss),
        "iterations": None if info is None else int(info.iterations),
        "settings": settings,
        "method": None if info is None else info.method,
        "backend": None if info is None else info.backend,
        "phase_db": None if info is None else number(info.phase_convergence_db),
        "output_bytes": size,
    }
