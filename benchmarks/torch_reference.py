"""The torch implementations nstaudio is measured against, written as people write them today.

The objective is the Ulyanov & Lebedev network in torch autograd (``conv1d`` + ReLU +
N x N Gram + ``backward``); Griffin-Lim is the fast Griffin-Lim of librosa/torchaudio on
``torch.stft``/``torch.istft``. Both take and return numpy arrays so the benchmarks can
hand them the very same inputs as nstaudio.
"""

import numpy as np
import torch


class TorchObjective:
    """``loss, grad = f(X)`` for X (B, C, T), same definition as ``nstaudio.objective``.

    Parameters
    ----------
    W : np.ndarray, shape (N, C, K)
    content : np.ndarray, shape (B, C, T)
    styles : list of np.ndarray, each (C, Ts_i)
    style_weights : list of float, normalised to sum 1
    alpha : float
    """

    def __init__(self, W, content, styles, style_weights, alpha, device="cpu", dtype=torch.float32):
        self.device, self.dtype, self.alpha = device, dtype, alpha
        self.W = torch.as_tensor(W, dtype=dtype, device=device)
        with torch.no_grad():
            self.content_features = self.features(torch.as_tensor(content, dtype=dtype, device=device))
            total = sum(style_weights)
            self.G_s = sum(
                (w / total) * self.gram(self.features(torch.as_tensor(s[None], dtype=dtype, device=device)))[0]
                for s, w in zip(styles, style_weights)
            )

    def features(self, X):
        return torch.relu(torch.nn.functional.conv1d(X, self.W))

    @staticmethod
    def gram(F):
        return F @ F.transpose(1, 2) / F.shape[2]

    def __call__(self, X):
        X = torch.as_tensor(np.asarray(X), dtype=self.dtype, device=self.device).requires_grad_(True)
        F = self.features(X)
        loss = self.alpha * torch.sum((F - self.content_features) ** 2) + torch.sum((self.gram(F) - self.G_s) ** 2)
        loss.backward()
        return float(loss.detach()), X.grad.detach().cpu().numpy()


def torch_griffin_lim(S, angles, *, n_iter, n_fft=2048, hop_length=512, momentum=0.99, length=None,
                      device="cpu"):
    """Fast Griffin-Lim on ``torch.stft``/``torch.istft`` (the torchaudio / librosa algorithm).

    Parameters
    ----------
    S : np.ndarray, shape (bins, frames)
        Target magnitude.
    angles : np.ndarray, complex, same shape
        Initial unit-modulus phase (the same array nstaudio gets).

    Returns
    -------
    y : np.ndarray, shape (samples,)
    convergence_db : float
        Spectral convergence of the last iteration.
    """
    window = torch.hann_window(n_fft, device=device)
    S_t = torch.as_tensor(S, dtype=torch.float32, device=device)
    angles_t = torch.as_tensor(angles, dtype=torch.complex64, device=device)
    opts = dict(n_fft=n_fft, hop_length=hop_length, window=window, center=True)
    rebuilt = None
    convergence = float("nan")
    for _ in range(n_iter):
        previous = rebuilt
        inverse = torch.istft(S_t * angles_t, **opts)
        rebuilt = torch.stft(inverse, return_complex=True, pad_mode="constant", **opts)
        angles_t = rebuilt if previous is None else rebuilt - (momentum / (1 + momentum)) * previous
        angles_t = angles_t / (angles_t.abs() + 1e-16)
    if n_iter:
        convergence = float(20 * torch.log10(torch.linalg.norm(S_t - rebuilt.abs()) / torch.linalg.norm(S_t)))
    y = torch.istft(S_t * angles_t, length=length, **opts)
    return y.cpu().numpy(), convergence


def torch_stylize(content, style, *, iterations, n_filters=4096, width=11, alpha=1e-2, n_fft=2048, hop_length=512,
                  phase_iters=100, seed=0, device="cpu"):
    """The whole `optimize` pipeline with torch doing the math: torch.stft, torch autograd, torch Griffin-Lim.

    L-BFGS-B is SciPy's (as in Ulyanov & Lebedev's reference code), driven through the same
    wrapper nstaudio uses, from the same filters and starting point (``initial_state``), without
    a bound as nstaudio's ``optimize``; a log magnitude below 0 is silence, as there.

    Returns
    -------
    y : np.ndarray, shape (samples,)
    loss : float
        The objective at the final point.
    """
    from nstaudio import optimizers
    from nstaudio.methods.optimize import initial_state

    window = torch.hann_window(n_fft, device=device)
    opts = dict(n_fft=n_fft, hop_length=hop_length, window=window, center=True, return_complex=True,
                pad_mode="constant")
    content_spec = torch.stft(torch.as_tensor(content, device=device), **opts)
    style_spec = torch.stft(torch.as_tensor(style, device=device), **opts)
    Xc = torch.log1p(content_spec.abs()).cpu().numpy()[None]
    Xs = torch.log1p(style_spec.abs()).cpu().numpy()
    W, x0 = initial_state(Xc.shape, n_filters=n_filters, width=width, init="noise", seed=seed)
    objective = TorchObjective(W, Xc, [Xs], [1.0], alpha, device=device)
    X, info = optimizers.lbfgs(objective, x0, iterations=iterations, lower=None, tolerance=0.0)
    loss = objective(X)[0]
    magnitude = np.expm1(np.maximum(X[0], 0))
    angles = (content_spec / content_spec.abs().clamp_min(1e-30)).cpu().numpy()
    y, _ = torch_griffin_lim(magnitude, angles, n_iter=phase_iters, n_fft=n_fft, hop_length=hop_length,
                             length=len(content), device=device)
    return y, loss


