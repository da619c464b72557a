"""CPU backend: NumPy arrays, with Numba twins of the fused kernels."""
import os

# Numba's OpenMP workers spin after each parallel kernel by default, holding the cores that
# OpenBLAS needs for the matmul right after (a 784-256-256-10 training step ran 8x slower on
# 2 cores). Waiting passively hands the cores back. It must be set before Numba starts its
# thread pool, and a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

from .. import random_state
from ..dtypes import float16, float32
from .base import Backend, float16_uniform
from .cpu_kernels import CPUKernels, _twin


class CPUBackend(CPUKernels, Backend):
    """Runs ops on NumPy arrays; fused ops by the Numba twins (``CPUKernels``)."""

    xp = np
    name = "cpu"

    def __init__(self, dev):
        from ..memory.cpu_pool import CPUPool  # here: gpuad.memory imports the backends
        self.device = dev
        self.rng = np.random.default_rng(random_state.initial_seed())
        self.pool = CPUPool(dev)

    def empty(self, shape, dtype):
        """An uninitialised array; large ones from the memory pool when it is on."""
        return self.pool.empty(shape, dtype)

    # --- moving data -------------------------------------------------------------
    def is_array(self, obj):
        return isinstance(obj, np.ndarray)

    def asarray(self, data, dtype=None):
        """Host or device data as an array of this backend (copied when it must be)."""
        if hasattr(data, "__cuda_array_interface__"):
            data = data.get()
        return np.asarray(data, dtype=dtype)

    def to_host(self, arr):
        return arr

    def synchronize(self):
        pass

    # --- random numbers ------------------------------------------------------------
    def seed(self, seed):
        self.rng = np.random.default_rng(seed)

    def get_rng_state(self):
        return self.rng.bit_generator.state

    def set_rng_state(self, state):
        self.rng.bit_generator.state = state

    def rand(self, shape, dtype):
        if dtype == float16:  # NumPy draws float32 and float64 only
            return float16_uniform(np, self.rng.random(shape, dtype=float32))
        return self.rng.random(shape, dtype=dtype)

    def randn(self, shape, dtype):
        if dtype == float16:
            return self.rng.standard_normal(shape, dtype=float32).astype(float16)
        return self.rng.standard_normal(shape, dtype=dtype)

    def randint(self, low, high, shape):
        """int64 integers uniform in ``[low, high)``: NumPy's exact integer generator."""
        return self.rng.integers(low, high, size=shape, dtype=np.int64)

    def random_words(self, n):
        """``n`` raw 32-bit words from the generator (what ``Backend.randint`` takes)."""
        return self.rng.integers(0, 1 << 32, size=n, dtype=np.uint32)

    # --- what NumPy lacks or does differently ----------------------------------------
    def scatter_add(self, target, index, values):
        """``target[index] += values`` with repeated indices accumulated."""
        np.add.at(target, index, values)

    def erf(self, x):
        return _twin("special").erf(x)
