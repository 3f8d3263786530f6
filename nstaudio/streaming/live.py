"""A :class:`~nstaudio.streaming.Stream` between audio devices, through sounddevice (the ``live`` extra)."""

import threading

import numpy as np

from ..errors import ParameterError
from ..kernels.blas_threads import one_blas_thread
from .collector import frozen_objects
from .stream import Stream


def require_sounddevice():
    """The sounddevice module, or a ParameterError saying how to get it."""
    try:
        import sounddevice
    except ImportError:
        raise ParameterError("live audio needs sounddevice: pip install 'nstaudio[live]'") from None
    except OSError as exc:  # sounddevice is there but PortAudio is not
        raise ParameterError(f"live audio needs the PortAudio library ({exc})") from None
    return sounddevice


def list_devices():
    """The audio devices sounddevice sees, as it prints them."""
    return str(require_sounddevice().query_devices())


def run_live(model, *, input_device=None, output_device=None, channels=1, block_size=512, sr=None, seconds=None,
             stop=None, **stream_options):
    """Stylize an input device into an output device until ``stop`` is set or ``seconds`` have passed.

    Parameters
    ----------
    model : Network or str
    input_device, output_device : int or str or None
        sounddevice's device (an index or part of a name); None: the default device.
    channels, block_size, sr
        As :class:`Stream` (``sr`` None: the model's rate).
    seconds : float or None
        Stop after this long; None: run until ``stop`` is set or Ctrl-C.
    stop : threading.Event or None
    **stream_options
        :class:`Stream`'s other settings.

    Returns
    -------
    dict
        ``latency`` (samples), ``blocks`` processed, ``status`` (the device's xrun reports, as text).

    BLAS runs on one thread from the stream's construction on (its warm-up measures the pieces of
    work as they will run): a gan model's generator multiplies through BLAS, whose threads'
    wake-ups now and then stall a small product many times over (docs/decisions.md, "Stream: one
    BLAS thread"); nstaudio's products run on one BLAS thread anyway
    (:func:`nstaudio.kernels.blas_threads.one_blas_thread`), the hold keeps the rest of the process's
    BLAS calls there too. The objects there are before the devices start are kept out of Python's
    full collections (:func:`nstaudio.streaming.collector.frozen_objects`). Both are the process's
    settings: one live run at a time per process.
    """
    sd = require_sounddevice()
    stop = threading.Event() if stop is None else stop
    failure = []
    with one_blas_thread():
        stream = Stream(model, channels=channels, block_size=block_size, sr=sr, **stream_options)
        report = {"latency": stream.latency, "blocks": 0, "status": []}

        def callback(indata, outdata, frames, time, status):
            if status:
                report["status"].append(str(status))
            try:
                outdata[:] = stream.process(np.asarray(indata, dtype=np.float32).T).T
            except Exception as exc:  # PortAudio's thread would only print it: end the run and raise it there
                outdata[:] = 0.0
                failure.append(exc)
                stop.set()
                raise getattr(sd, "CallbackAbort", RuntimeError) from exc
            report["blocks"] += 1

        devices = sd.Stream(device=(input_device, output_device), samplerate=stream.sr,
                            blocksize=stream.block_size, channels=channels, dtype="float32", callback=callback)
        # Python's full collection scans every object, with numba and scipy loaded for several blocks'
        # time: the objects there are before the devices start are frozen out of it (docs/decisions.md,
        # "Stream: garbage collection").
        with frozen_objects(), devices:
            try:
                stop.wait(seconds)
            except KeyboardInterrupt:  # Ctrl-C is how a live run ends
                pass
    if failure:
        raise failure[0]
    return report