def torch_ulyanov(content, style, sr, *, style_sr=None, iterations=100, phase_iters=100, n_filters=4096, width=11,
                  alpha=1e-2, n_fft=2048, hop_length=512, sr_work=22050, seed=0, device="cpu"):
    """Ulyanov & Lebedev's original setup in torch: the quality benchmark's reference.

    As their notebook: 22.05 kHz, log1p magnitude of a 2048-point STFT, 4096 random filters of
    11 frames, content weight 0.01, SciPy L-BFGS-B without bounds from small noise, then plain
    Griffin-Lim (no momentum) from random phase. Every channel of ``content`` is stylized in
    one batch with the same filters (their code takes mono); the result is resampled back to
    ``sr`` and is not loudness-matched (the quality measures are level-invariant).

    Parameters
    ----------
    content : np.ndarray, shape (channels, samples), at ``sr``
    style : np.ndarray, shape (samples,) or (channels, samples), at ``style_sr`` (default ``sr``); mixed to mono

    Returns
    -------
    y : np.ndarray, shape (channels, samples) of ``content``
    info : dict
        ``loss`` (objective at the end), ``iterations``, ``phase_convergence_db`` (mean over channels).
    """
    import nstaudio as nst
    from nstaudio import optimizers
    from nstaudio.methods.optimize import initial_state

    window = torch.hann_window(n_fft, device=device)
    opts = dict(n_fft=n_fft, hop_length=hop_length, window=window, center=True, return_complex=True,
                pad_mode="constant")
    content_work = nst.resample(np.atleast_2d(content), orig_sr=sr, target_sr=sr_work)
    style_work = nst.resample(np.atleast_2d(style).mean(axis=0), orig_sr=style_sr or sr, target_sr=sr_work)
    Xc = torch.log1p(torch.stft(torch.as_tensor(content_work, device=device), **opts).abs()).cpu().numpy()
    Xs = torch.log1p(torch.stft(torch.as_tensor(style_work, device=device), **opts).abs()).cpu().numpy()
    W, x0 = initial_state(Xc.shape, n_filters=n_filters, width=width, init="noise", seed=seed)
    objective = TorchObjective(W, Xc, [Xs], [1.0], alpha, device=device)
    X, info = optimizers.lbfgs(objective, x0, iterations=iterations, lower=None, tolerance=0.0)
    loss = objective(X)[0]
    rng = np.random.default_rng(seed)
    outputs, convergence = [], []
    for channel in np.expm1(X):
        angles = np.exp(2j * np.pi * rng.random(channel.shape)).astype(np.complex64)
        y, db = torch_griffin_lim(channel, angles, n_iter=phase_iters, n_fft=n_fft, hop_length=hop_length,
                                  momentum=0.0, length=content_work.shape[1], device=device)
        outputs.append(y)
        convergence.append(db)
    y = nst.resample(np.stack(outputs), orig_sr=sr_work, target_sr=sr, length=np.shape(content)[-1])
    return y, {"loss": loss, "iterations": info["iterations"], "phase_convergence_db": float(np.mean(convergence))}


