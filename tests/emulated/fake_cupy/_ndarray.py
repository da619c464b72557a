"""``cupy.ndarray`` over emulated device memory, and the plumbing that runs NumPy on it.

An array is a NumPy view of device memory (``_a``) plus the ``MemoryPointer`` that keeps
that memory alive (``data``), allocated through the current allocator as CuPy allocates.
It behaves like CuPy's where a library could get CuPy wrong: it refuses implicit
conversion to NumPy, reductions and integer indexing give 0-d arrays (never NumPy
scalars), integer-array indices wrap around instead of raising, NumPy arrays are refused
as operands, work runs on the current device only (arrays of another device raise as they
do without peer access), and reading values on the host is refused while the stream
captures.
"""
import math

import numpy as np

from . import _device, _memory

__all__ = ["ndarray", "new_array", "call", "check_device", "host_index", "from_host"]


def check_device(a):
    """CuPy's _check_peer_access: the emulated devices have no peer access."""
    dev = _device.get_device_id()
    if a.data.device_id != dev:
        raise ValueError(f"The device where the array resides ({a.data.device_id}) is "
                         f"different from the current device ({dev}). Peer access is "
                         "unavailable between these devices.")


def new_array(shape, dtype):
    """An uninitialised C-contiguous array on the current device, from the allocator."""
    shape = _shape(shape)
    dtype = _dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    memptr = _memory.alloc(nbytes)
    _device.note_allocation(memptr.ptr, nbytes)
    return _wrap(_memory.claim(memptr, shape, dtype, nbytes), memptr, None)


def _shape(shape):
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    if type(shape) is tuple and all(type(s) is int for s in shape):
        return shape
    return tuple(int(s) for s in shape)


_SUPPORTED = set("?bBhHiIlLqQefdFD")
_dtypes = {}


def _dtype(dtype):
    d = _dtypes.get(dtype)
    if d is None:
        d = np.dtype(float if dtype is None else dtype)
        if d.char not in _SUPPORTED:
            raise ValueError(f"Unsupported dtype {d}")
        try:
            _dtypes[dtype] = d
        except TypeError:  # an unhashable spelling
            pass
    return d


def _wrap(view, memptr, base):
    a = object.__new__(ndarray)
    a._a, a.data, a.base = view, memptr, base
    return a


def _root(view):
    while isinstance(view.base, np.ndarray):
        view = view.base
    return view


def from_host(host, dtype=None):
    """A new array on the current device holding a copy of host data, as CuPy 14 copies it
    (``_array_default``, cupy/_core/core.pyx): a 0-d value is written by a fill kernel,
    which a capture keeps; anything larger goes through a pinned staging buffer that CuPy
    hands back to its pinned pool once the copy's event is done, so a graph captured with
    the copy reads what that buffer holds by then: here poison (0xFF, NaN)."""
    host = np.asarray(host, dtype=dtype)
    if host.dtype.kind in "OUSV":
        raise ValueError(f"Unsupported dtype {host.dtype}")
    out = new_array(host.shape, host.dtype)
    staged = np.ascontiguousarray(host).copy()
    view = out._a
    cap = _device.capture()
    if cap is None or host.ndim == 0:
        _device.run(lambda: np.copyto(view, staged))
    else:
        ptr, nbytes = out.data.ptr, out.nbytes
        cap.record(lambda: _memory.poison(ptr, nbytes))
    return out


def _to_np(obj, arrays, host_ok):
    """Arguments for NumPy: arrays become their views, NumPy arrays are refused."""
    if isinstance(obj, ndarray):
        arrays.append(obj)
        return obj._a
    if isinstance(obj, np.ndarray) and not host_ok:
        raise TypeError(f"Unsupported type {type(obj)}")
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_np(o, arrays, host_ok) for o in obj)
    if isinstance(obj, dict):
        return {k: _to_np(v, arrays, host_ok) for k, v in obj.items()}
    return obj


