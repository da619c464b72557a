"""Making tensors: ``tensor``, ``zeros``, ``ones``, ``full``, ``arange``, ``rand``, ``randn``..."""
import numpy as np

from . import dtypes, tracing
from .backends import backend_for
from .device import as_device
from .tensor import Tensor


def as_array(data, dtype=None, device=None):
    """``data`` (numbers, nested lists, NumPy/CuPy arrays, Tensors) as an array and its
    backend, with PyTorch's dtype inference."""
    if isinstance(data, Tensor):
        backend = data._backend if device is None else backend_for(as_device(device))
        return _copy(backend, data._data, dtype and dtypes.as_dtype(dtype)), backend
    backend = backend_for(as_device(device))
    is_array = hasattr(data, "__array_interface__") or hasattr(data, "__cuda_array_interface__")
    if is_array:
        if dtype is None:
            inferred = data.dtype
            if np.dtype(inferred) not in (dtypes.float16, dtypes.float32, dtypes.float64,
                                          dtypes.int32, dtypes.int64, dtypes.bool_):
                raise TypeError(f"arrays of dtype {inferred} are not supported; pass dtype= "
                                "(e.g. gpuad.float32 or gpuad.int64) to convert")
        return _copy(backend, data, dtype and dtypes.as_dtype(dtype)), backend
    try:
        host = np.array(data)
    except ValueError as e:
        raise ValueError(f"cannot make a tensor from ragged nested sequences: {e}") from None
    if host.dtype == object:
        if any(isinstance(v, Tensor) for v in np.ravel(host)):
            raise TypeError("cannot make a tensor from a list of Tensors; use gpuad.stack")
        raise TypeError(f"cannot make a tensor from {type(data).__name__}; give numbers, "
                        "nested lists of numbers, or an array")
    if dtype is not None:
        target = dtypes.as_dtype(dtype)
    elif host.dtype.kind == "f" or host.dtype.kind == "c":
        if host.dtype.kind == "c":
            raise TypeError("complex numbers are not supported")
        target = dtypes.get_default_dtype()
    elif host.dtype.kind in "iu":
        target = dtypes.int64
    elif host.dtype.kind == "b":
        target = dtypes.bool_
    else:
        raise TypeError(f"cannot make a tensor from data of type {host.dtype}")
    return _from_python(backend, data, target), backend


# the array makers, as functions of their arguments: gpuad.compile records each call
# (the Python data, the source array) and makes a fresh array at each replay
@tracing.traced
def _copy(backend, src, dtype):
    arr = backend.asarray(src)
    return arr.astype(arr.dtype if dtype is None else dtype, copy=True)


