"""CPU backend: NumPy arrays, with Numba twins of the fused kernels."""
import numpy as np

from .. import random_state
from ..dtypes import float16, float32
from . import cpu_blas
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

    def matmul(self, a, b):
        """``a @ b`` by ``cpu_blas`` (NumPy, or MKL on request); a 2-D result's array from
        the memory pool when it is on."""
        return cpu_blas.matmul(a, b, self.pool.empty if self.pool.caching else np.empty)

    # --- moving data -------------------------------------------------------------
    def is_array(self, obj):
        return isinstance(obj, np.ndarray)

    def is_view(self, arr):
        """A view of another array; an array alone on a pool block is none."""
        return isinstance(arr.base, np.ndarray) and not self.pool.sole_view(arr)

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

    def erf_float(self, x):
        return _twin("special").erf(x)