def _from_np(res, arrays, fresh):
    """NumPy's result as CuPy's: a view of an input stays a view; anything new (an array,
    a NumPy scalar) becomes a new device array, appended to ``fresh``."""
    if isinstance(res, (list, tuple)):
        return type(res)(_from_np(r, arrays, fresh) for r in res)
    if isinstance(res, np.generic):
        res = np.asarray(res)
    if not isinstance(res, np.ndarray):
        return res
    root = _root(res)
    for a in arrays:
        if _root(a._a) is root:
            offset = res.__array_interface__["data"][0] - a.data.mem.ptr if res.size else 0
            return _wrap(res, _memory.MemoryPointer(a.data.mem, offset),
                         a if a.base is None else a.base)
    out = new_array(res.shape, res.dtype)
    fresh.append((out, res))
    return out


def call(fn, args, kwargs, name, host_ok=False):
    """``fn`` (a NumPy function) on arrays of the current device, CuPy's way."""
    arrays = []
    hargs, hkw = _to_np(args, arrays, host_ok), _to_np(kwargs, arrays, host_ok)
    for a in arrays:
        check_device(a)
    if kwargs.get("out") is not None:  # in place: runs now, or at each replay
        _device.run(lambda: fn(*hargs, **hkw))
        return kwargs["out"]
    cap = _device.capture()
    with np.errstate(all="ignore") if cap else _noop:
        res = fn(*hargs, **hkw)  # while capturing: for the result's shape only
    fresh = []
    out = _from_np(res, arrays, fresh)
    if cap is None:
        for arr, value in fresh:
            np.copyto(arr._a, value)
    else:
        def replay():
            again = fn(*hargs, **hkw)
            again = again if isinstance(again, (list, tuple)) else (again,)
            for (arr, _), value in zip(fresh, _flat_new(again, arrays)):
                np.copyto(arr._a, value)
        cap.record(replay)
    return out


def _flat_new(results, arrays):
    """The results of a replayed call that were new arrays, in _from_np's order."""
    for r in results:
        if isinstance(r, (list, tuple)):
            yield from _flat_new(r, arrays)
        elif isinstance(r, (np.ndarray, np.generic)):
            r = np.asarray(r)
            if not any(_root(a._a) is _root(r) for a in arrays):
                yield r


class _NoOp:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_noop = _NoOp()


def host_index(index, shape):
    """``make()`` -> the index for NumPy, with CuPy's rules: arrays (device, or NumPy and
    lists, which CuPy converts) become NumPy arrays, and integer arrays wrap around each
    axis. A function, so that a captured index reads the index arrays at each replay."""
    items = index if isinstance(index, tuple) else (index,)
    conv = []
    for it in items:
        if isinstance(it, ndarray):
            check_device(it)
            conv.append(it._a)
        elif isinstance(it, (list, np.ndarray)):
            conv.append(np.asarray(it))
        else:
            conv.append(it)
    n_fancy = sum(it.ndim if isinstance(it, np.ndarray) and it.dtype == bool else 1
                  for it in conv if it is not None and it is not Ellipsis)
    axis, wrap = 0, {}  # position -> the axis length an integer array wraps around
    for k, it in enumerate(conv):
        if it is Ellipsis:
            axis += len(shape) - n_fancy
        elif it is None:
            pass
        elif isinstance(it, np.ndarray) and it.dtype == bool:
            axis += it.ndim
        else:
            if isinstance(it, np.ndarray) and it.dtype.kind in "iu" and axis < len(shape) \
                    and shape[axis]:
                wrap[k] = shape[axis]
            axis += 1

    def make():  # CuPy wraps integer-array indices where NumPy raises IndexError
        return tuple(it % wrap[k] if k in wrap else it for k, it in enumerate(conv))
    make.has_mask = any(isinstance(i, np.ndarray) and i.dtype == bool for i in conv)
    make.has_ellipsis = any(i is Ellipsis for i in conv)
    make.has_advanced = any(isinstance(i, np.ndarray) for i in conv)
    return make


class _Flags:
    def __init__(self, view, owndata):
        self.c_contiguous = view.flags.c_contiguous
        self.f_contiguous = view.flags.f_contiguous
        self.owndata = owndata

    def __getitem__(self, name):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[name]

    def __repr__(self):
        return (f"  C_CONTIGUOUS : {self.c_contiguous}\n  F_CONTIGUOUS : {self.f_contiguous}"
                f"\n  OWNDATA : {self.owndata}")


