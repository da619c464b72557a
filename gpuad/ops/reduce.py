"""Reductions: sum, mean, max/min (with indices over one dim), amax/amin, var, std,
logsumexp, and the non-differentiable argmax/argmin/all/any.

Each takes ``dim`` (or ``axis``) as an int, a tuple or None (all dims; ``()`` too, as
PyTorch reads it), and ``keepdim`` (or ``keepdims``); a 0-d tensor takes dim 0 and -1.
float16 tensors accumulate in float32 and give float16 back, as in PyTorch.
"""
import builtins

from .. import dtypes, return_types
from ..autograd.function import Function
from ..tensor import Tensor
from .elementwise import _floating, cast, exp, maximum, minimum, where
from .shape import _dim, expand, reshape


def reduce_dims(x, dim, keepdim, axis=None, keepdims=None, op="reduce"):
    """Normalise the dim/axis and keepdim/keepdims spellings to (dims tuple, keepdim)."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: pass dim or axis, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    ndim = x._data.ndim
    if dim is None:
        return tuple(range(ndim)), bool(keepdim)
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    if not dims:  # dim=(): all dims, as in PyTorch
        return tuple(range(ndim)), bool(keepdim)
    norm = tuple(sorted({_dim(d, ndim, op) for d in dims}))
    if len(norm) != len(dims):
        raise ValueError(f"{op}: dim {dim} names a dimension twice")
    return (norm if ndim else ()), bool(keepdim)


def _kept_shape(shape, dims):
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


def _spread(gy, in_shape, dims):
    """The gradient of a reduction, broadcast back over the reduced dims."""
    if gy.ndim:  # a 0-d gradient (of a full reduction) broadcasts as it is
        gy = reshape(gy, _kept_shape(in_shape, dims))
    return expand(gy, in_shape)


def _count(x, dims):
    n = 1
    for d in dims:
        n *= x.shape[d]
    return n


def _check_nonempty(x, dims, op):
    for d in dims:
        if x.shape[d] == 0:
            raise IndexError(f"{op}: dim {d} of the tensor (shape {x.shape}) has size 0, so "
                             "there is no value to pick; PyTorch refuses this too")


class Sum(Function):
    """Sum over ``dims``, accumulating in ``acc`` and giving ``out`` (None: ``acc``)."""

    def __init__(self, dims, keepdim, acc, out=None):
        self.dims, self.keepdim, self.acc, self.out = dims, keepdim, acc, out

    def forward(self, x):
        self.in_shape = x.shape
        y = x.sum(axis=self.dims, keepdims=self.keepdim, dtype=self.acc)
        return y if self.out is None else y.astype(self.out)

    def backward(self, gy):
        return _spread(gy, self.in_shape, self.dims)

    def jvp(self, t):
        return Sum(self.dims, self.keepdim, self.acc, self.out).apply(t)


def sum(x, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None):
    """Sum over ``dim``; bool and int tensors give int64, float16 sums in float32."""
    dims, keepdim = reduce_dims(x, dim, keepdim, axis, keepdims, "sum")
    kind, out = x._data.dtype.kind, None
    if dtype is not None:
        dtype = dtypes.as_dtype(dtype)
    elif kind != "f":
        dtype = dtypes.int64  # bool and int sums count in int64, as in PyTorch
    elif x._data.dtype == dtypes.float16:
        dtype, out = dtypes.float32, dtypes.float16
    return Sum(dims, keepdim, dtype, out).apply(x)


def mean(x, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None):
    """Mean over ``dim`` of a floating tensor (or of ``x`` converted to ``dtype``)."""
    if dtype is not None and dtypes.as_dtype(dtype) != x.dtype:
        x = cast(x, dtypes.as_dtype(dtype))
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"mean of a {dtypes.name(x.dtype)} tensor; convert it with .float() "
                        "first, or pass dtype=")
    dims, keepdim = reduce_dims(x, dim, keepdim, axis, keepdims, "mean")
    if x.dtype == dtypes.float16:  # the sum would overflow float16 before the division
        return cast(Sum(dims, keepdim, dtypes.float32).apply(x) / _count(x, dims),
                    dtypes.float16)
    return sum(x, dims, keepdim) / _count(x, dims)


class _Extreme(Function):
    """amax/amin over ``dims``, and max()/min() over everything (``full``).

    The gradient is shared evenly among the elements equal to the result; where the
    result is NaN, max() shares it among the NaNs and amax gives the slice NaN, as in
    PyTorch."""

    def __init__(self, which, dims, keepdim, full):
        self.which, self.dims, self.keepdim, self.full = which, dims, keepdim, full

    def forward(self, x):
        xp = self.xp
        y = getattr(xp, self.which)(x, axis=self.dims, keepdims=True)
        if self.needs_input_grad[0]:
            hit = x == y
            if self.full:
                hit |= xp.isnan(x) & xp.isnan(y)
            mask = hit.astype(x.dtype)
            count = mask.sum(axis=self.dims, keepdims=True)
            mask /= xp.maximum(count, 1)
            if not self.full:
                mask = xp.where(count == 0, xp.nan, mask).astype(x.dtype)
            self.save_for_backward(mask)
        self.in_shape = x.shape
        return y if self.keepdim else y.reshape(
            tuple(s for i, s in enumerate(x.shape) if i not in self.dims))

    def backward(self, gy):
        mask, = self.saved_tensors
        return _spread(gy, self.in_shape, self.dims) * mask

    def jvp(self, t):
        mask, = self.saved_tensors
        return sum(t * mask, self.dims, self.keepdim)


class _ExtremeDim(Function):
    """max/min over one dim with the index of the element chosen (the first on ties; a
    NaN wins and propagates); the gradient goes to that element alone."""

    def __init__(self, which, dim, keepdim):
        self.which, self.dim, self.keepdim = which, dim, keepdim

    def forward(self, x):
        xp, d, keep = self.xp, self.dim, self.keepdim
        # max and argmax agree: both take a NaN as the extreme, argmax its first one
        values = getattr(xp, self.which)(x, axis=d, keepdims=keep)
        idx = getattr(xp, "arg" + self.which)(x, axis=d, keepdims=keep)
        if self.needs_input_grad[0]:
            pos = xp.arange(x.shape[d]).reshape((-1,) + (1,) * (x.ndim - d - 1))
            self.save_for_backward((pos == (idx if keep else xp.expand_dims(idx, d)))
                                   .astype(x.dtype))
        self.in_shape = x.shape
        return values, idx.astype(dtypes.int64, copy=False)

    def backward(self, gy, gi):
        mask, = self.saved_tensors
        return _spread(gy, self.in_shape, (self.dim,)) * mask

    def jvp(self, t):
        mask, = self.saved_tensors
        return sum(t * mask, (self.dim,), self.keepdim), None


def _extreme(which, x, dim, keepdim, axis, keepdims):
    if isinstance(dim, Tensor):  # max(a, b): the elementwise maximum, as in PyTorch
        return (maximum if which == "max" else minimum)(x, dim)
    d = dim if axis is None else axis
    if d is None:
        if keepdim or keepdims:
            raise TypeError(f"{which}: keepdim needs a dim; use amax/amin to keep all dims")
        if x.numel() == 0:
            raise RuntimeError(f"{which}() of an empty tensor (shape {x.shape}) has no value; "
                               "give a dim to reduce, whose size is not 0")
        return _Extreme(which, tuple(range(x.ndim)), False, True).apply(x)
    if isinstance(d, (tuple, list)):
        raise TypeError(f"{which}: dim must be an int, got {d!r}; {which} over several dims "
                        f"gives no indices, use a{which}(x, dims) for the values")
    if keepdims is not None:
        keepdim = keepdims
    if x.ndim == 0:
        _dim(d, 0, which)
        values, idx = _extreme(which, reshape(x, (1,)), 0, False, None, None)
        return getattr(return_types, which)(values, idx)
    d = _dim(d, x.ndim, which)
    _check_nonempty(x, (d,), which)
    values, idx = _ExtremeDim(which, d, bool(keepdim)).apply(x)
    return getattr(return_types, which)(values, idx.detach())  # indices: outside the graph


def max(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The largest value; with an int ``dim``, ``(values, indices)`` along it, as
    ``torch.max``; with a tensor, the elementwise maximum of the two."""
    return _extreme("max", x, dim, keepdim, axis, keepdims)


