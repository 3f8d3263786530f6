"""Train the loss network that ships inside nstaudio (``nstaudio/data/lossnet.npz``).

Reproduces the shipped weights from the generated corpus::

    python scripts/make_corpus.py build/corpus
    python scripts/make_lossnet.py build/corpus -o nstaudio/data/lossnet.npz

Training checkpoints to ``build/lossnet-training.npz`` every 200 steps; run the same command
again to resume an interrupted run. The shipped file stores the weights in float16.
"""

import argparse
import os
import sys
import time

import numpy as np

import nstaudio as nst

STEPS = 6000
SEED = 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus_dir")
    parser.add_argument("-o", "--output", default="nstaudio/data/lossnet.npz")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--progress", default=os.path.join("build", "lossnet-training.npz"),
                        help="where the resumable training run is kept")
    args = parser.parse_args()
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        sys.exit(f"error: output directory {out_dir} does not exist")
    progress = args.progress
    os.makedirs(os.path.dirname(progress) or ".", exist_ok=True)
    try:  # a finished run is kept: only the float16 copy is written again
        network = nst.load_model(progress, kind="lossnet") if os.path.exists(progress) else None
    except nst.NstAudioError:
        network = None  # unfinished (resumed below) or not a network
    if network is None:
        network = train(args, progress)
    nst.save_model(args.output, network, dtype=np.float16)
    print(f"wrote {args.output} ({os.path.getsize(args.output) / 1e6:.1f} MB); final loss {network.meta['final_loss']:.4f}")
    return 0


def train(args, progress):
    clips, rates, paths = nst.load_corpus(args.corpus_dir, sr=22050)
    print(f"{len(paths)} clips, {sum(c.shape[1] for c in clips) / 22050 / 60:.1f} min", flush=True)
    started = time.perf_counter()

    def report(step, steps, loss):
        if step % 100 == 0 or step == steps:
            print(f"step {step}/{steps} loss {loss:.4f} ({time.perf_counter() - started:.0f} s)", flush=True)

    return nst.train_lossnet(clips, rates, steps=args.steps, seed=SEED, callback=report, checkpoint=progress,
                             resume=os.path.exists(progress), labels=paths)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except nst.NstAudioError as exc:
        sys.exit(f"error: {exc}")