@tracing.traced
def _from_python(backend, data, dtype):
    return backend.asarray(np.array(data), dtype=dtype)


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A tensor holding a copy of ``data``.

    Python floats give ``float32`` (the default dtype), ints ``int64``, bools ``bool``;
    arrays keep their dtype.

    >>> gpuad.tensor([[1., 2.], [3., 4.]], requires_grad=True)
    """
    arr, backend = as_array(data, dtype, device)
    return Tensor._make(arr, backend).requires_grad_(requires_grad)


def _size(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"sizes must be non-negative ints, got {size}")
    return tuple(int(s) for s in size)


def _filled(make, size, dtype, device, requires_grad, *args):
    backend = backend_for(as_device(device))
    dtype = dtypes.get_default_dtype() if dtype is None else dtypes.as_dtype(dtype)
    arr = make(backend, _size(size), dtype, *args)
    return Tensor._make(arr, backend).requires_grad_(requires_grad)


# what the factories run, by name: gpuad.compile records each call and makes a fresh
# array at each replay
@tracing.traced
def _zeros(backend, size, dtype):
    return backend.xp.zeros(size, dtype)


@tracing.traced
def _ones(backend, size, dtype):
    return backend.xp.ones(size, dtype)


@tracing.traced
def _empty(backend, size, dtype):
    return backend.xp.empty(size, dtype)


@tracing.traced
def _full(backend, size, dtype, value):
    return backend.xp.full(size, value, dtype)


@tracing.traced(draws_random=True)
def _rand(backend, size, dtype):
    return backend.rand(size, _float(dtype, "rand"))


@tracing.traced(draws_random=True)
def _randn(backend, size, dtype):
    return backend.randn(size, _float(dtype, "randn"))


@tracing.traced(draws_random=True)
def _randint(backend, size, dtype, low, high):
    return backend.randint(low, high, size).astype(dtype, copy=False)


@tracing.traced(draws_random=True)
def _randperm(backend, size, dtype):
    return backend.xp.argsort(backend.rand(size, dtypes.float64))


@tracing.traced
def _arange(backend, size, dtype, start, end, step):
    return backend.xp.arange(start, end, step, dtype=dtype)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of zeros: ``gpuad.zeros(2, 3)`` or ``gpuad.zeros((2, 3))``."""
    return _filled(_zeros, size, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of ones."""
    return _filled(_ones, size, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    """A tensor whose values are not set."""
    return _filled(_empty, size, dtype, device, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False):
    """Uniform samples in [0, 1), from the generator seeded by ``manual_seed``."""
    return _filled(_rand, size, dtype, device, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False):
    """Standard normal samples, from the generator seeded by ``manual_seed``."""
    return _filled(_randn, size, dtype, device, requires_grad)


def randint(low, high=None, size=(), dtype=None, device=None):
    """Integers uniform in ``[low, high)``, drawn exactly: ``randint(high, size)`` or
    ``randint(low, high, size)`` as in PyTorch; int64 unless ``dtype`` says otherwise."""
    if isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    for name, v in (("low", low), ("high", high)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"randint: {name} must be an int, got {v!r}")
    low, high = int(low), int(high)
    if low >= high:
        raise ValueError(f"randint: low ({low}) must be less than high ({high}): the range "
                         "[low, high) is empty")
    dtype = dtypes.int64 if dtype is None else dtypes.as_dtype(dtype)
    lo, hi = _INT_RANGE.get(dtype, _INT_RANGE[dtypes.int64])
    if low < lo or high - 1 > hi:
        raise ValueError(f"randint: [{low}, {high}) does not fit {dtypes.name(dtype)} "
                         f"(from {lo} to {hi})")
    return _filled(_randint, size, dtype, device, False, low, high)


#: The integers each dtype holds (floats take int64's draws and round them).
_INT_RANGE = {dtypes.bool_: (0, 1), dtypes.int32: (-2 ** 31, 2 ** 31 - 1),
              dtypes.int64: (-2 ** 63, 2 ** 63 - 1)}


def randperm(n, device=None):
    """A random permutation of 0..n-1 (int64)."""
    return _filled(_randperm, (n,), dtypes.int64, device, False)


def _float(dtype, op):
    if not dtypes.is_floating(dtype):
        raise TypeError(f"{op} makes floating tensors; dtype {dtypes.name(dtype)} is not one")
    return dtype


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """A tensor of ``size`` filled with ``fill_value`` (its dtype inferred from the value)."""
    if dtype is None:
        dtype = dtypes.result_type(fill_value)
    return _filled(_full, (size,) if isinstance(size, int) else tuple(size), dtype, device,
                   requires_grad, fill_value)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """Values from ``start`` up to (not including) ``end``: ints give int64, floats float32."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must not be zero")
    if dtype is None:
        dtype = dtypes.result_type(start, end, step)
    return _filled(_arange, (), dtype, device, requires_grad, start, end, step)


def _like(fn, x, dtype, device, requires_grad, *args):
    return fn(*args, *x.shape, dtype=x.dtype if dtype is None else dtype,
              device=x.device if device is None else device, requires_grad=requires_grad)


def zeros_like(x, dtype=None, device=None, requires_grad=False):
    return _like(zeros, x, dtype, device, requires_grad)


def ones_like(x, dtype=None, device=None, requires_grad=False):
    return _like(ones, x, dtype, device, requires_grad)


def empty_like(x, dtype=None, device=None, requires_grad=False):
    return _like(empty, x, dtype, device, requires_grad)


def rand_like(x, dtype=None, device=None, requires_grad=False):
    return _like(rand, x, dtype, device, requires_grad)


def randn_like(x, dtype=None, device=None, requires_grad=False):
    return _like(randn, x, dtype, device, requires_grad)


def full_like(x, fill_value, dtype=None, device=None, requires_grad=False):
    return full(x.shape, fill_value, dtype=x.dtype if dtype is None else dtype,
                device=x.device if device is None else device, requires_grad=requires_grad)


def from_numpy(arr):
    """A tensor sharing memory with a NumPy array (CPU)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(arr).__name__}")
    dtypes.as_dtype(arr.dtype)
    return Tensor._make(arr, backend_for("cpu"))
