"""The backend interface: what every backend module (numpy, cpu, cuda) provides.

``get_backend`` returns a module; a module satisfies this protocol through its functions
(as PEP 544 allows), so code typed against :class:`Backend` runs on any of them. Arrays are
the backend's own (numpy, or CuPy for cuda) unless a member says host; shapes and the full
contracts are in each member's reference docstring in :mod:`.numpy_backend` and the modules
it gathers.
"""

from types import ModuleType
from typing import Any, Protocol, Tuple, runtime_checkable

Array = Any  # a numpy or CuPy array


@runtime_checkable
class GriffinLimState(Protocol):
    """A backend's state of one spectrogram's fast Griffin-Lim (its ``griffin_lim_start`` makes one)."""

    norm: Any  # ``||S||`` as the backend measures it: the spectral convergence's denominator


@runtime_checkable
class Backend(Protocol):
    """The functions every backend module shares; ``tests/test_backend_interface.py`` checks each has them all."""

    name: str
    xp: ModuleType

    def asarray(self, x, dtype) -> Array:
        """``x`` moved to this backend as a contiguous array of ``dtype``."""

    def to_numpy(self, x) -> Any:
        """``x`` as a host numpy array."""

    def prepare_weights(self, W, frames=None) -> Any:
        """The filters W (N, C, K) laid out once for :meth:`conv1d` on inputs of about ``frames`` frames."""

    def matmul(self, a, b, out=None) -> Array:
        """``a @ b`` for 2-D arrays, into ``out`` if given, with the same bits on any number of threads."""

    def gram(self, a, out=None) -> Array:
        """``a @ a.T`` for a 2-D array, into ``out`` if given."""

    def conv1d(self, X, W, out=None) -> Array:
        """Valid 1-D convolution over time: X (C, T), prepared W -> (N, T - K + 1)."""

    def conv1d_adjoint(self, dY, W, T, out=None) -> Array:
        """Adjoint of :meth:`conv1d` with respect to X: (N, T') -> (C, T)."""

    def relu_content(self, F_pre, Fc) -> Tuple[Array, float]:
        """ReLU of the pre-activations (in place where the backend can) and ``sum((F - Fc)**2)`` in float64."""

    def relu_content_backward(self, F, Fc, dF_style, alpha) -> Array:
        """``[F > 0] * (dF_style + 2 alpha (F - Fc))``: the gradient with respect to the pre-activations."""

    def style_loss_nxn(self, F, G_s, out=None) -> Tuple[float, Array]:
        """Gram style loss ``||F F^T / T' - G_s||^2`` and its gradient with respect to F, N x N form."""

    def style_loss_kernel(self, F, S_hat, target_sq, out=None) -> Tuple[float, Array]:
        """The same loss and gradient in the kernel (time x time) form, from the scaled style features."""

    def sum_squares(self, A) -> float:
        """``sum(A**2)`` of a 2-D array, accumulated in float64."""

    def arccos_kernel(self, U, a2, b2) -> Tuple[Array, Array, Array]:
        """The order-1 arc-cosine kernel and its derivatives in U and a2, element-wise over U (R, S)."""

    def strided_windows_channel_major(self, x, K, stride, padding, out) -> Array:
        """The conv layers' im2col, channels first: x (C, B, T) -> ``out`` (C, K, B, T_out), returned."""

    def overlap_windows_channel_major(self, cols, stride, padding, bias, out) -> Array:
        """Adjoint of :meth:`strided_windows_channel_major` plus a bias: (C, K, B, T) -> ``out`` (C, B, length)."""

    def griffin_lim_start(self, S, angles, *, window, hop_length, center) -> GriffinLimState:
        """Fast Griffin-Lim's state for one host magnitude S (bins, frames) with initial phase ``angles``."""

    def griffin_lim_project(self, state) -> Array:
        """The STFT of the ISTFT of the state's estimate: the nearest consistent spectrogram."""

    def griffin_lim_phase_step(self, state, rebuilt, previous, coef) -> Any:
        """The momentum phase step into the state's estimate; returns ``||S - |rebuilt|||`` as a backend scalar."""

    def griffin_lim_inverse(self, state) -> Array:
        """The padded-domain ISTFT of the state's estimate, (n_fft + hop (frames - 1),) float32."""

    def heap_integrate(self, magnitude, time_step, freq_step, threshold, phase) -> Any:
        """Phase Gradient Heap Integration of a host spectrogram (bins, frames), into ``phase``."""

    def heap_integrate_frame(self, magnitude, time_step, freq_step, threshold, phase) -> Any:
        """Real-time PGHI of one host frame from the one before (column 1 of ``phase`` from column 0)."""

    def keep_magnitude(self, target, magnitude, estimate) -> Any:
        """Host spectra ``target`` set to ``magnitude`` with ``estimate``'s phases, in place; returns the change."""

    def normalized_frames(self, signal, weight, window, offset, hop, count, tiny) -> Any:
        """Windowed frames of a host overlap-added signal over its summed squared windows, (batch, count, n_fft)."""

    def overlap_add_frames(self, signal, frames, window, offset, hop) -> Any:
        """``signal[:, offset + i hop + t] += frames[:, i, t] window[t]`` on host arrays, in place."""

    def polyphase_outputs(self, history, phases, first, count, up, down, offset, history_start) -> Any:
        """Outputs ``first .. first + count - 1`` of a causal polyphase resampler, (channels, count) float32."""

    def frame_product(self, weights, columns, out) -> Any:
        """``out = weights @ columns`` for a few host columns: one frame of a layer for a stream's channels."""

    def mel_fista_start(self, Ft_indptr, Ft_indices, Ft_data, M, coverage, bins) -> Any:
        """FISTA's starting point ``F^T M / coverage`` for the mel inversion, (bins, T) float32, host."""

    def mel_fista_steps(self, F_indptr, F_indices, F_data, Ft_indptr, Ft_indices, Ft_data, M, step, momenta,
                        P, Y) -> Any:
        """FISTA steps of ``min ||F P - M||^2, P >= 0`` from the host state (P, Y), in place; returns P."""


def members(protocol=Backend):
    """The names a backend module must define: ``protocol``'s attributes and functions.

    Returns
    -------
    list of str, sorted
    """
    names = set(getattr(protocol, "__annotations__", {}))
    names.update(name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_"))
    return sorted(names)