def min(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The smallest value; with an int ``dim``, ``(values, indices)`` along it; with a
    tensor, the elementwise minimum of the two."""
    return _extreme("min", x, dim, keepdim, axis, keepdims)


def _amax(which, x, dim, keepdim, axis, keepdims):
    dims, keepdim = reduce_dims(x, dim, keepdim, axis, keepdims, "a" + which)
    _check_nonempty(x, dims, "a" + which)
    return _Extreme(which, dims, keepdim, False).apply(x)


def amax(x, dim=(), keepdim=False, *, axis=None, keepdims=None):
    """The largest values over ``dim`` (an int or a tuple; all dims by default)."""
    return _amax("max", x, dim, keepdim, axis, keepdims)


def amin(x, dim=(), keepdim=False, *, axis=None, keepdims=None):
    """The smallest values over ``dim`` (an int or a tuple; all dims by default)."""
    return _amax("min", x, dim, keepdim, axis, keepdims)


def var(x, dim=None, keepdim=False, *, unbiased=True, correction=None, axis=None,
        keepdims=None):
    """Variance; ``correction=1`` (or ``unbiased=True``) divides by n - 1."""
    dims, keepdim = reduce_dims(x, dim, keepdim, axis, keepdims, "var")
    if correction is None:
        correction = 1 if unbiased else 0
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"var of a {dtypes.name(x.dtype)} tensor; convert it with .float() "
                        "first (PyTorch takes only floating tensors too)")
    if x.dtype == dtypes.float16:
        return cast(var(cast(x, dtypes.float32), dims, keepdim, correction=correction),
                    dtypes.float16)
    diff = x - mean(x, dims, True)
    return sum(diff * diff, dims, keepdim) / builtins.max(_count(x, dims) - correction, 0)


class StdFromVar(Function):
    """``sqrt(var)`` whose gradient is 0 where the variance is 0 (not NaN), as PyTorch's
    std: ``(x - x.mean()) / (x.std() + eps)`` on a constant slice stays finite."""

    def forward(self, v):
        y = self.xp.sqrt(v)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        y, = self.saved_tensors
        zero = y == 0  # the inner where keeps the masked division finite for double backward
        return where(zero, 0, gy / (2 * where(zero, 1, y)))

    jvp = backward


def std(x, dim=None, keepdim=False, *, unbiased=True, correction=None, axis=None,
        keepdims=None):
    """Standard deviation: ``sqrt(var)``, with a zero gradient where it is 0."""
    if x.dtype == dtypes.float16:
        return cast(std(cast(x, dtypes.float32), dim, keepdim, unbiased=unbiased,
                        correction=correction, axis=axis, keepdims=keepdims), dtypes.float16)
    return StdFromVar().apply(var(x, dim, keepdim, unbiased=unbiased, correction=correction,
                                  axis=axis, keepdims=keepdims))


class LogSumExp(Function):
    def __init__(self, dims, keepdim):
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x):
        xp = self.xp
        if builtins.any(x.shape[d] == 0 for d in self.dims):  # a sum of no terms: log(0)
            y = xp.full(_kept_shape(x.shape, self.dims), -xp.inf, x.dtype)
        else:
            m = xp.max(x, axis=self.dims, keepdims=True)
            m = xp.where(xp.isfinite(m), m, 0)
            y = xp.log(xp.sum(xp.exp(x - m), axis=self.dims, keepdims=True)) + m
        if not self.keepdim:
            y = y.reshape(tuple(s for i, s in enumerate(x.shape) if i not in self.dims))
        self.in_shape = x.shape
        self.save_for_backward(x, y)
        return y

    def backward(self, gy):
        x, y = self.saved_tensors
        y = reshape(y, _kept_shape(self.in_shape, self.dims))
        return _spread(gy, self.in_shape, self.dims) * exp(x - y)

    def jvp(self, t):
        x, y = self.saved_tensors
        weights = exp(x - reshape(y, _kept_shape(self.in_shape, self.dims)))
        return sum(t * weights, self.dims, self.keepdim)


def logsumexp(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """``log(sum(exp(x)))`` over ``dim`` (or ``axis``), computed without overflow; -inf
    over an empty dim."""
    if (dim is None and axis is None) or dim == () or axis == ():
        raise TypeError("logsumexp: pass the dim (or axis) to reduce over, as in PyTorch")
    dims, keepdim = reduce_dims(x, dim, keepdim, axis, keepdims, "logsumexp")
    x = _floating(x)
    if x.dtype == dtypes.float16:
        return cast(LogSumExp(dims, keepdim).apply(cast(x, dtypes.float32)), dtypes.float16)
    return LogSumExp(dims, keepdim).apply(x)


class _Index(Function):
    differentiable = False

    def __init__(self, fn, axis, keepdim):
        self.fn, self.axis, self.keepdim = fn, axis, keepdim

    def forward(self, x):
        out = getattr(self.xp, self.fn)(x, axis=self.axis)
        if self.keepdim:
            out = out.reshape(_kept_shape(x.shape, range(x.ndim) if self.axis is None
                                          else (self.axis,)))
        return out.astype(dtypes.int64)


def _arg(fn, x, dim, keepdim):
    if x.dtype == dtypes.bool_:
        raise TypeError(f"{fn} of a bool tensor is not supported (as in PyTorch); convert it "
                        "with .long() first")
    if dim is None:
        if x.numel() == 0:
            raise IndexError(f"{fn} of an empty tensor (shape {x.shape}); give a dim to "
                             "reduce, whose size is not 0")
        return _Index(fn, None, keepdim).apply(x)
    d = _dim(dim, x.ndim, fn)
    if x.ndim == 0:
        return _Index(fn, None, False).apply(x)
    _check_nonempty(x, (d,), fn)
    return _Index(fn, d, keepdim).apply(x)


def argmax(x, dim=None, keepdim=False):
    """The index of the largest value (of the flattened tensor when ``dim`` is None); the
    first one on ties, and a NaN counts as the largest."""
    return _arg("argmax", x, dim, keepdim)


def argmin(x, dim=None, keepdim=False):
    """The index of the smallest value; the first one on ties, a NaN counts as smallest."""
    return _arg("argmin", x, dim, keepdim)


class _Truth(Function):
    differentiable = False

    def __init__(self, fn, dims, keepdim):
        self.fn, self.dims, self.keepdim = fn, dims, keepdim

    def forward(self, x):
        return getattr(self.xp, self.fn)(x, axis=self.dims, keepdims=self.keepdim)


def all(x, dim=None, keepdim=False):
    """Whether every element (over ``dim``) is nonzero; True over an empty dim."""
    return _Truth("all", *reduce_dims(x, dim, keepdim, op="all")).apply(x)


def any(x, dim=None, keepdim=False):
    """Whether some element (over ``dim``) is nonzero; False over an empty dim."""
    return _Truth("any", *reduce_dims(x, dim, keepdim, op="any")).apply(x)
