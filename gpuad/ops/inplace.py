"""In-place ops: ``add_``, ``mul_``, ``div_``, ``fill_``, ``copy_``, ``clamp_``, ``x[i] = v``.

Outside the graph they write into the tensor's array and bump its version counter, so a
backward that saved the old values refuses to run. Inside the graph (the tensor or the
other operand requires grad) a non-leaf tensor is rebased: the out-of-place op records the
gradient, its result is written into the array, and the tensor takes the new grad_fn.
Leaves that require grad can only be changed under ``no_grad()``, as in PyTorch. Views are
not tracked: a view made in the graph cannot be changed in place there, and a view whose
tensor was changed in place after it was taken refuses to backward.
"""
import contextlib

from .. import dtypes, tracing
from ..autograd import grad_mode
from ..errors import broadcast_shapes, is_cpu_scalar
from ..tensor import Tensor
from . import elementwise as ew


def _in_graph(x, other=None):
    return grad_mode.is_grad_enabled() and (
        x._requires_grad or (isinstance(other, Tensor) and other._requires_grad))


def _apply(x, op_name, out_of_place, other=None, ufunc=None):
    """Change ``x`` in place to ``out_of_place(x)``; outside the graph a binary ``ufunc``
    writes straight into x's array."""
    if isinstance(other, Tensor):
        if other._backend is not x._backend and not _cpu_scalar_for(x, other):
            raise RuntimeError(f"{op_name}: the tensor is on {x.device} but the other "
                               f"operand is on {other.device}; move it with "
                               f".to('{x.device}')")
        shape = broadcast_shapes(x.shape, other.shape, op_name)
        if shape != x.shape:
            raise ValueError(f"{op_name}: the result of shape {shape} does not fit the "
                             f"tensor's shape {x.shape} (an in-place op cannot grow it)")
    if _in_graph(x, other):
        if x.grad_fn is None and x._requires_grad:
            raise RuntimeError(
                f"{op_name}: a leaf tensor that requires grad cannot be changed in place; "
                "wrap the update in `with gpuad.no_grad():`, or write x = x + ... instead")
        if x.grad_fn is not None and x.grad_fn.is_view:
            raise RuntimeError(
                f"{op_name}: this tensor is a view ({x.grad_fn.name}) of another tensor in the "
                "graph, and autograd does not carry an in-place change of a view over to the "
                "tensor it views; change a clone() of the view instead, or build the result "
                "out of place")
        # the old x as a graph tensor of its own: its own version counter, and its own
        # copy of the values when the op saved it (x.mul_(z) needs the old x for z's grad)
        alias = Tensor._make(x._data, x._backend, x.grad_fn, x._output_nr, None,
                             x._requires_grad)
        result = out_of_place(alias)
        if result.grad_fn is not None and any(
                t is alias for _, t in result.grad_fn.node.saved_entries()):
            with x._backend.device_scope or contextlib.nullcontext():  # CuPy copies there
                alias._data = x._data.copy()
        _write(x, result._data, op_name)
        x.grad_fn, x._output_nr, x._requires_grad = result.grad_fn, result._output_nr, True
    elif ufunc is not None:
        y = other
        if isinstance(other, Tensor):  # a CPU scalar is moved here (out_of_place's op moves it)
            y = (other if other._backend is x._backend else other.to(x.device))._data
        _check_castable(x, dtypes.result_type(x, other), op_name)
        _ufunc_into(x._backend, ufunc, x._data, y)
        x._version_counter[0] += 1
    else:
        with grad_mode.no_grad():
            result = out_of_place(x)
        _write(x, result._data, op_name)
    return x


def _cpu_scalar_for(x, value):
    """Whether ``value`` is a 0-d CPU tensor that a GPU tensor ``x`` takes as PyTorch does."""
    return is_cpu_scalar(value) and x.device.type != "cpu"


