"""The CUDA backend's fused ops: gpuad's kernels (``kernels/*.cu``) compiled at run time
through CuPy, on the arrays they take; anything else takes the reference formula in ``base``.

A source is compiled by NVRTC (``cupy.RawModule``) the first time one of its kernels runs
on a device. CuPy keeps the binary in its on-disk kernel cache (``CUPY_CACHE_DIR``, default
``~/.cupy/kernel_cache``), keyed by the source text and the GPU's architecture, so a later
process loads it without compiling.
"""
import functools
import re

import numpy as np

from ..activations import ACTIVATION_CODES, saves_output
from ..kernels_loader import cuda_source, kernels_dir
from .base import adam_scalars, bias_vector, fusable

THREADS = 256
_ENTRY_SUFFIX = {"float32": "f32", "float64": "f64"}
_LOCAL_INCLUDE = re.compile(r'^#include "([\w.]+)"$', re.MULTILINE)


def module_source(name):
    """``kernels/<name>.cu`` with its local includes inlined: NVRTC then needs no search
    path, and CuPy's cache key (the text) changes when a header does. ``#line``
    directives keep compiler messages pointing at the right file and line."""
    text = cuda_source(name)

    def inline(m):
        after = text.count("\n", 0, m.start()) + 2  # the line after the #include
        header = (kernels_dir() / m.group(1)).read_text()
        return f'#line 1 "{m.group(1)}"\n{header}\n#line {after} "{name}.cu"'
    return f'#line 1 "{name}.cu"\n' + _LOCAL_INCLUDE.sub(inline, text)


