"""Case 3: the whole `optimize` run on 10 s of real audio, nstaudio vs the torch pipeline."""

import time

import nstaudio as nst

from audio_fixtures import SR, clip


def test_whole_run(torch, report):
    from torch_reference import torch_stylize

    content, style = clip("content", 10), clip("style", 10)

    start = time.perf_counter()
    _, default = nst.stylize(content, style, SR, device="cpu", return_info=True)
    t_default = time.perf_counter() - start

    start = time.perf_counter()
    _, fixed = nst.stylize(content, style, SR, iterations=300, tolerance=0, device="cpu", return_info=True)
    t_fixed = time.perf_counter() - start

    start = time.perf_counter()
    _, torch_loss = torch_stylize(content, style, iterations=300)
    t_torch = time.perf_counter() - start

    report("3. whole run, 300 iterations + 100 Griffin-Lim, 10 s (nstaudio: its L-BFGS; torch: SciPy "
           "L-BFGS-B; both unbounded)", t_fixed, t_torch,
           f"final loss {fixed.loss:.2f} vs {torch_loss:.2f} ({fixed.loss / torch_loss - 1:+.2%})")
    report(f"3. default run (stopped at {default.iterations} iterations) vs torch's 300", t_default, t_torch,
           f"final loss {default.loss:.2f} vs {torch_loss:.2f} ({default.loss / torch_loss - 1:+.2%})")
    # Same objective, same start, same iteration count, no bound on either; the minimisers differ
    # (nstaudio's L-BFGS on float32 vs the reference's SciPy L-BFGS-B), so "no worse" is judged to
    # 0.5 %; the early-stopped default to 1 %.
    assert fixed.loss <= 1.005 * torch_loss
    assert default.loss <= 1.01 * torch_loss
