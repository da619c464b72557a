"""``cupy.ufunc``: NumPy's arithmetic, with CuPy's argument rules and its loop tables.

The loop is picked as CuPy 14 picks it (``cupy/_core/_kernel.pyx``, ``_Ops.guess_routine``):
the first entry of the real ufunc's ``types`` that every input casts to safely, Python
scalars counting as weak only next to arrays of at least their kind. NumPy then computes
in that loop's types. NumPy arrays, lists and other objects are refused as CuPy refuses
them (``TypeError: Unsupported type``).
"""
import numpy as np

from . import _device

_KIND = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
_PY_KIND = {int: 1, float: 2, complex: 3}


def _kind_score(t):
    if t in _PY_KIND:
        return _PY_KIND[t]
    return _KIND.get(np.dtype(t).kind, 3)


def scalar_dtype(x):
    """CuPy's CScalar: (dtype, weak Python type or False) of a scalar argument."""
    t = type(x)
    if t is bool:
        return np.dtype(bool), False
    if t is float:
        return np.dtype(np.float64), float
    if t is complex:
        return np.dtype(np.complex128), complex
    if t is int:
        return np.dtype(np.uint64 if x >= 0x8000000000000000 else np.int64), int
    if isinstance(x, np.generic):
        return x.dtype, False
    raise TypeError(f"Unsupported type {t}")


def _use_weak(in_types, weaks):
    """CuPy's _check_should_use_weak_scalar."""
    max_array = max_scalar = -1
    for t, w in zip(in_types, weaks):
        if w:
            max_scalar = max(max_scalar, _kind_score(w))
        else:
            max_array = max(max_array, _kind_score(t))
    return max_scalar != -1 and max_array != -1 and max_array >= max_scalar


def pick_loop(types, in_types, weaks, name):
    """The first loop ``'ab->c'`` of ``types`` the inputs fit, as (in dtypes, out dtypes)."""
    if not _use_weak(in_types, weaks):
        weaks = (False,) * len(in_types)
    for loop in types:
        ins, outs = loop.split("->")
        for it, ot, w in zip(in_types, ins, weaks):
            ot = np.dtype(ot)
            if not np.can_cast(it, ot):
                if not w:
                    break
                try:
                    if np.result_type(w(0), ot) != ot:
                        break
                except TypeError:
                    break
        else:
            return [np.dtype(c) for c in ins], [np.dtype(c) for c in outs]
    raise TypeError(f"Wrong type ({tuple(in_types)}) of arguments for {name}")


#: the ufuncs CuPy gives a scatter kernel (``scatter_op=``) and the dtypes it takes with an
#: integer-array index (``_scatter_op_single``), as type characters in CuPy's error order
_SCATTER_DTYPES = {"add": "ilqefdILQ", "subtract": "iI", "maximum": "ilqfdILQ",
                   "minimum": "ilqfdILQ", "bitwise_and": "ilqILQ", "bitwise_or": "ilqILQ",
                   "bitwise_xor": "ilqILQ"}


