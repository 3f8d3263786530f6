"""Case 6: the `timedomain` objective (value + gradient back to the samples) against torch autograd."""

import numpy as np
import pytest

from audio_fixtures import clip
from conftest import alternate


@pytest.mark.parametrize("seconds", [5, 10])
def test_timedomain_objective(torch, report, seconds):
    from nstaudio.features import random_filters
    from nstaudio.kernels import get_backend
    from nstaudio.methods.timedomain import TimeDomainObjective

    from torch_reference import TorchTimeDomainObjective

    frame, hop, width, alpha = 2048, 256, 3, 1e-2
    content, style = clip("content", seconds)[None], clip("style", 4)
    W = random_filters(4096, 3 * (frame // 2 + 1), width, seed=0)
    ours = TimeDomainObjective(get_backend("cpu"), W, content, [style], frame=frame, hop=hop, alpha=alpha)
    theirs = TorchTimeDomainObjective(W, content, style, frame=frame, hop=hop, alpha=alpha)
    y = (np.random.default_rng(1).standard_normal(content.shape) * 0.05).astype(np.float32)
    t_ours, t_torch, (loss, grad), (loss_t, grad_t) = alternate(lambda: ours(y), lambda: theirs(y))
    loss_error = abs(loss - loss_t) / abs(loss_t)
    grad_error = np.linalg.norm(grad - grad_t) / np.linalg.norm(grad_t)
    report(f"6. timedomain objective+grad, {seconds} s (T={ours.framing.frames} frames, width {width})", t_ours,
           t_torch, f"loss {loss_error:.1e}, grad {grad_error:.1e}")
    assert loss_error < 1e-4 and grad_error < 1e-3
