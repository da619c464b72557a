"""Reductions: sum, mean, max, min, var, logsumexp, and the non-differentiable arg/any/all.

Each takes ``dim`` (or ``axis``) as an int, a tuple or None (all dims), and ``keepdim``
(or ``keepdims``).
"""
import builtins

from .. import dtypes
from ..autograd.function import Function
from .shape import _dim, expand, reshape


def reduce_dims(x, dim, keepdim, axis=None, keepdims=None, op="reduce"):
    """Normalise the dim/axis and keepdim/keepdims spellings to (dims tuple, keepdim)."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: pass dim or axis, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    if dim is None:
        return tuple(range(x.ndim)), bool(keepdim)
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    norm = tuple(sorted({_dim(d, x.ndim, op) for d in dims}))
    if len(norm) != len(dims):
        raise ValueError(f"{op}: dim {dim} names a dimension twice")
    return norm, bool(keepdim)


def _kept_shape(shape, dims):
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


def _spread(gy, in_shape, dims):
    """The gradient of a reduction, broadcast back over the reduced dims."""
    if gy.ndim:  # a 0-d gradient (of a full reduction) broadcasts as it is
        gy = reshape(gy, _kept_shape(in_shape, dims))
    return expand(gy, in_shape)


class Sum(Function):
    def __init__(self, dims, keepdim, dtype):
        self.dims, self.keepdim, self.dtype = dims, keepdim, dtype

    def forward(self, x):
        self.in_shape = x.shape
        return x.sum(axis=self.dims, keepdims=self.keepdim, dtype=self.dtype)

    def backward(self, gy):
        return _spread(gy, self.in_shape, self.dims)

    def jvp(self, t):
        return Sum(self.dims, self.keepdim, self.dtype).apply(t)


def sum(x, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None):
    dims, keepdim = reduce_dims(x, dim, keepdim, axis, keepdims, "sum")
    if dtype is None and not dtypes.is_floating(x.dtype):
        dtype = dtypes.int64  # bool and int sums count in int64, as in PyTorch
    return Sum(dims, keepdim, None if dtype is None else dtypes.as_dtype(dtype)).apply(x)


def _count(x, dims):
    n = 1
    for d in dims:
        n *= x.shape[d]
    return n


def mean(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"mean of a {dtypes.name(x.dtype)} tensor; convert it with .float() "
                        "first")
    dims, keepdim = reduce_dims(x, dim, keepdim, axis, keepdims, "mean")
    return sum(x, dims, keepdim) / _count(x, dims)


class _Extreme(Function):
    """max or min; the gradient goes to the chosen element (one per slice with an int
    dim, as in PyTorch; shared evenly among ties over a full reduction)."""

    def __init__(self, which, dims, keepdim, single_dim):
        self.which, self.dims, self.keepdim, self.single = which, dims, keepdim, single_dim

    def forward(self, x):
        xp = self.xp
        y = getattr(xp, self.which)(x, axis=self.dims, keepdims=True)
        if self.needs_input_grad[0]:
            if self.single:
                d = self.dims[0]
                idx = getattr(xp, "arg" + self.which)(x, axis=d, keepdims=True)
                pos = xp.arange(x.shape[d]).reshape((-1,) + (1,) * (x.ndim - d - 1))
                mask = (pos == idx).astype(x.dtype)
            else:
                mask = (x == y).astype(x.dtype)
                mask /= mask.sum(axis=self.dims, keepdims=True)
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


def _extreme(which, x, dim, keepdim, axis, keepdims):
    dims, keepdim = reduce_dims(x, dim, keepdim, axis, keepdims, which)
    if x.numel() == 0:
        raise ValueError(f"{which} of an empty tensor (shape {x.shape}) has no value")
    single = (axis if dim is None else dim) is not None and len(dims) == 1
    return _Extreme(which, dims, keepdim, single).apply(x)


def max(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Largest value over ``dim`` (all dims when None); returns the values tensor."""
    return _extreme("max", x, dim, keepdim, axis, keepdims)


def min(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Smallest value over ``dim`` (all dims when None); returns the values tensor."""
    return _extreme("min", x, dim, keepdim, axis, keepdims)


def var(x, dim=None, keepdim=False, *, unbiased=True, correction=None, axis=None,
        keepdims=None):
    """Variance; ``correction=1`` (or ``unbiased=True``) divides by n - 1."""
    dims, keepdim = reduce_dims(x, dim, keepdim, axis, keepdims, "var")
    if correction is None:
        correction = 1 if unbiased else 0
    diff = x - mean(x, dims, True)
    return sum(diff * diff, dims, keepdim) / builtins.max(_count(x, dims) - correction, 0)


class LogSumExp(Function):
    def __init__(self, dims, keepdim):
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x):
        xp = self.xp
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
        from .elementwise import exp
        y = reshape(y, _kept_shape(self.in_shape, self.dims))
        return _spread(gy, self.in_shape, self.dims) * exp(x - y)

    def jvp(self, t):
        x, y = self.saved_tensors
        from .elementwise import exp
        weights = exp(x - reshape(y, _kept_shape(self.in_shape, self.dims)))
        return sum(t * weights, self.dims, self.keepdim)


def logsumexp(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """``log(sum(exp(x)))`` over ``dim`` (or ``axis``), computed without overflow."""
    if dim is None and axis is None:
        raise TypeError("logsumexp: pass the dim (or axis) to reduce over, as in PyTorch")
    dims, keepdim = reduce_dims(x, dim, keepdim, axis, keepdims, "logsumexp")
    return LogSumExp(dims, keepdim).apply(x)


class _Index(Function):
    differentiable = False

    def __init__(self, fn, dim, keepdim):
        self.fn, self.dim, self.keepdim = fn, dim, keepdim

    def forward(self, x):
        out = getattr(self.xp, self.fn)(x, axis=self.dim)
        if self.keepdim and self.dim is not None:
            out = self.xp.expand_dims(out, self.dim)
        elif self.keepdim:
            out = out.reshape((1,) * x.ndim)
        return out.astype(dtypes.int64) if self.fn.startswith("arg") else out


def argmax(x, dim=None, keepdim=False):
    d = None if dim is None else _dim(dim, x.ndim, "argmax")
    return _Index("argmax", d, keepdim).apply(x)


def argmin(x, dim=None, keepdim=False):
    d = None if dim is None else _dim(dim, x.ndim, "argmin")
    return _Index("argmin", d, keepdim).apply(x)


def all(x, dim=None, keepdim=False):
    d = None if dim is None else _dim(dim, x.ndim, "all")
    return _Index("all", d, keepdim).apply(x)


def any(x, dim=None, keepdim=False):
    d = None if dim is None else _dim(dim, x.ndim, "any")
    return _Index("any", d, keepdim).apply(x)