def _row_threads(c):
    """Threads per block for a kernel that gives each block a row of ``c``: whole warps."""
    return min(THREADS, 32 * -(-c // 32))


class DeviceKernels:
    """gpuad's kernels on one GPU: each module compiled on first use, each entry point
    (kernel and dtype) looked up once."""

    def __init__(self, cupy, device):
        self._cupy = cupy
        self._modules, self._functions = {}, {}
        sms = cupy.cuda.runtime.getDeviceProperties(device.id)["multiProcessorCount"]
        self.max_blocks = 32 * sms  # a grid-stride loop needs no more to fill the GPU

    def blocks(self, n, threads=THREADS):
        """Blocks of a grid-stride loop over ``n`` items."""
        return max(1, min(-(-n // threads), self.max_blocks))

    def launch(self, module, kernel, dtype, grid, block, args):
        """Run the ``dtype`` entry point of ``kernel`` in ``kernels/<module>.cu``."""
        fn = self._functions.get((module, kernel, dtype))  # the backend's GPU is current
        if fn is None:
            fn = self._load(module, kernel, dtype)
        fn(grid, block, args)

    def _load(self, module, kernel, dtype):
        from .cuda import library_error, missing_library
        mod = self._modules.get(module)
        if mod is None:
            mod = self._modules[module] = self._cupy.RawModule(code=module_source(module))
        try:
            fn = mod.get_function(f"{kernel}_{_ENTRY_SUFFIX[dtype.name]}")  # compiles
        except Exception as e:
            if missing_library(e):
                raise library_error("NVRTC", f"compiling kernels/{module}.cu", e) from None
            raise
        self._functions[(module, kernel, dtype)] = fn
        return fn


class CUDAKernels:
    """Mixin of ``CUDABackend``: Backend's fused methods run by gpuad's CUDA kernels."""

    @functools.cached_property
    def kernels(self):
        """gpuad's kernels on this backend's GPU."""
        return DeviceKernels(self.xp, self.device_scope)

    def bias_act(self, z, b, activation, slope=0.01):
        bias = None if z.ndim == 0 else bias_vector(self.xp, z, b)
        if activation not in ACTIVATION_CODES or bias is None or not fusable(z, bias):
            return super().bias_act(z, b, activation, slope)
        y = z if saves_output(activation, slope) else self.xp.empty_like(z)
        k = self.kernels
        k.launch("activation", "bias_act", z.dtype, (k.blocks(z.size),), (THREADS,),
                 (z, bias, y, np.int64(z.size), np.int64(z.shape[-1]),
                  np.int32(ACTIVATION_CODES[activation]), z.dtype.type(slope)))
        return y, z

    def act_backward(self, gy, saved, activation, slope=0.01):
        if activation not in ACTIVATION_CODES or gy.shape != saved.shape or \
                not fusable(gy, saved):
            return super().act_backward(gy, saved, activation, slope)
        out = self.xp.empty_like(gy)
        k = self.kernels
        k.launch("activation", "act_backward", gy.dtype, (k.blocks(gy.size),), (THREADS,),
                 (gy, saved, out, np.int64(gy.size), np.int32(ACTIVATION_CODES[activation]),
                  gy.dtype.type(slope)))
        return out

    def act_bias_backward(self, gy, saved, activation, slope=0.01):
        if activation not in ACTIVATION_CODES or gy.ndim == 0 or gy.shape != saved.shape \
                or not fusable(gy, saved):
            return super().act_bias_backward(gy, saved, activation, slope)
        k, c = self.kernels, gy.shape[-1]
        rows = gy.size // c
        threads = _row_threads(c)
        grid_x = min(-(-c // threads), k.max_blocks)
        # blocks of at least 16 rows keep the partial sums small next to the gradient
        chunks = max(1, min(k.max_blocks // grid_x, -(-rows // 16), 65535))
        chunk_rows = -(-rows // chunks)
        chunks = -(-rows // chunk_rows)
        out = self.xp.empty_like(gy)
        partial = self.xp.empty((chunks, c), gy.dtype)
        k.launch("activation", "act_bias_backward", gy.dtype, (grid_x, chunks), (threads,),
                 (gy, saved, out, partial, np.int64(rows), np.int64(c),
                  np.int64(chunk_rows), np.int32(ACTIVATION_CODES[activation]),
                  gy.dtype.type(slope)))
        return out, partial.sum(axis=0)

    def cross_entropy_forward(self, x, t):
        if x.ndim != 2 or not fusable(x):
            return super().cross_entropy_forward(x, t)
        k, (n, c) = self.kernels, x.shape
        targets = self.xp.ascontiguousarray(t, dtype=self.xp.int64)
        stats, loss = self.xp.empty((n, 2), x.dtype), self.xp.empty(n, x.dtype)
        k.launch("softmax_xent", "xent_forward", x.dtype, (min(n, k.max_blocks),),
                 (_row_threads(c),), (x, targets, stats, loss, np.int64(n), np.int64(c)))
        return stats, loss.mean(dtype=x.dtype)

    def cross_entropy_backward(self, x, stats, t, scale):
        if x.ndim != 2 or not fusable(x, stats):
            return super().cross_entropy_backward(x, stats, t, scale)
        k, (n, c) = self.kernels, x.shape
        targets = self.xp.ascontiguousarray(t, dtype=self.xp.int64)
        scale = self.xp.asarray(scale, dtype=x.dtype)  # stays on the device: no sync
        g = self.xp.empty_like(x)
        k.launch("softmax_xent", "xent_backward", x.dtype, (min(n, k.max_blocks),),
                 (_row_threads(c),), (x, stats, targets, scale, g, np.int64(n),
                                      np.int64(c)))
        return g

    def mse_backward(self, x, t, scale):
        if x.shape != t.shape or not fusable(x, t):
            return super().mse_backward(x, t, scale)
        k = self.kernels
        scale = self.xp.asarray(scale, dtype=x.dtype)
        g = self.xp.empty_like(x)
        k.launch("mse", "mse_backward", x.dtype, (k.blocks(x.size),), (THREADS,),
                 (x, t, scale, g, np.int64(x.size)))
        return g

    def sgd_step(self, p, g, buf, lr, momentum, dampening, nesterov, weight_decay):
        kbuf = self.sgd_kernel_buffer(p, g, buf, momentum, fusable)
        if kbuf is None:
            return super().sgd_step(p, g, buf, lr, momentum, dampening, nesterov,
                                    weight_decay)
        k, t = self.kernels, p.dtype.type
        k.launch("optim", "sgd_step", p.dtype, (k.blocks(p.size),), (THREADS,),
                 (p, g, kbuf, np.int64(p.size), t(lr), t(momentum), t(1 - dampening),
                  np.int32(bool(nesterov)), t(weight_decay)))

    def adam_step(self, p, g, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled):
        if any(a.shape != p.shape for a in (g, m, v)) or not fusable(p, g, m, v):
            return super().adam_step(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay,
                                     decoupled)
        k = self.kernels
        k.launch("optim", "adam_step", p.dtype, (k.blocks(p.size),), (THREADS,),
                 (p, g, m, v, np.int64(p.size)) + adam_scalars(
                     p.dtype, step, lr, beta1, beta2, eps, weight_decay, decoupled))