def torch_network(arch, params, state, device="cpu"):
    """The AutoStyle autoencoder as a ``torch.nn.Sequential`` in eval mode, with nstaudio's weights.

    Conv1d / ConvTranspose1d weights share torch's layouts; each layer but the last is
    followed by ReLU and then BatchNorm1d with the running statistics.
    """
    nn = torch.nn
    sizes = [arch.n_bins, *arch.channels]
    pad = arch.width // 2
    layers = []
    names = [f"enc{i}" for i in range(4)] + [f"dec{i}" for i in range(4)]
    for i, name in enumerate(names):
        if i < 4:
            layer = nn.Conv1d(sizes[i], sizes[i + 1], arch.width, stride=arch.stride, padding=pad)
        else:
            j = i - 4
            layer = nn.ConvTranspose1d(sizes[4 - j], sizes[3 - j], arch.width, stride=arch.stride, padding=pad,
                                       output_padding=arch.stride - 1)
        layer.weight.data = torch.as_tensor(params[name]["W"])
        layer.bias.data = torch.as_tensor(params[name]["b"])
        layers.append(layer)
        if i < 7:
            norm = nn.BatchNorm1d(layer.out_channels)
            norm.weight.data = torch.as_tensor(params[f"bn_{name}"]["gamma"])
            norm.bias.data = torch.as_tensor(params[f"bn_{name}"]["beta"])
            norm.running_mean.data = torch.as_tensor(state[f"bn_{name}"]["running_mean"])
            norm.running_var.data = torch.as_tensor(state[f"bn_{name}"]["running_var"])
            layers += [nn.ReLU(), norm]
    return nn.Sequential(*layers).to(device).eval()


def torch_feedforward(y, net, *, n_fft=2048, hop_length=512, phase_iters=32, device="cpu"):
    """The feedforward pipeline in torch: torch.stft, the network, Griffin-Lim from the content's phase.

    Returns
    -------
    np.ndarray, shape (samples,)
    """
    window = torch.hann_window(n_fft, device=device)
    spec = torch.stft(torch.as_tensor(y, device=device), n_fft=n_fft, hop_length=hop_length, window=window,
                      center=True, return_complex=True, pad_mode="constant")
    X = torch.log1p(spec.abs())[None]
    T = X.shape[2]
    X = torch.nn.functional.pad(X, (0, (-T) % 16), mode="replicate")
    with torch.no_grad():
        magnitude = torch.expm1(torch.relu(net(X)[0, :, :T]))
    angles = (spec / spec.abs().clamp_min(1e-30)).cpu().numpy()
    out, _ = torch_griffin_lim(magnitude.cpu().numpy(), angles, n_iter=phase_iters, n_fft=n_fft,
                               hop_length=hop_length, length=len(y), device=device)
    return out


class TorchTimeDomainObjective:
    """``loss, grad = f(y)`` for waveforms y (B, n): the Mital objective of ``nstaudio.methods.timedomain`` in torch.

    Frames of the zero-padded signal (``frame // 2`` in front) times a periodic Hann window,
    ``torch.fft.rfft``, [Re; Im; |.|] stacked, ``conv1d`` + ReLU, content and Gram losses, autograd.
    """

    def __init__(self, W, content, style, *, frame, hop, alpha, device="cpu", dtype=torch.float32):
        self.frame, self.hop, self.alpha, self.device, self.dtype = frame, hop, alpha, device, dtype
        self.W = torch.as_tensor(W, dtype=dtype, device=device)
        self.window = torch.hann_window(frame, periodic=True, dtype=dtype, device=device)
        with torch.no_grad():
            self.Zc, _ = self.stacked(torch.as_tensor(content, dtype=dtype, device=device))
            self.Fc = torch.relu(torch.nn.functional.conv1d(self.Zc, self.W))
            Zs, Ms = self.stacked(torch.as_tensor(style[None], dtype=dtype, device=device))
            Fs = torch.relu(torch.nn.functional.conv1d(Zs, self.W))
            self.Gf = (Fs[0] @ Fs[0].T) / Fs.shape[2]
            self.Gm = (Ms[0] @ Ms[0].T) / Ms.shape[2]

    def stacked(self, y):
        n = y.shape[1]
        front = self.frame // 2
        frames = 1 + max(0, -(-(n + front - self.frame) // self.hop))
        padded = torch.nn.functional.pad(y, (front, self.frame + self.hop * (frames - 1) - front - n))
        spec = torch.fft.rfft(padded.unfold(1, self.frame, self.hop) * self.window, dim=-1).transpose(1, 2)
        M = spec.abs()
        return torch.cat([spec.real, spec.imag, M], dim=1), M

    def __call__(self, y):
        y = torch.as_tensor(np.asarray(y), dtype=self.dtype, device=self.device).requires_grad_(True)
        Z, M = self.stacked(y)
        F = torch.relu(torch.nn.functional.conv1d(Z, self.W))
        loss = self.alpha * (torch.sum((Z - self.Zc) ** 2) + torch.sum((F - self.Fc) ** 2))
        loss = loss + torch.sum((F @ F.transpose(1, 2) / F.shape[2] - self.Gf) ** 2)
        loss = loss + torch.sum((M @ M.transpose(1, 2) / M.shape[2] - self.Gm) ** 2)
        loss.backward()
        return float(loss.detach()), y.grad.detach().cpu().numpy()
