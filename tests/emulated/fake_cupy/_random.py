"""cuRAND's host API (``cupy.cuda.curand``) and ``cupy.random.RandomState`` over it.

A generator's output is a counter-based function of (seed, offset): the same seed and
offset give the same numbers, ``setGeneratorOffset`` moves to an absolute position, and
each draw advances the offset by the 32-bit words it used (one per float, two per
double; normal draws come in pairs, as cuRAND's). The numbers themselves are not
cuRAND's Philox stream.
"""
import itertools

import numpy as np

from . import _device, _libraries
from ._names import NAMES
from ._ndarray import ndarray, new_array

CONSTANTS = NAMES["constants"]["cupy.cuda.curand"]
globals().update(CONSTANTS)

_handles = itertools.count(1)
_generators = {}  # handle -> {"seed", "offset", "method"}


def createGenerator(method):
    handle = next(_handles)
    _generators[handle] = {"seed": 0, "offset": 0, "method": method}
    return handle


def destroyGenerator(handle):
    _generators.pop(handle, None)


def _gen(handle):
    try:
        return _generators[handle]
    except KeyError:
        raise RuntimeError("CURAND_STATUS_NOT_INITIALIZED") from None


def setPseudoRandomGeneratorSeed(handle, seed):
    _gen(handle)["seed"] = int(seed)


def setGeneratorOffset(handle, offset):
    """The absolute position (in 32-bit words) where the next draw starts."""
    _gen(handle)["offset"] = int(offset)


def _words(seed, start, n):
    """n 32-bit words at positions start.. of the stream of ``seed`` (splitmix64)."""
    with np.errstate(over="ignore"):
        i = np.arange(start, start + n, dtype=np.uint64)
        z = (np.uint64(seed) * np.uint64(0xD1B54A32D192ED03) +
             (i + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(32)).astype(np.uint32)


def _uniform(seed, start, n, double):
    """cuRAND's uniforms: in (0, 1]."""
    if double:
        w = _words(seed, start, 2 * n).reshape(n, 2).astype(np.uint64)
        k = ((w[:, 0] << np.uint64(21)) ^ (w[:, 1] >> np.uint64(11))) & np.uint64((1 << 53) - 1)
        return (k.astype(np.float64) + 1) * 2.0 ** -53
    k = _words(seed, start, n) >> np.uint32(8)
    return ((k.astype(np.float64) + 1) * 2.0 ** -24).astype(np.float32)


def _generate(handle, ptr, n, make, words_per_value, dtype=None):
    from ._memory import host_view
    g = _gen(handle)
    seed, start = g["seed"], g["offset"]
    g["offset"] += words_per_value * n
    if dtype is None:
        dtype = np.float64 if words_per_value == 2 else np.float32
    out = host_view(ptr, (n,), dtype)
    _device.run(lambda: np.copyto(out, make(seed, start, n)))  # a capture bakes the offset


def generate(handle, ptr, n):
    """Raw 32-bit words (cuRAND's curandGenerate)."""
    _generate(handle, ptr, n, _words, 1, np.uint32)


def generateUniform(handle, ptr, n):
    _generate(handle, ptr, n, lambda s, o, k: _uniform(s, o, k, False), 1)


def generateUniformDouble(handle, ptr, n):
    _generate(handle, ptr, n, lambda s, o, k: _uniform(s, o, k, True), 2)


def _normal(double, mean, std):
    def make(seed, start, n):
        if n % 2:
            raise RuntimeError("CURAND_STATUS_LENGTH_NOT_MULTIPLE: normal draws come in "
                               "pairs")
        u = _uniform(seed, start, n, double).astype(np.float64).reshape(-1, 2)
        r, t = np.sqrt(-2 * np.log(u[:, 0])), 2 * np.pi * u[:, 1]
        z = np.stack([r * np.cos(t), r * np.sin(t)], axis=1).ravel() * std + mean
        return z.astype(np.float64 if double else np.float32)
    return make


def generateNormal(handle, ptr, n, mean, stddev):
    _generate(handle, ptr, n, _normal(False, mean, stddev), 1)


def generateNormalDouble(handle, ptr, n, mean, stddev):
    _generate(handle, ptr, n, _normal(True, mean, stddev), 2)


def _check_and_get_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype.char not in ("f", "d"):
        raise TypeError("cupy.random only supports float32 and float64")
    return dtype


class RandomState:
    """``cupy.random.RandomState`` as CuPy 14 writes it, on the emulated cuRAND."""

    def __init__(self, seed=None, method=None):
        _libraries.load("curand")
        self._generator = createGenerator(CURAND_RNG_PSEUDO_DEFAULT if method is None  # noqa: F821
                                          else method)
        self.method = method
        self._device_id = _device.get_device_id()
        self.seed(seed)

    def seed(self, seed=None):
        if seed is None:
            seed = int.from_bytes(np.random.default_rng().bytes(8), "little")
        else:
            arr = np.asarray(seed)
            if arr.dtype.kind not in "biu":
                raise TypeError("Seed must be an integer.")
            seed = int(arr)
            if seed < 0 or seed >= 2 ** 64:
                raise ValueError("Seed must be an integer between 0 and 2**64 - 1")
        setPseudoRandomGeneratorSeed(self._generator, seed)
        setGeneratorOffset(self._generator, 0)
        self._rk_seed = seed

    def random_sample(self, size=None, dtype=float):
        dtype = _check_and_get_dtype(dtype)
        out = new_array(() if size is None else size, dtype)
        fn = generateUniform if dtype.char == "f" else generateUniformDouble
        fn(self._generator, out.data.ptr, out.size)
        view = out._a
        _device.run(lambda: np.copyto(view, 0, where=view == 1))  # CuPy's mod-1 kernel
        return out

    def rand(self, *size, dtype=float):
        return self.random_sample(size, dtype)

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=float):
        dtype = _check_and_get_dtype(dtype)
        if isinstance(loc, ndarray) or isinstance(scale, ndarray):
            raise NotImplementedError("emulated RandomState.normal takes scalar loc, scale")
        size = () if size is None else (size,) if isinstance(size, int) else tuple(size)
        n = int(np.prod(size, dtype=np.int64))
        fn = generateNormal if dtype.char == "f" else generateNormalDouble
        out = new_array((n + n % 2,), dtype)
        fn(self._generator, out.data.ptr, out.size, loc, scale)
        return out[:n].reshape(size)

    def standard_normal(self, size=None, dtype=float):
        return self.normal(size=size, dtype=dtype)

    def randn(self, *size, dtype=float):
        return self.normal(size=size, dtype=dtype)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
        return self.random_sample(size, dtype) * (high - low) + low