class ndarray:
    """``cupy.ndarray`` on an emulated device."""

    __slots__ = ("_a", "data", "base", "__weakref__")
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is None:
            a = new_array(shape, dtype)
            self._a, self.data, self.base = a._a, a.data, None
        else:
            self._a = _memory.host_view(memptr.ptr, _shape(shape), _dtype(dtype), strides)
            self.data, self.base = memptr, None

    # --- what an array is ----------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    dtype = property(lambda self: self._a.dtype)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: _Flags(self._a, self.base is None))
    device = property(lambda self: _device.Device(self.data.device_id))

    @property
    def T(self):
        return self.transpose()

    @property
    def mT(self):
        return self.swapaxes(-1, -2)

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str, "version": 3,
                "data": (self.data.ptr if self.size else 0, False),
                "strides": None if self._a.flags.c_contiguous else self.strides}

    # --- host transfers ------------------------------------------------------------------
    def get(self, stream=None, order="C", out=None, blocking=True):
        _device.host_sync("ndarray.get()")
        if out is not None:
            if not isinstance(out, np.ndarray):
                raise TypeError("Only numpy.ndarray can be obtained from cupy.ndarray")
            np.copyto(out, self._a)
            return out
        return np.array(self._a, order=order)

    def set(self, arr, stream=None):
        if not isinstance(arr, np.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if self.dtype != arr.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self.dtype} array")
        if self.shape != arr.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self.shape}, new shape: "
                             f"{arr.shape}")
        staged, view = arr.copy(), self._a
        _device.run(lambda: np.copyto(view, staged))

    def item(self, *args):
        _device.host_sync("ndarray.item()")
        return self._a.item(*args)

    def tolist(self):
        _device.host_sync("ndarray.tolist()")
        return self._a.tolist()

    def tobytes(self, order="C"):
        _device.host_sync("ndarray.tobytes()")
        return self._a.tobytes(order)

    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use "
                        "`.get()` to construct a NumPy array explicitly.")

    def __repr__(self):
        return repr(self.get())

    def __str__(self):
        return str(self.get())

    def __format__(self, spec):
        return format(self.get(), spec)

    def __bool__(self):
        return bool(self.get())

    def __float__(self):
        return float(self.get())

    def __int__(self):
        return int(self.get())

    def __complex__(self):
        return complex(self.get())

    def __index__(self):
        if self.size != 1 or self.dtype.kind not in "iu":
            raise TypeError("only integer scalar arrays can be converted to a scalar index")
        return int(self.get())

    def __len__(self):
        if not self.ndim:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if not self.ndim:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    __hash__ = None

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        with self.device:
            return self.copy()

    # --- conversion and copies -------------------------------------------------------------
    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        dtype = _dtype(dtype)
        if not copy and dtype == self.dtype:
            return self
        check_device(self)
        out = new_array(self.shape, dtype)
        src, dst = self._a, out._a
        _device.run(lambda: np.copyto(dst, src, casting="unsafe"))
        return out

    def copy(self, order="C"):
        """A copy on the current device (from any device, as CuPy's)."""
        if self.data.device_id != _device.get_device_id() and not (
                self._a.flags.c_contiguous or self._a.flags.f_contiguous):
            raise NotImplementedError("CuPy cannot copy non-contiguous array between "
                                      "devices.")
        out = new_array(self.shape, self.dtype)
        src, dst = self._a, out._a
        _device.run(lambda: np.copyto(dst, src))
        return out

    def view(self, dtype=None):
        return self._method("view", (dtype,) if dtype is not None else ())

    def fill(self, value):
        if isinstance(value, np.ndarray) and value.shape != ():
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        if isinstance(value, ndarray):
            raise TypeError("fill takes a scalar; use copyto for arrays")
        view = self._a
        _device.run(lambda: view.fill(value))

    def scatter_add(self, slices, value):
        import warnings
        warnings.warn("`ndarray.scatter_add` is deprecated. Please use `cupy.add.at` "
                      "instead.", DeprecationWarning, stacklevel=2)
        from . import _routines
        _routines.add.at(self, slices, value)

    def sort(self, axis=-1, kind=None):
        view = self._a
        _device.run(lambda: view.sort(axis))

    def _method(self, name, args=(), kwargs=None):
        return call(getattr(np.ndarray, name), (self,) + tuple(args), kwargs or {}, name)

    # --- indexing --------------------------------------------------------------------------
    def __getitem__(self, index):
        make = host_index(index, self.shape)
        if make.has_mask:
            _device.host_sync("boolean-mask indexing (it reads the mask's count)")
        tail = () if make.has_ellipsis else (Ellipsis,)  # a 0-d view, never a NumPy scalar
        return call(lambda a: a[make() + tail], (self,), {}, "__getitem__")

    def __setitem__(self, index, value):
        make = host_index(index, self.shape)
        if make.has_mask:
            _device.host_sync("boolean-mask assignment")
        if isinstance(value, ndarray):
            check_device(value)
            value = value._a
        elif isinstance(value, np.ndarray):
            if value.shape != ():
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        elif isinstance(value, (list, tuple)):
            raise TypeError(f"Unsupported type {type(value)}")
        check_device(self)
        view = self._a

        def assign():
            view[make()] = value
        _device.run(assign)


