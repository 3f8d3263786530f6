"""One stylize run on a long content, alone in its process (for its peak memory): one JSON line on stdout.

``python benchmarks/long_run.py CONTENT STYLE SETTINGS_JSON``: the wall time of ``stylize``, the
process's peak RSS, the iterations, the quality measures and the seams (the positive log-mel flux
of the output within a frame of each join's centre, against the 95th percentile of the flux inside
the segments). Run by benchmarks/test_long.py.
"""

import json
import resource
import sys
import time

import numpy as np

import nstaudio as nst
from nstaudio import quality
from nstaudio.methods.optimizing import frames_per_second, spans


def seams(out, sr, join_seconds, overlap_seconds):
    """(largest flux at a join, the 95th percentile inside the segments, joins above it)."""
    flux = np.mean([quality.onset_envelope(channel, sr) for channel in np.atleast_2d(out)], axis=0)
    fps = quality.SR_MEASURE / quality.HOP_LENGTH
    inside = np.ones(len(flux), bool)
    for centre in join_seconds:
        inside[int((centre - overlap_seconds / 2) * fps):int((centre + overlap_seconds / 2) * fps) + 1] = False
    p95 = float(np.percentile(flux[inside], 95))
    at = [float(flux[max(0, int(c * fps) - 1):int(c * fps) + 2].max()) for c in join_seconds]
    return (max(at) if at else None), p95, sum(a > p95 for a in at)


def main():
    content_path, style_path, settings = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    y, sr = nst.load(content_path)
    s, ssr = nst.load(style_path)
    started = time.perf_counter()
    out, info = nst.stylize(y, s, sr, style_sr=ssr, device="cpu", return_info=True, **settings)
    seconds = time.perf_counter() - started
    options = nst.api.resolve_settings(settings)
    fps = frames_per_second(options)
    frames = nst.spectral.n_frames(int(round(y.shape[-1] * options["sr_work"] / sr)), n_fft=options["n_fft"],
                                   hop_length=options["hop_length"])
    cuts = spans(options, frames, fps)
    joins = [0.5 * (b0 + a1) / fps for (_, a1), (b0, _) in zip(cuts, cuts[1:])]
    seam_max, p95, over = seams(out, sr, joins, options["segment_overlap"])
    print(json.dumps(dict(
        settings=settings, seconds=seconds, peak_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        decoded_gb=y.nbytes / 2**30, iterations=info.iterations, segments=len(cuts),
        style=quality.style_movement(out, y, s, sr, style_sr=ssr), content=quality.content_preservation(out, y, sr),
        seam_max=seam_max, flux_p95=p95, seams_over=over)))


if __name__ == "__main__":
    main()
