"""CUDA backend: CuPy arrays, with gpuad's fused kernels from ``kernels/``.

Imported only when a cuda device is asked for, so CPU installs never need CuPy.
"""
import functools
import inspect
import math
import threading

import numpy as np

from .. import random_state
from ..dtypes import float16, float32
from .base import Backend, float16_uniform
from .cuda_kernels import CUDAKernels


#: how to get CuPy and the CUDA libraries it loads, named by every error below
INSTALL = ("install gpuad with the extra that matches your driver's CUDA version, "
           "`pip install gpuad[cuda12]` or `pip install gpuad[cuda13]`: it brings CuPy with "
           "its [ctk] libraries (cuBLAS, cuRAND, NVRTC and the CUDA headers)")
#: the libraries gpuad needs, each loaded the way CuPy loads it on first use
_LIBRARIES = (("cuRAND", "random numbers", lambda cupy: cupy.cuda.curand),
              ("cuBLAS", "matmul", lambda cupy: cupy.cuda.cublas),
              ("NVRTC", "every kernel", lambda cupy: cupy.cuda.nvrtc.getVersion()))


def _import_cupy():
    try:
        import cupy
    except ModuleNotFoundError as e:
        if e.name != "cupy":
            raise RuntimeError(f"CUDA was requested but CuPy failed to import ({e}): "
                               f"{INSTALL}") from None
        raise RuntimeError(f"CUDA was requested but CuPy is not installed: {INSTALL}") \
            from None
    except ImportError as e:
        raise RuntimeError(f"CUDA was requested but CuPy failed to import ({e}): "
                           f"{INSTALL}") from None
    return cupy


def missing_library(error):
    """Whether ``error`` says a CUDA library could not be found or loaded (CuPy raises
    ImportError, or cuda-pathfinder's DynamicLibNotFoundError, a RuntimeError)."""
    return isinstance(error, (ImportError, OSError)) or any(
        c.__name__ == "DynamicLibNotFoundError" for c in type(error).__mro__)


def library_error(name, use, error):
    """gpuad's RuntimeError for CUDA library ``name`` (needed for ``use``) not loading."""
    return RuntimeError(f"CUDA was requested but CuPy could not load {name}, which gpuad "
                        f"needs for {use} ({type(error).__name__}: {error}): {INSTALL}")


def usable_cupy(index):
    """CuPy, once GPU ``index`` exists and every CUDA library gpuad needs loads; else the
    RuntimeError saying what is missing and how to install it (nothing is set up)."""
    cupy = _import_cupy()
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CuPy raises its own CUDARuntimeError without a GPU/driver
        raise RuntimeError(f"CUDA was requested but no usable GPU was found ({e}); "
                           "use device='cpu'") from None
    if index >= count:
        raise RuntimeError(f"cuda:{index} was requested but this machine has {count} CUDA "
                           f"device(s): cuda:0 to cuda:{count - 1}")
    for name, use, load in _LIBRARIES:
        try:
            load(cupy)
        except Exception as e:  # noqa: BLE001  (any failure to load is this error)
            raise library_error(name, use, e) from None
    return cupy


#: Backend methods that only read host state or switch devices themselves (CuPy's
#: ``get`` and ``Device.synchronize`` do); every other one queues work or allocates.
_HOST_METHODS = {"is_array", "to_host", "is_view", "synchronize", "get_rng_state",
                 "set_rng_state"}


def _in_device(method):
    @functools.wraps(method)
    def in_device(self, *args, **kwargs):
        with self.device_scope:
            return method(self, *args, **kwargs)
    return in_device


def _methods_in_device(cls):
    """CuPy allocates and launches on its current device: each method of the backend's
    surface (``Backend``), a new one included, runs with the backend's GPU current."""
    for name in dir(Backend):
        if not name.startswith("_") and name not in _HOST_METHODS and \
                inspect.isfunction(inspect.getattr_static(Backend, name)):
            setattr(cls, name, _in_device(getattr(cls, name)))
    return cls


