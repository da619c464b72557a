"""CPU backend: NumPy arrays, with Numba twins of the fused kernels."""
import numpy as np

from .. import random_state
from .base import Backend


class CPUBackend(Backend):
    """Runs ops on NumPy arrays."""

    xp = np
    name = "cpu"

    def __init__(self, dev):
        self.device = dev
        self.rng = np.random.default_rng(random_state.initial_seed())

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
        return self.rng.random(shape, dtype=dtype)

    def randn(self, shape, dtype):
        return self.rng.standard_normal(shape, dtype=dtype)

    # --- what NumPy lacks or does differently ----------------------------------------
    def scatter_add(self, target, index, values):
        """``target[index] += values`` with repeated indices accumulated."""
        np.add.at(target, index, values)

    def erf(self, x):
        from ..kernels_loader import load
        return load("special").erf(x)
