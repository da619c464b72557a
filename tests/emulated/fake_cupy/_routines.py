"""The functions of the ``cupy`` namespace: array creation, ``copyto``, ``matmul``, the ufuncs
(one per real CuPy ufunc that NumPy also has, with CuPy's type table) and NumPy's routines
for the names CuPy offers too, each run on the current device with CuPy's argument rules.
"""
import numpy as np

from . import _device, _libraries, _memory
from ._names import NAMES
from ._ndarray import call, check_device, from_host, ndarray, new_array
from ._ufunc import ufunc


def _make_ufuncs():
    made = {}
    for dotted, info in NAMES["ufuncs"].items():
        module, name = dotted.rsplit(".", 1)
        impl = getattr(np, name, None)
        if module == "cupy" and isinstance(impl, np.ufunc):
            made[name] = ufunc(name, impl, info["nin"], info["nout"], info["types"])
    return made


globals().update(_make_ufuncs())
divide = true_divide  # noqa: F821  (made above)


# --- creating arrays ---------------------------------------------------------------------
def empty(shape, dtype=float, order="C"):
    return new_array(shape, dtype)


def _filled(shape, dtype, value):
    out = new_array(shape, dtype)
    out.fill(value)
    return out


def zeros(shape, dtype=float, order="C"):
    return _filled(shape, dtype, 0)


def ones(shape, dtype=float, order="C"):
    return _filled(shape, dtype, 1)


def full(shape, fill_value, dtype=None, order="C"):
    if dtype is None:
        dtype = fill_value.dtype if isinstance(fill_value, ndarray) else \
            np.asarray(fill_value).dtype
    out = new_array(shape, dtype)
    copyto(out, fill_value, casting="unsafe")
    return out


def _like(a, dtype, shape):
    if not isinstance(a, ndarray):
        raise TypeError(f"Unsupported type {type(a)}")
    return (a.shape if shape is None else shape), (a.dtype if dtype is None else dtype)


def empty_like(a, dtype=None, order="K", subok=None, shape=None):
    return empty(*_like(a, dtype, shape))


def zeros_like(a, dtype=None, order="K", subok=None, shape=None):
    return zeros(*_like(a, dtype, shape))


def ones_like(a, dtype=None, order="K", subok=None, shape=None):
    return ones(*_like(a, dtype, shape))


def full_like(a, fill_value, dtype=None, order="K", subok=None, shape=None):
    shape, dtype = _like(a, dtype, shape)
    return full(shape, fill_value, dtype)


def arange(start, stop=None, step=1, dtype=None):
    return call(np.arange, (start, stop, step), {"dtype": dtype}, "arange")


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    """Host data (NumPy arrays, sequences, scalars) copied to the current device; a device
    array copied (to the current device, from any)."""
    if isinstance(obj, ndarray):
        out = obj if obj.data.device_id == _device.get_device_id() else obj.copy()
        out = out.astype(out.dtype if dtype is None else dtype, copy=copy and out is obj)
    else:
        out = from_host(obj, dtype)
    while out.ndim < ndmin:
        out = out.reshape((1,) + out.shape)
    return out


def asarray(a, dtype=None, order=None, *, blocking=False):
    return array(a, dtype, copy=False, order=order, blocking=blocking)


asanyarray = asarray


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise TypeError(f"Argument 'a' has incorrect type (expected cupy._core.core."
                        f"_ndarray_base, got {type(a).__name__})")
    if a.flags.c_contiguous and (dtype is None or np.dtype(dtype) == a.dtype):
        return a
    check_device(a)
    out = new_array(a.shape, a.dtype if dtype is None else dtype)
    src, dst = a._a, out._a
    _device.run(lambda: np.copyto(dst, src, casting="unsafe"))
    return out


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out, blocking=blocking)
    return np.asarray(a, order=order)


def copy(a, order="K"):
    return a.copy()


def get_array_module(*args):
    import sys
    return sys.modules[__name__.rsplit(".", 1)[0]] if any(
        isinstance(a, ndarray) for a in args) else np


