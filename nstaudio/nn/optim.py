"""Adam with (L2) weight decay, updating parameters by name."""

from ..kernels import array_module
from ..validation import check_float


class Adam:
    """Adam (Kingma & Ba) with weight decay added to the gradient, as ``torch.optim.Adam(weight_decay=...)``.

    Parameters
    ----------
    lr : float
    betas : (float, float)
    eps : float
    weight_decay : float
    """

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.lr = check_float("lr", lr, minimum=0.0, strict_minimum=True)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.weight_decay = check_float("weight_decay", weight_decay, minimum=0.0)
        self.state = {}
        self.t = 0

    def step(self, params, grads):
        """Update ``params[name]`` in place from ``grads[name]`` for every name in ``grads``."""
        self.t += 1
        correction1 = 1 - self.beta1**self.t
        correction2 = 1 - self.beta2**self.t
        for name, g in grads.items():
            p = params[name]
            xp = array_module(p)  # numpy, or CuPy when training on the GPU
            if self.weight_decay:
                g = g + self.weight_decay * p
            m, v = self.state.setdefault(name, (xp.zeros_like(p), xp.zeros_like(p)))
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            p -= (self.lr / correction1) * m / (xp.sqrt(v / correction2) + self.eps)

    def moments(self):
        """The first and second moments by parameter name, ``{"W.m": m, "W.v": v, ...}`` (for checkpoints)."""
        return {f"{name}.{which}": a for name, (m, v) in self.state.items() for which, a in (("m", m), ("v", v))}

    def load_moments(self, moments, t):
        """Continue from :meth:`moments` saved after ``t`` steps (arrays of the parameters' backend)."""
        names = {key.rsplit(".", 1)[0] for key in moments}
        self.state = {name: (moments[f"{name}.m"].copy(), moments[f"{name}.v"].copy()) for name in names}
        self.t = t