def _add_methods():
    """Methods that are NumPy's on the view, with CuPy's conventions for the result."""
    def method(name):
        def m(self, *args, **kwargs):
            return self._method(name, args, kwargs)
        m.__name__ = name
        return m
    for name in ("all", "any", "argmax", "argmin", "argsort", "clip", "conj", "conjugate",
                 "cumprod", "cumsum", "diagonal", "dot", "flatten", "max", "mean", "min",
                 "prod", "ptp", "ravel", "repeat", "reshape", "round", "squeeze", "std", "sum",
                 "swapaxes", "take", "trace", "transpose", "var", "searchsorted"):
        setattr(ndarray, name, method(name))

    def sync_method(name):
        def m(self, *args, **kwargs):
            _device.host_sync(f"ndarray.{name}() (its result's size depends on the data)")
            return self._method(name, args, kwargs)
        return m
    for name in ("nonzero", "compress"):
        setattr(ndarray, name, sync_method(name))


def _add_operators():
    from . import _routines as r
    binary = {"add": r.add, "sub": r.subtract, "mul": r.multiply, "truediv": r.true_divide,
              "floordiv": r.floor_divide, "mod": r.remainder, "pow": r.power,
              "matmul": r.matmul, "and": r.bitwise_and, "or": r.bitwise_or,
              "xor": r.bitwise_xor, "lshift": r.left_shift, "rshift": r.right_shift}
    for name, uf in binary.items():
        def op(self, other, uf=uf):
            if getattr(other, "__array_priority__", 0) > self.__array_priority__ and \
                    not isinstance(other, ndarray):
                return NotImplemented
            return uf(self, other)

        def rop(self, other, uf=uf):
            return uf(other, self)

        def iop(self, other, uf=uf):
            if uf is r.matmul:
                return NotImplemented
            uf(self, other, out=self)
            return self
        setattr(ndarray, f"__{name}__", op)
        setattr(ndarray, f"__r{name}__", rop)
        setattr(ndarray, f"__i{name}__", iop)
    ndarray.__divmod__ = lambda self, other: r.divmod(self, other)
    for name, uf in {"lt": r.less, "le": r.less_equal, "gt": r.greater, "ge": r.greater_equal,
                     "eq": r.equal, "ne": r.not_equal}.items():
        def cmp(self, other, uf=uf):
            if getattr(other, "__array_priority__", 0) > self.__array_priority__ and \
                    not isinstance(other, ndarray):
                return NotImplemented
            return uf(self, other)
        setattr(ndarray, f"__{name}__", cmp)
    ndarray.__hash__ = None
    ndarray.__neg__ = lambda self: r.negative(self)
    ndarray.__pos__ = lambda self: r.positive(self)
    ndarray.__abs__ = lambda self: r.absolute(self)
    ndarray.__invert__ = lambda self: r.invert(self)

    def array_ufunc(self, uf, method, *inputs, **kwargs):
        cupy_uf = getattr(r, uf.__name__, None)
        if cupy_uf is None:
            return NotImplemented
        return cupy_uf(*inputs, **kwargs) if method == "__call__" else \
            getattr(cupy_uf, method)(*inputs, **kwargs)
    ndarray.__array_ufunc__ = array_ufunc

    def array_function(self, func, types, args, kwargs):
        cupy_func = getattr(r, func.__name__, None)
        if cupy_func is None:
            return NotImplemented
        return cupy_func(*args, **kwargs)
    ndarray.__array_function__ = array_function


_add_methods()