# --- copies ---------------------------------------------------------------------------------
def copyto(dst, src, casting="same_kind", where=None):
    """``cupy.copyto``, as CuPy 14's: Python and NumPy scalars and one-element NumPy
    arrays may be the source, other NumPy arrays may not (ValueError); arrays of another
    device are copied when a plain memcpy can do it."""
    if not isinstance(dst, ndarray):
        raise TypeError(f"Unsupported type {type(dst)}")
    scalar = False
    if type(src) in (bool, int, float, complex):
        np.copyto(np.empty((), dst.dtype), src, casting=casting)  # NumPy's cast check
        scalar = True
    elif isinstance(src, np.ndarray):
        if src.size != 1:
            raise ValueError("non-scalar numpy.ndarray cannot be used for copyto")
        if not np.can_cast(src, dst.dtype, casting):
            raise TypeError(f"Cannot cast {src.dtype} to {dst.dtype} in {casting} casting "
                            "mode")
        src, scalar = src.squeeze()[()], True
    elif np.isscalar(src):
        if not np.can_cast(src, dst.dtype, casting):
            raise TypeError(f"Cannot cast {src} to {dst.dtype} in {casting} casting mode")
        scalar = True
    elif not isinstance(src, ndarray):
        raise TypeError(f"Unsupported type {type(src)}")
    elif not np.can_cast(src.dtype, dst.dtype, casting):
        raise TypeError(f"Cannot cast {src.dtype} to {dst.dtype} in {casting} casting mode")
    if not scalar:
        try:
            np.broadcast_shapes(src.shape, dst.shape)
            ok = np.broadcast_shapes(src.shape, dst.shape) == dst.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"could not broadcast input array from shape {src.shape} into "
                             f"shape {dst.shape}")
    mask = None
    if where is not None:
        if not isinstance(where, ndarray):
            raise TypeError(f"Unsupported type {type(where)}")
        check_device(where)
        mask = where._a
    view = dst._a
    if scalar:
        check_device(dst)
        _device.run(lambda: np.copyto(view, src, casting="unsafe",
                                      where=True if mask is None else mask))
        return
    memcpy = (src._a.flags.c_contiguous and view.flags.c_contiguous and
              src.dtype == dst.dtype and src.size == dst.size and mask is None)
    if not memcpy:
        if src.data.device_id != dst.data.device_id:
            with dst.device:
                src = src.copy()
        with dst.device:
            check_device(src)
    source = src._a
    _device.run(lambda: np.copyto(view, source, casting="unsafe",
                                  where=True if mask is None else mask))


def matmul(a, b, out=None, **kwargs):
    _libraries.load("cublas")
    for x in (a, b):
        if not isinstance(x, ndarray):
            raise TypeError(f"Unsupported type {type(x)}")
    return call(np.matmul, (a, b), {"out": out, **kwargs}, "matmul")


# --- the rest: NumPy's routine, CuPy's conventions ----------------------------------------
_ROUTINES = ("all", "amax", "amin", "any", "argmax", "argmin", "argsort", "around",
             "atleast_1d", "atleast_2d", "atleast_3d", "broadcast_arrays", "broadcast_to",
             "clip", "concatenate", "count_nonzero", "cumprod", "cumsum", "diag", "diagonal",
             "dot", "einsum", "expand_dims", "eye", "flip", "hstack", "identity", "inner",
             "linspace", "max", "mean", "min", "moveaxis", "outer", "pad", "prod", "ravel",
             "repeat", "reshape", "roll", "round", "sort", "split", "squeeze", "stack", "std",
             "sum", "swapaxes", "take", "take_along_axis", "tensordot", "tile", "trace",
             "transpose", "tril", "triu", "var", "vstack", "where")
_SYNCING = ("nonzero", "unique", "argwhere", "flatnonzero", "compress")  # read sizes on host
# functions of dtypes and shapes only: NumPy's, with arrays replaced by their dtype
_TYPE_LEVEL = ("can_cast", "result_type", "promote_types", "min_scalar_type", "common_type")


def _routine(name, syncs):
    fn = getattr(np, name)

    def routine(*args, **kwargs):
        if syncs:
            _device.host_sync(f"cupy.{name} (its result's size depends on the data)")
        if name == "where" and len(args) == 1:
            _device.host_sync("cupy.where with one argument")
        return call(fn, args, kwargs, name)
    routine.__name__ = name
    return routine


def _type_level(name):
    fn = getattr(np, name)

    def routine(*args, **kwargs):
        return fn(*[a.dtype if isinstance(a, ndarray) else a for a in args], **kwargs)
    routine.__name__ = name
    return routine


for _name in _ROUTINES + _SYNCING:
    if _name in NAMES["modules"]["cupy"] and _name not in globals():
        globals()[_name] = _routine(_name, _name in _SYNCING)
for _name in _TYPE_LEVEL:
    if _name in NAMES["modules"]["cupy"]:
        globals()[_name] = _type_level(_name)


def isscalar(x):
    return np.isscalar(x)


def ndim(a):
    return a.ndim if isinstance(a, ndarray) else np.ndim(a)


def shape(a):
    return a.shape if isinstance(a, ndarray) else np.shape(a)


def size(a, axis=None):
    return (a.size if axis is None else a.shape[axis]) if isinstance(a, ndarray) else \
        np.size(a, axis)


get_default_memory_pool = _memory.get_default_memory_pool