class ufunc:
    """A CuPy ufunc computed by the NumPy (or SciPy) ufunc ``impl``."""

    def __init__(self, name, impl, nin, nout, types):
        self.name, self.__name__ = name, name
        self._impl, self.nin, self.nout, self.types = impl, nin, nout, list(types)
        self.nargs = nin + nout
        self._loops = {}  # (input dtypes, weak scalar types) -> loop, as CuPy caches it

    def __repr__(self):
        return f"<ufunc '{self.name}'>"

    def _operands(self, args):
        from ._ndarray import ndarray, check_device
        in_types, weaks, operands = [], [], []
        for a in args:
            if isinstance(a, ndarray):
                check_device(a)
                in_types.append(a.dtype)
                weaks.append(False)
                operands.append(a)
            else:
                t, w = scalar_dtype(a)
                in_types.append(t)
                weaks.append(w)
                operands.append(a)
        return in_types, weaks, operands

    def __call__(self, *args, out=None, dtype=None, casting="same_kind", **kwargs):
        from ._ndarray import ndarray, check_device, new_array
        if kwargs:
            raise TypeError(f"{self.name}: emulated ufuncs take out, dtype and casting, "
                            f"not {sorted(kwargs)}")
        if len(args) < self.nin or len(args) > self.nargs:
            raise TypeError(f"Wrong number of arguments for {self.name}")
        outs = list(args[self.nin:])
        if out is not None:
            if outs:
                raise ValueError("cannot specify 'out' as both a positional and keyword "
                                 "argument")
            outs = list(out) if isinstance(out, tuple) else [out]
        in_types, weaks, operands = self._operands(args[:self.nin])
        if dtype is None:
            key = (tuple(in_types), tuple(weaks))
            loop = self._loops.get(key)
            if loop is None:
                loop = self._loops[key] = pick_loop(self.types, in_types, weaks, self.name)
            loop_in, loop_out = loop
        else:
            loop_in, loop_out = self._loop_for_dtype(np.dtype(dtype))
        shapes = [a._a.shape for a in operands if isinstance(a, ndarray)]
        shape = shapes[0] if len(shapes) == 1 else np.broadcast_shapes(*shapes)
        results = []
        for k, dt in enumerate(loop_out):
            o = outs[k] if k < len(outs) else None
            if o is None:
                o = new_array(shape, dt)
            else:
                if not isinstance(o, ndarray):
                    raise TypeError(f"Output arguments must be cupy.ndarray, got {type(o)}")
                check_device(o)
                if not np.can_cast(dt, o.dtype, casting):
                    raise TypeError(f"output (typecode '{dt.char}') could not be coerced to "
                                    f"provided output parameter (typecode '{o.dtype.char}') "
                                    f"according to the casting rule \"{casting}\"")
                if np.broadcast_shapes(shape, o.shape) != o.shape:
                    raise ValueError(f"Out shape is mismatched: {o.shape} vs {shape}")
            results.append(o)
        views = [a._a if isinstance(a, ndarray) else a for a in operands]
        out_views = tuple([o._a for o in results])
        impl = self._impl
        direct = isinstance(impl, np.ufunc)

        def compute():  # NumPy in the loop's types; quiet, as a GPU is
            ins = [v.astype(t, copy=False) if isinstance(v, np.ndarray) else np.asarray(v, t)
                   for v, t in zip(views, loop_in)]
            with np.errstate(all="ignore"):
                if direct:
                    impl(*ins, out=out_views, casting="unsafe")
                    return
                got = impl(*ins)
            for view, value in zip(out_views, got if self.nout > 1 else (got,)):
                np.copyto(view, value, casting="unsafe")
        _device.run(compute)
        return tuple(results) if self.nout > 1 else results[0]

    def _loop_for_dtype(self, dtype):
        for loop in self.types:
            ins, outs = loop.split("->")
            if all(np.dtype(c) == dtype for c in outs):
                return [np.dtype(c) for c in ins], [np.dtype(c) for c in outs]
        raise TypeError(f"Wrong type ({dtype}) of arguments for {self.name}")

    # --- methods -----------------------------------------------------------------------------
    def at(self, a, indices, b):
        """``ufunc.at`` as CuPy 14's (``_kernel.pyx``: ``ufunc.at``, ``_routines_indexing.pyx``:
        ``_scatter_op``): only the ufuncs with a scatter kernel have it; with an integer-array
        index, ``b`` (any array-like, host data too) is cast to ``a``'s dtype, which must
        be one the atomic takes, repeated indices accumulate and indices wrap; without an
        advanced index it is the ufunc itself, in place."""
        from ._ndarray import check_device, from_host, host_index, ndarray
        dtypes = _SCATTER_DTYPES.get(self.name)
        if dtypes is None:
            raise NotImplementedError(f"`cupy_{self.name}.at` is not supported yet")
        if not isinstance(a, ndarray):
            raise AttributeError(f"'{type(a).__name__}' object has no attribute '_scatter_op'")
        make = host_index(indices, a.shape)
        if not make.has_advanced:
            view = a[indices]
            self(view, b, view)
            return
        v = b.astype(a.dtype, copy=False) if isinstance(b, ndarray) else from_host(b, a.dtype)
        if not make.has_mask and a.dtype.char not in dtypes:
            names = ", ".join(dict.fromkeys(np.dtype(c).name for c in dtypes))
            raise TypeError(f"cupy.{self.name}.at only supports {names} as data type")
        check_device(a)
        check_device(v)
        view, values, impl = a._a, v._a, self._impl
        _device.run(lambda: impl.at(view, make(), values))

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        from ._ndarray import call
        return call(self._impl.reduce, (array,),
                    dict(axis=axis, dtype=dtype, out=out, keepdims=keepdims), self.name)

    def accumulate(self, array, axis=0, dtype=None, out=None):
        from ._ndarray import call
        return call(self._impl.accumulate, (array,), dict(axis=axis, dtype=dtype, out=out),
                    self.name)

    def outer(self, a, b, **kwargs):
        from ._ndarray import call
        return call(self._impl.outer, (a, b), kwargs, self.name)