@_methods_in_device
class CUDABackend(CUDAKernels, Backend):
    """Runs ops on CuPy arrays on one GPU; fused ops by gpuad's kernels (``CUDAKernels``)."""

    name = "cuda"

    def __init__(self, dev):
        cupy = usable_cupy(dev.index)
        self.device = dev
        self.xp = cupy
        self.device_scope = cupy.cuda.Device(dev.index)
        #: held from setting the generator's offset to the end of the draw: two threads
        #: drawing at once must not both start at one offset (the same numbers twice)
        self._rng_lock = threading.RLock()
        self.seed(random_state.initial_seed())
        from ..memory import cuda_pool
        self.pool = cuda_pool.install(dev.index)  # every CuPy array now comes from gpuad's pool

    def empty(self, shape, dtype):
        """An uninitialised array (from the memory pool, as every CuPy array)."""
        return self.xp.empty(shape, dtype)

    # --- moving data -------------------------------------------------------------
    def is_array(self, obj):
        return isinstance(obj, self.xp.ndarray)

    def asarray(self, data, dtype=None):
        if not isinstance(data, self.xp.ndarray) and \
                self.xp.cuda.get_current_stream().is_capturing() and np.ndim(data):
            # CuPy copies host data through a pinned staging buffer it reuses once the copy
            # is done: a graph would copy whatever the buffer holds at each replay
            raise RuntimeError("a host-to-device copy (.to('cuda'), or a tensor made from "
                               "host data) cannot be captured in a CUDA graph")
        return self.xp.asarray(data, dtype=dtype)

    def to_host(self, arr):
        return arr.get()

    def synchronize(self):
        self.device_scope.synchronize()

    # --- random numbers ------------------------------------------------------------
    # A counter-based (Philox) cuRAND generator, set to an explicit offset before each
    # draw: its whole state is (seed, offset), which get/set_rng_state copy exactly.
    def seed(self, seed):
        with self._rng_lock:
            self.rng = self.xp.random.RandomState(
                seed, method=self.xp.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)
            self._seed, self._offset = seed, 0

    def get_rng_state(self):
        """``(seed, offset)``: where the next draw starts."""
        with self._rng_lock:
            return self._seed, self._offset

    def set_rng_state(self, state):
        if not (isinstance(state, tuple) and len(state) == 2
                and all(isinstance(v, int) and v >= 0 for v in state)):
            raise TypeError("set_rng_state takes the (seed, offset) pair that "
                            f"get_rng_state() returned on a cuda device, got {state!r}")
        with self._rng_lock:
            if state[0] != self._seed:
                self.seed(state[0])
            self._offset = state[1]

    def _generator_for(self, shape):
        n = math.prod(shape)
        # absolute offset (cuRAND's API); skipping 4 per value, the most any draw takes
        # (a double normal), keeps successive draws disjoint
        self.xp.cuda.curand.setGeneratorOffset(self.rng._generator, self._offset)
        self._offset += 4 * n
        return self.rng

    def rand(self, shape, dtype):
        with self._rng_lock:
            if dtype == float16:  # cuRAND draws float32 and float64 only
                return float16_uniform(
                    self.xp, self._generator_for(shape).random_sample(shape, dtype=float32))
            return self._generator_for(shape).random_sample(shape, dtype=dtype)

    def randn(self, shape, dtype):
        with self._rng_lock:
            if dtype == float16:
                return self._generator_for(shape).standard_normal(
                    shape, dtype=float32).astype(float16)
            return self._generator_for(shape).standard_normal(shape, dtype=dtype)

    def random_words(self, n):
        """``n`` raw 32-bit words of the Philox stream from the current offset (what the
        exact ``Backend.randint`` draws from); the offset moves past them."""
        curand = self.xp.cuda.curand
        with self._rng_lock:
            out = self.xp.empty(n, self.xp.uint32)
            curand.setGeneratorOffset(self.rng._generator, self._offset)
            if n:
                curand.generate(self.rng._generator, out.data.ptr, n)
            self._offset += 4 * -(-n // 4)  # whole Philox blocks of 4 words, as the others
        return out

    # --- what CuPy does differently ------------------------------------------------
    def scatter_add(self, target, index, values):
        self.xp.add.at(target, index, values)  # cupyx.scatter_add is deprecated in CuPy 14

    def erf_float(self, x):
        import cupyx.scipy.special
        return cupyx.scipy.special.erf(x)

    @property
    def checks_class_indices(self):
        from ..cuda import class_index_checks  # gpuad.cuda, the switch's home
        return class_index_checks()

    def check_class_indices(self, targets, classes, op):
        """Only with ``gpuad.cuda.set_class_index_checks(True)``: reading the range back
        waits for the device at every loss. Unchecked, an out-of-range target gives NaN
        (``Backend.class_row_scale``)."""
        if not self.checks_class_indices:
            return
        if self.xp.cuda.get_current_stream().is_capturing():
            raise RuntimeError(f"{op}: the class-index check (gpuad.cuda."
                               "set_class_index_checks) reads the targets on the host, which "
                               "a CUDA graph cannot; the step is replayed without graphs")
        super().check_class_indices(targets, classes, op)
