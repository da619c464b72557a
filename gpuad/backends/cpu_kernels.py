"""The CPU backend's fused ops: gpuad's Numba twins (``kernels/*.py``), where they beat
NumPy, on the arrays they take; anything else takes the reference formula in ``base``.

Each method checks its arrays (``_takes``), shapes them for the twin (flat, or rows of the
last axis) and passes scalars in the arrays' dtype, as the twins expect.
"""
import functools

import numba
import numpy as np

from ..activations import ACTIVATION_CODES, saves_output
from ..kernels_loader import load
from .base import adam_scalars, bias_vector, fusable

#: Below this many elements NumPy wins: a Numba parallel launch costs ~13 us on 2 cores,
#: NumPy's relu backward ~14 us at 16384 elements (benchmarks/bench_kernels.py).
MIN_ELEMENTS = 16384
#: Twins that lost (benchmarks/bench_kernels.py, 1M and 4M float32) and are not used:
#: tanh's forward (Numba calls libm's scalar tanh, NumPy's tanh is vectorised), and gelu's
#: backward fused with the bias gradient (erf-bound: the fused loop was ~10% slower than
#: the elementwise twin followed by NumPy's column sum).
#: Below this many elements a twin runs on one thread. Inside a training step each twin
#: follows a matmul whose OpenBLAS threads keep spinning for a while, and a parallel twin
#: competes with them: on 2 cores the S step (arrays up to 200k elements) took 1.90 ->
#: 1.62 ms and 2.21 -> 1.91 ms compiled with its twins on one thread; M (1M-element
#: activations) moved within noise either way (NOTES.md).
PARALLEL_MIN_ELEMENTS = 1 << 20
_THREADS = numba.config.NUMBA_NUM_THREADS
FORWARD_SLOWER = {"tanh"}
BIAS_FUSION_SLOWER = {"gelu"}

_twin = functools.cache(load)  # the module of kernels/<name>.py, looked up once


def _takes(*arrays):
    """True when a twin runs on these arrays: ``fusable`` and large enough to pay; then
    Numba's thread count is set for them (one thread below ``PARALLEL_MIN_ELEMENTS``)."""
    n = arrays[0].size
    if n < MIN_ELEMENTS or not fusable(*arrays):
        return False
    numba.set_num_threads(1 if n < PARALLEL_MIN_ELEMENTS else _THREADS)
    return True


class CPUKernels:
    """Mixin of ``CPUBackend``: Backend's fused methods run by the Numba twins."""

    def bias_act(self, z, b, activation, slope=0.01):
        bias = None if z.ndim == 0 else bias_vector(np, z, b)
        if (activation in FORWARD_SLOWER or activation not in ACTIVATION_CODES
                or bias is None or not _takes(z, bias)):
            return super().bias_act(z, b, activation, slope)
        y = z if saves_output(activation, slope) else np.empty_like(z)
        c = z.shape[-1]
        _twin("activation").bias_act(z.reshape(-1, c), bias, y.reshape(-1, c),
                                     ACTIVATION_CODES[activation], z.dtype.type(slope))
        return y, z

    def act_backward(self, gy, saved, activation, slope=0.01):
        if activation not in ACTIVATION_CODES or gy.shape != saved.shape or \
                not _takes(gy, saved):
            return super().act_backward(gy, saved, activation, slope)
        out = np.empty_like(gy)
        _twin("activation").act_backward(gy.reshape(-1), saved.reshape(-1), out.reshape(-1),
                                         ACTIVATION_CODES[activation], gy.dtype.type(slope))
        return out

    def act_bias_backward(self, gy, saved, activation, slope=0.01):
        if activation not in ACTIVATION_CODES or activation in BIAS_FUSION_SLOWER or \
                gy.ndim == 0 or gy.shape != saved.shape or not _takes(gy, saved):
            return super().act_bias_backward(gy, saved, activation, slope)
        out = np.empty_like(gy)
        c = gy.shape[-1]
        rows = gy.size // c
        gb = _twin("activation").act_bias_backward(
            gy.reshape(rows, c), saved.reshape(rows, c), out.reshape(rows, c),
            ACTIVATION_CODES[activation], gy.dtype.type(slope),
            max(1, min(numba.get_num_threads(), rows)))
        return out, gb

    def cross_entropy_forward(self, x, t):
        if x.ndim != 2 or not _takes(x):
            return super().cross_entropy_forward(x, t)
        lse, loss = np.empty(x.shape[0], x.dtype), np.empty(x.shape[0], x.dtype)
        _twin("softmax_xent").xent_forward(x, np.ascontiguousarray(t, np.int64), lse, loss)
        return lse, loss.mean(dtype=x.dtype)

    def cross_entropy_backward(self, x, lse, t, scale):
        if x.ndim != 2 or not _takes(x, lse):
            return super().cross_entropy_backward(x, lse, t, scale)
        g = np.empty_like(x)
        _twin("softmax_xent").xent_backward(x, lse, np.ascontiguousarray(t, np.int64),
                                            x.dtype.type(scale), g)
        return g

    def mse_backward(self, x, t, scale):
        if x.shape != t.shape or not _takes(x, t):
            return super().mse_backward(x, t, scale)
        g = np.empty_like(x)
        _twin("mse").mse_backward(x.reshape(-1), t.reshape(-1), x.dtype.type(scale),
                                  g.reshape(-1))
        return g

    def sgd_step(self, p, g, buf, lr, momentum, dampening, nesterov, weight_decay):
        kbuf = self.sgd_kernel_buffer(p, g, buf, momentum, _takes)
        if kbuf is None:
            return super().sgd_step(p, g, buf, lr, momentum, dampening, nesterov,
                                    weight_decay)
        t = p.dtype.type
        _twin("optim").sgd_step(p.reshape(-1), g.reshape(-1), kbuf.reshape(-1), t(lr),
                                t(momentum), t(1 - dampening), bool(nesterov), t(weight_decay))

    def adam_step(self, p, g, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled):
        if any(a.shape != p.shape for a in (g, m, v)) or not _takes(p, g, m, v):
            return super().adam_step(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay,
                                     decoupled)
        _twin("optim").adam_step(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
                                 *adam_scalars(p.dtype, step, lr, beta1, beta2, eps,
                                               weight_decay, decoupled))
