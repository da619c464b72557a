"""The CPU backend's fused ops: gpuad's Numba twins (``kernels/*.py``), where they beat
NumPy, on the arrays they take; anything else takes the reference formula in ``base``.

Each method checks its arrays (``_takes``), shapes them for the twin (flat, or rows of the
last axis) and passes scalars in the arrays' dtype, as the twins expect. The twins are
serial and release the GIL; a large array is cut into row blocks run at once on gpuad's
worker threads (``cpu_threads``), never on Numba's threading layer (which would start a
process-wide OpenMP or TBB runtime and follow its thread settings).
"""
import functools

import numpy as np

from ..activations import ACTIVATION_CODES, saves_output
from ..kernels_loader import load
from . import cpu_threads
from .base import adam_scalars, bias_vector, fusable

#: Below this many elements NumPy's reference wins or ties (serial twins, 4x8 to 256x784
#: float32, benchmarks/NOTES.md): a twin call costs ~3 us, and the SGD and activation
#: backward twins beat NumPy's chains of passes from ~10k elements on.
MIN_ELEMENTS = 4096
#: Twins that lost (benchmarks/bench_kernels.py, 1M and 4M float32) and are not used:
#: tanh's forward (Numba calls libm's scalar tanh, NumPy's tanh is vectorised), and gelu's
#: backward fused with the bias gradient (erf-bound: the fused loop was ~10% slower than
#: the elementwise twin followed by NumPy's column sum). The softmax cross-entropy twins
#: call the scalar exp too: the forward wins only on rows of few classes (2x at 10
#: classes, a third of NumPy's speed at 256), and the backward lost from 1280 elements on.
FORWARD_SLOWER = {"tanh"}
BIAS_FUSION_SLOWER = {"gelu"}
XENT_FORWARD_MAX_CLASSES = 32
XENT_BACKWARD_SLOWER = True
#: From this many elements on, a twin runs on row blocks over gpuad's worker threads;
#: below it, on the calling thread alone. Inside a training step each twin follows a
#: matmul, and the S step (arrays up to 200k elements) ran faster with its twins on one
#: thread (NOTES.md).
PARALLEL_MIN_ELEMENTS = 1 << 20

_twin = functools.cache(load)  # the module of kernels/<name>.py, looked up once


def _takes(*arrays):
    """True when a twin runs on these arrays: ``fusable`` and large enough to pay."""
    return arrays[0].size >= MIN_ELEMENTS and fusable(*arrays)


def _run(kernel, args, cut):
    """``kernel(*args)``, as one call or, for a large first array, one call per row block
    of the arguments at the indices ``cut`` (the others passed whole); the results."""
    first = args[cut[0]]
    if first.size < PARALLEL_MIN_ELEMENTS:
        return [kernel(*args)]
    jobs = []
    for start, stop in cpu_threads.blocks(len(first)):
        job = list(args)
        for k in cut:
            job[k] = args[k][start:stop]
        jobs.append(job)
    return cpu_threads.run_blocks(kernel, jobs)


class CPUKernels:
    """Mixin of ``CPUBackend``: Backend's fused methods run by the Numba twins."""

    def bias_act(self, z, b, activation, slope=0.01):
        bias = None if z.ndim == 0 else bias_vector(np, z, b)
        if (activation in FORWARD_SLOWER or activation not in ACTIVATION_CODES
                or bias is None or not _takes(z, bias)):
            return super().bias_act(z, b, activation, slope)
        y = z if saves_output(activation, slope) else np.empty_like(z)
        c = z.shape[-1]
        _run(_twin("activation").bias_act, (z.reshape(-1, c), bias, y.reshape(-1, c),
                                            ACTIVATION_CODES[activation], z.dtype.type(slope)),
             (0, 2))
        return y, z

    def act_backward(self, gy, saved, activation, slope=0.01):
        if activation not in ACTIVATION_CODES or gy.shape != saved.shape or \
                not _takes(gy, saved):
            return super().act_backward(gy, saved, activation, slope)
        out = np.empty_like(gy)
        _run(_twin("activation").act_backward,
             (gy.reshape(-1), saved.reshape(-1), out.reshape(-1), ACTIVATION_CODES[activation],
              gy.dtype.type(slope)), (0, 1, 2))
        return out

    def act_bias_backward(self, gy, saved, activation, slope=0.01):
        # the fused pass beat NumPy's at every size measured: no MIN_ELEMENTS
        if activation not in ACTIVATION_CODES or activation in BIAS_FUSION_SLOWER or \
                gy.ndim == 0 or gy.shape != saved.shape or not fusable(gy, saved):
            return super().act_bias_backward(gy, saved, activation, slope)
        out = np.empty_like(gy)
        c = gy.shape[-1]
        gb, *others = _run(_twin("activation").act_bias_backward,
                           (gy.reshape(-1, c), saved.reshape(-1, c), out.reshape(-1, c),
                            ACTIVATION_CODES[activation], gy.dtype.type(slope)), (0, 1, 2))
        for part in others:  # each row block's column sums
            gb += part
        return out, gb

    def cross_entropy_forward(self, x, t):
        if x.ndim != 2 or x.shape[1] > XENT_FORWARD_MAX_CLASSES or not fusable(x):
            return super().cross_entropy_forward(x, t)
        stats, loss = np.empty((x.shape[0], 2), x.dtype), np.empty(x.shape[0], x.dtype)
        _run(_twin("softmax_xent").xent_forward,
             (x, np.ascontiguousarray(t, np.int64), stats, loss), (0, 1, 2, 3))
        return stats, loss.mean(dtype=x.dtype)

    def cross_entropy_backward(self, x, stats, t, scale):
        if XENT_BACKWARD_SLOWER or x.ndim != 2 or not _takes(x, stats):
            return super().cross_entropy_backward(x, stats, t, scale)
        g = np.empty_like(x)
        _run(_twin("softmax_xent").xent_backward,
             (x, stats, np.ascontiguousarray(t, np.int64), x.dtype.type(scale), g), (0, 1, 2, 4))
        return g

    def mse_backward(self, x, t, scale):
        if x.shape != t.shape or not _takes(x, t):
            return super().mse_backward(x, t, scale)
        g = np.empty_like(x)
        _run(_twin("mse").mse_backward,
             (x.reshape(-1), t.reshape(-1), x.dtype.type(scale), g.reshape(-1)), (0, 1, 3))
        return g

    def sgd_step(self, p, g, buf, lr, momentum, dampening, nesterov, weight_decay):
        kbuf = self.sgd_kernel_buffer(p, g, buf, momentum, _takes)
        if kbuf is None:
            return super().sgd_step(p, g, buf, lr, momentum, dampening, nesterov,
                                    weight_decay)
        t = p.dtype.type
        _run(_twin("optim").sgd_step,
             (p.reshape(-1), g.reshape(-1), kbuf.reshape(-1), t(lr), t(momentum),
              t(1 - dampening), bool(nesterov), t(weight_decay)), (0, 1, 2))

    def adam_step(self, p, g, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled):
        if any(a.shape != p.shape for a in (g, m, v)) or not _takes(p, g, m, v):
            return super().adam_step(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay,
                                     decoupled)
        _run(_twin("optim").adam_step,
             (p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
              *adam_scalars(p.dtype, step, lr, beta1, beta2, eps, weight_decay, decoupled)),
             (0, 1, 2, 3))
