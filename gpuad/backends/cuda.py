"""CUDA backend: CuPy arrays, with gpuad's fused kernels from ``kernels/``.

Imported only when a cuda device is asked for, so CPU installs never need CuPy.
"""
from .. import random_state
from .base import Backend


def _import_cupy():
    try:
        import cupy
    except ImportError as e:
        raise RuntimeError(
            "CUDA was requested but CuPy is not installed: install gpuad with the extra that "
            "matches your CUDA toolkit, `pip install gpuad[cuda12]` or "
            f"`pip install gpuad[cuda13]` ({e})") from None
    return cupy


class CUDABackend(Backend):
    """Runs ops on CuPy arrays on one GPU."""

    name = "cuda"

    def __init__(self, dev):
        cupy = _import_cupy()
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # CuPy raises its own CUDARuntimeError without a GPU/driver
            raise RuntimeError(f"CUDA was requested but no usable GPU was found ({e}); "
                               "use device='cpu'") from None
        if dev.index >= count:
            raise RuntimeError(f"{dev} was requested but this machine has {count} CUDA "
                               f"device(s): cuda:0 to cuda:{count - 1}")
        self.device = dev
        self.xp = cupy
        self._cuda_device = cupy.cuda.Device(dev.index)
        with self._cuda_device:
            self.rng = cupy.random.RandomState(random_state.initial_seed())

    # --- moving data -------------------------------------------------------------
    def is_array(self, obj):
        return isinstance(obj, self.xp.ndarray)

    def asarray(self, data, dtype=None):
        with self._cuda_device:
            return self.xp.asarray(data, dtype=dtype)

    def to_host(self, arr):
        return arr.get()

    def synchronize(self):
        self._cuda_device.synchronize()

    # --- random numbers ------------------------------------------------------------
    def seed(self, seed):
        with self._cuda_device:
            self.rng = self.xp.random.RandomState(seed)

    def get_rng_state(self):
        return self.rng

    def set_rng_state(self, state):
        self.rng = state

    def rand(self, shape, dtype):
        with self._cuda_device:
            return self.rng.random_sample(shape, dtype=dtype)

    def randn(self, shape, dtype):
        with self._cuda_device:
            return self.rng.standard_normal(shape, dtype=dtype)

    # --- what CuPy does differently ------------------------------------------------
    def scatter_add(self, target, index, values):
        import cupyx
        cupyx.scatter_add(target, index, values)

    def erf(self, x):
        import cupyx.scipy.special
        return cupyx.scipy.special.erf(x)