def _check_castable(x, dtype, op_name):
    if dtypes.is_floating(dtype) and not dtypes.is_floating(x.dtype):
        raise TypeError(f"{op_name}: the result is {dtypes.name(dtype)} and cannot be "
                        f"stored in a {dtypes.name(x.dtype)} tensor; convert the tensor "
                        "with .float() first")


def _write(x, arr, op_name):
    _check_castable(x, arr.dtype, op_name)
    _copy_into(x._backend, x._data, arr)
    x._version_counter[0] += 1


# the raw writes, as functions of their backend and arrays: gpuad.compile records and
# replays them
@tracing.traced(writes_in_place=True)
def _ufunc_into(backend, ufunc, x, y):
    getattr(backend.xp, ufunc)(x, y, out=x, casting="unsafe")


@tracing.traced(writes_in_place=True)
def _copy_into(backend, dst, src):
    backend.xp.copyto(dst, src, casting="unsafe")


@tracing.traced(writes_in_place=True)
def _fill(backend, x, value):
    x.fill(value)


@tracing.traced(writes_in_place=True)
def _set_index(backend, x, index, value):
    x[index] = value


@tracing.traced(writes_in_place=True)
def _set_index_moved(backend, x, index, value, move):
    from .shape import to_numpy_order, to_torch_order
    xp = backend.xp
    shape = to_torch_order(xp, x[index], move).shape  # the shape v broadcasts to
    x[index] = to_numpy_order(xp, xp.broadcast_to(xp.asarray(value, dtype=x.dtype), shape),
                              move)


def add_(x, other, alpha=1):
    if alpha != 1:
        other = other * alpha
    return _apply(x, "add_", lambda t: ew.add(t, other), other, "add")


def mul_(x, other):
    return _apply(x, "mul_", lambda t: ew.mul(t, other), other, "multiply")


def div_(x, other):
    _check_castable(x, dtypes.get_default_dtype(), "div_")
    return _apply(x, "div_", lambda t: ew.div(t, other), other, "true_divide")


def clamp_(x, min=None, max=None):
    return _apply(x, "clamp_", lambda t: ew.clamp(t, min, max))


def fill_(x, value):
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"fill_ takes a number or a one-element tensor, got shape "
                             f"{value.shape}")
        return copy_(x, value.reshape(()))
    if _in_graph(x):
        return _apply(x, "fill_", lambda t: ew.FillLike(value).apply(t))
    _fill(x._backend, x._data, value)
    x._version_counter[0] += 1
    return x


def copy_(x, src):
    """Copy ``src`` (broadcast, converted to x's dtype and device) into ``x``."""
    if not isinstance(src, Tensor):
        backend = x._backend
        src = Tensor._make(backend.asarray(src) if hasattr(src, "__array__") else
                           backend.constant(src), backend)
    if src.device != x.device:
        src = src.to(x.device)
    return _apply(x, "copy_", lambda t: ew.CopyFrom().apply(t, src), src)


def setitem(x, index, value):
    """``x[index] = value``, outside the graph only."""
    from .shape import _as_index, torch_order
    if _in_graph(x, value):
        raise RuntimeError("assigning into a tensor (x[i] = v) is not recorded by autograd; "
                           "build the result with gpuad.where or gpuad.cat, or assign under "
                           "gpuad.no_grad()")
    idx, advanced, _ = _as_index(index, x)
    if isinstance(value, Tensor):
        if value.device != x.device:
            if not _cpu_scalar_for(x, value):
                raise RuntimeError(f"x[i] = v: x is on {x.device} but v is on {value.device}; "
                                   f"move v with .to('{x.device}')")
            value = value.to(x.device)
        value = value._data
    move = torch_order(idx, x.ndim) if advanced else None
    if move is not None:  # v is laid out in PyTorch's order of the indexed dims
        _set_index_moved(x._backend, x._data, idx, value, move)
    else:
        _set_index(x._backend, x._data, idx, value)
    x._version_counter[0] += 1
