"""Elementwise ops: arithmetic, math functions, comparisons (activations: activation.py).

Binary ops broadcast like NumPy and promote dtypes like PyTorch; their backward sums
each gradient back to its input's shape (``sum_to``).
"""
import builtins

from .. import dtypes
from ..autograd.function import Function
from ..errors import broadcast_shapes
from ..tensor import Tensor
from .shape import expand, sum_to


def as_operands(a, b, op, broadcast=True, wide_scalars=False):
    """Both operands as Tensors of one dtype on one device (Python numbers become 0-d),
    checked to broadcast against each other unless ``broadcast=False``.

    ``wide_scalars``: the op computes a float16 tensor with a Python number in float32
    (as PyTorch's mul, div and comparisons do), so a number beyond float16's range raises
    ``_BeyondFloat16`` for the op to take that path; elsewhere it becomes inf, as there."""
    if not (isinstance(a, Tensor) and isinstance(b, Tensor) and a._data.dtype == b._data.dtype):
        dtype = dtypes.result_type(a, b)
        like = a if isinstance(a, Tensor) else b
        if wide_scalars and dtype is dtypes.float16:
            _check_fits_float16(b if like is a else a)
        a, b = _as_tensor(a, like, dtype), _as_tensor(b, like, dtype)
    sa, sb = a._data.shape, b._data.shape
    if broadcast and sa != sb and sa and sb:  # a 0-d operand broadcasts to any shape
        broadcast_shapes(sa, sb, op)
    return a, b


class _BeyondFloat16(Exception):
    """A Python number that float16 cannot hold met a float16 tensor in an op that
    computes in float32 then (``x / 1e6`` is not ``x / inf``)."""


def _check_fits_float16(x):
    if not isinstance(x, Tensor) and 65504.0 < builtins.abs(x) < float("inf"):
        raise _BeyondFloat16


def _as_tensor(x, like, dtype):
    if isinstance(x, Tensor):
        return x if x._data.dtype == dtype else cast(x, dtype)
    backend = like._backend
    return Tensor._make(backend.constant(x, dtype), backend)


def _in_float32(op, a, b):
    """``op(a, b)`` for a float16 tensor and a Python number beyond float16's range:
    computed in float32, a floating result rounded to float16."""
    a, b = [cast(v, dtypes.float32) if isinstance(v, Tensor) else v for v in (a, b)]
    out = op(a, b)
    return cast(out, dtypes.float16) if out.dtype is dtypes.float32 else out


class Cast(Function):
    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.in_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return cast(gy, self.in_dtype) if dtypes.is_floating(self.in_dtype) else None

    def jvp(self, t):
        return cast(t, self.dtype)


def cast(x, dtype):
    return Cast(dtype).apply(x)


class Clone(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy

    def jvp(self, t):
        return t


def clone(x):
    return Clone().apply(x)


class FillLike(Function):
    """A tensor like ``x`` filled with ``value``; x gets a zero gradient, as in PyTorch."""

    def __init__(self, value):
        self.value = value

    def forward(self, x):
        return self.xp.full_like(x, self.value)

    def backward(self, gy):
        return self.zero_tangent(0)

    def jvp(self, t):
        return None


class CopyFrom(Function):
    """``x``'s shape and dtype holding ``src``'s values; x's gradient is zero."""

    def forward(self, x, src):
        self.src_shape, self.out_shape, self.out_dtype = src.shape, x.shape, x.dtype
        out = self.xp.empty_like(x)
        out[...] = src
        return out

    def backward(self, gy):
        return self.zero_tangent(0), sum_to(gy, self.src_shape)

    def jvp(self, tx, tsrc):
        return None if tsrc is None else expand(cast(tsrc, self.out_dtype), self.out_shape)


def _tangent_sum(shape, *terms):
    """Forward mode: the sum of the tangent terms that exist, broadcast to ``shape``."""
    terms = [t for t in terms if t is not None]
    if not terms:
        return None
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total if total.shape == shape else expand(total, shape)


class Add(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, gy):
        na, nb = self.needs_input_grad
        return (sum_to(gy, self.shapes[0]) if na else None,
                sum_to(gy, self.shapes[1]) if nb else None)

    def jvp(self, ta, tb):
        return _tangent_sum(broadcast_shapes(*self.shapes), ta, tb)


class Sub(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, gy):
        na, nb = self.needs_input_grad
        return (sum_to(gy, self.shapes[0]) if na else None,
                sum_to(-gy, self.shapes[1]) if nb else None)

    def jvp(self, ta, tb):
        return _tangent_sum(broadcast_shapes(*self.shapes), ta, None if tb is None else -tb)


class Mul(Function):
    def forward(self, a, b):
        na, nb = self.needs_input_grad
        self.shapes = a.shape, b.shape
        self.save_for_backward(b if na else None, a if nb else None)
        return a * b

    def backward(self, gy):
        b, a = self.saved_tensors
        return (sum_to(gy * b, self.shapes[0]) if b is not None else None,
                sum_to(gy * a, self.shapes[1]) if a is not None else None)

    def jvp(self, ta, tb):
        b, a = self.saved_tensors
        return _tangent_sum(broadcast_shapes(*self.shapes), None if ta is None else ta * b,
                            None if tb is None else a * tb)


class Div(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a / b

    def backward(self, gy):
        a, b = self.saved_tensors
        na, nb = self.needs_input_grad
        ga = gy / b
        return (sum_to(ga, a.shape) if na else None,
                sum_to(-ga * a / b, b.shape) if nb else None)

    def jvp(self, ta, tb):
        a, b = self.saved_tensors
        return _tangent_sum(broadcast_shapes(a.shape, b.shape),
                            None if ta is None else ta / b,
                            None if tb is None else -tb * a / (b * b))


class PowScalar(Function):
    """``x ** p`` for a Python number ``p``."""

    def __init__(self, p):
        self.p = p

    def forward(self, x):
        self.save_for_backward(x)
        p = self.p
        if x.dtype.kind == "f" and p in (-0.5, 3, -2):  # PyTorch's special cases, which
            if p == -0.5:                                # round (and treat -inf) like this
                return 1 / self.xp.sqrt(x)
            return x * x * x if p == 3 else 1 / (x * x)
        return x ** p

    def backward(self, gy):
        x, = self.saved_tensors
        if self.p == 0:  # zero, also where x ** -1 is inf or gy is not finite (as in PyTorch)
            return self.zero_tangent(0)
        if self.p == 2:
            return gy * (2 * x)
        return gy * (self.p * x ** (self.p - 1))

    jvp = backward  # elementwise: the tangent is scaled like the gradient


class Pow(Function):
    """``a ** b`` with ``b`` a tensor; PyTorch's gradients at the special points: none
    for ``a`` where ``b == 0``, none for ``b`` where ``a == 0 <= b``, NaN for ``b`` where
    ``a < 0``."""

    def forward(self, a, b):
        kind = a.dtype.kind
        if kind == "f":
            y = a ** b
        else:  # NumPy would refuse negative powers of ints, and give bools int8
            y = _int_pow(self.xp, a, b) if kind != "b" else self.xp.logical_or(a, ~b)
        self.save_for_backward(a, b, y)
        return y

    def backward(self, gy):
        a, b, y = self.saved_tensors
        na, nb = self.needs_input_grad
        return (sum_to(gy * _pow_slope(a, b), a.shape) if na else None,
                sum_to(gy * _pow_log_slope(a, b, y), b.shape) if nb else None)

    def jvp(self, ta, tb):
        a, b, y = self.saved_tensors
        return _tangent_sum(y.shape, None if ta is None else ta * _pow_slope(a, b),
                            None if tb is None else tb * _pow_log_slope(a, b, y))


def _int_pow(xp, a, b):
    """Integer ``a ** b`` as PyTorch computes it, negative exponents included (where NumPy
    refuses): 1 for a base of 1, +-1 for -1, else 0."""
    negative = b < 0
    y = a ** xp.where(negative, b.dtype.type(0), b)
    one = a.dtype.type(1)
    sign = xp.where((a == -1) & (b % 2 == 1), -one, one)
    return xp.where(negative, xp.where((a == 1) | (a == -1), sign, a.dtype.type(0)), y)


def _pow_slope(a, b):
    """``d(a ** b)/da = b * a ** (b - 1)``, zero where ``b == 0``."""
    return where(b == 0, 0, b * a ** (b - 1))


def _pow_log_slope(a, b, y):
    """``d(a ** b)/db = a ** b * log(a)``, zero where ``a == 0`` and ``b >= 0``."""
    return where((a == 0) & (b >= 0), 0, y * log(a))


def add(a, b):
    return Add().apply(*as_operands(a, b, "add"))


def sub(a, b):
    x, y = as_operands(a, b, "sub")
    # a bool operand that promotion hid (bool tensor - int, int tensor - True) is refused too
    if x._data.dtype is dtypes.bool_ or (x is not a and _is_bool(a)) or (
            y is not b and _is_bool(b)):
        raise TypeError("sub: subtraction with a bool operand is not supported (as in "
                        "PyTorch); use ^ or logical_xor() to compare masks, ~ to invert one")
    return Sub().apply(x, y)


def _is_bool(v):
    return v is True or v is False or (isinstance(v, Tensor) and v._data.dtype is dtypes.bool_)


def mul(a, b):
    try:
        return Mul().apply(*as_operands(a, b, "mul", wide_scalars=True))
    except _BeyondFloat16:
        return _in_float32(mul, a, b)


def div(a, b):
    """True division: integer tensors give the default float dtype, as in PyTorch."""
    try:
        a, b = as_operands(a, b, "div", wide_scalars=True)
    except _BeyondFloat16:
        return _in_float32(div, a, b)
    if not dtypes.is_floating(a.dtype):
        a, b = cast(a, dtypes.get_default_dtype()), cast(b, dtypes.get_default_dtype())
    return Div().apply(a, b)


def pow(a, b):
    if isinstance(a, Tensor) and isinstance(b, (int, float)) and not isinstance(b, bool):
        if a._data.dtype.kind != "f":  # int ** 0.5 is float, bool ** 2 is int64
            dtype = dtypes.result_type(a, b)
            if dtype != a.dtype:
                a = cast(a, dtype)
        return PowScalar(b).apply(a)
    return Pow().apply(*as_operands(a, b, "pow"))


class _Unary(Function):
    """An op ``y = f(x)`` whose derivative is written from what it saves.

    Its Jacobian is diagonal, so forward mode scales the tangent as backward scales the
    gradient."""

    def jvp(self, t):
        return self.backward(t)


class Neg(_Unary):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Exp(_Unary):
    def forward(self, x):
        y = self.xp.exp(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        y, = self.saved_tensors
        return gy * y


class Log(_Unary):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.log(x)

    def backward(self, gy):
        x, = self.saved_tensors
        return gy / x


class Sqrt(_Unary):
    def forward(self, x):
        y = self.xp.sqrt(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        y, = self.saved_tensors
        return gy / (2 * y)


class Sign(_Unary):
    """``sign(x)``; its gradient is zero everywhere (as in PyTorch), not missing."""

    def forward(self, x):
        return x.copy() if x.dtype == dtypes.bool_ else self.xp.sign(x)

    def backward(self, gy):
        return self.zero_tangent(0)


class Abs(_Unary):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.abs(x)

    def backward(self, gy):
        x, = self.saved_tensors
        return gy * sign(x)


class Erf(_Unary):
    def forward(self, x):
        self.save_for_backward(x)
        return self.backend.erf(x)

    def backward(self, gy):
        x, = self.saved_tensors
        return gy * (1.1283791670955126 * exp(-x * x))


class Clamp(_Unary):
    """``clamp`` with Python-number bounds."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.clip(x, self.lo, self.hi)

    def backward(self, gy):
        x, = self.saved_tensors
        keep = x == x  # all True: NaN stays out of the gradient as in PyTorch
        if self.lo is not None:
            keep = keep & (x >= self.lo)
        if self.hi is not None:
            keep = keep & (x <= self.hi)
        return gy * keep


class ClampBy(Function):
    """``clamp`` with tensor bounds: inputs ``x`` and the bounds given (``lo``, ``hi`` or
    both), broadcast together. Each element's gradient goes where PyTorch sends it: to
    ``x`` where ``lo <= x <= hi``, else to the bound that decided the value (``hi`` where
    ``lo > hi``)."""

    def __init__(self, has_lo, has_hi):
        self.has_lo, self.has_hi = has_lo, has_hi

    def forward(self, x, *bounds):
        xp = self.xp
        self.shapes = [x.shape] + [b.shape for b in bounds]
        y = x
        if self.has_lo:
            y = xp.maximum(y, bounds[0])
        if self.has_hi:
            y = xp.minimum(y, bounds[-1])
        if y is x:
            y = x.copy()
        self.save_for_backward(x, *bounds)
        return y

    def _masks(self):
        """Which input each element's gradient goes to: ``[to x, to lo?, to hi?]``."""
        x, *bounds = self.saved_tensors
        lo = bounds[0] if self.has_lo else None
        hi = bounds[-1] if self.has_hi else None
        if lo is not None and hi is not None:
            return [(x >= lo) & (x <= hi), (x < lo) & (lo < hi), (x > hi) | (hi < lo)]
        if lo is not None:
            return [x >= lo, x < lo]
        return [x <= hi, x > hi]

    def backward(self, gy):
        zero = Tensor._make(self.backend.constant(0, gy.dtype), self.backend)
        return tuple(sum_to(where(m, gy, zero), shape) if needed else None
                     for m, shape, needed in zip(self._masks(), self.shapes,
                                                 self.needs_input_grad))

    def jvp(self, *tangents):
        shape = broadcast_shapes(*self.shapes)
        return _tangent_sum(shape, *[None if t is None else where(m, t, 0)
                                     for m, t in zip(self._masks(), tangents)])


def neg(x):
    return Neg().apply(x)


def exp(x):
    return Exp().apply(_floating(x))


def log(x):
    return Log().apply(_floating(x))


def sqrt(x):
    return Sqrt().apply(_floating(x))


def sign(x):
    return Sign().apply(x)


def abs(x):
    if x._data.dtype is dtypes.bool_:
        raise TypeError("abs of a bool tensor is not supported (as in PyTorch)")
    return Abs().apply(x)


def erf(x):
    return Erf().apply(_floating(x))


def clamp(x, min=None, max=None):
    """Limit values to ``[min, max]`` (Python numbers or tensors, which broadcast); where
    ``min > max`` the result is ``max``. The gradient passes where ``min <= x <= max``,
    and to a tensor bound where it decided the value."""
    if min is None and max is None:
        raise ValueError("clamp needs at least one of min and max")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        bounds = [b for b in (min, max) if b is not None]
        dtype = dtypes.result_type(x, *bounds)
        x, *bounds = [_as_tensor(v, x, dtype) for v in (x, *bounds)]
        shape = x.shape
        for b in bounds:
            shape = broadcast_shapes(shape, b.shape, "clamp")
        return ClampBy(min is not None, max is not None).apply(x, *bounds)
    if x._data.dtype.kind != "f":  # an integer or bool tensor: promoted as in PyTorch
        dtype = dtypes.result_type(x, *[b for b in (min, max) if b is not None])
        if dtype != x.dtype:
            x = cast(x, dtype)
    return Clamp(min, max).apply(x)


def _floating(x):
    return x if dtypes.is_floating(x.dtype) else cast(x, dtypes.get_default_dtype())


class Maximum(Function):
    """Elementwise max, NaN propagating; on ties each input gets half the gradient, and
    where one input is NaN both get all of it, as in PyTorch."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.xp.maximum(a, b)

    def backward(self, gy):
        a, b = self.saved_tensors
        return _split_by(gy, a < b, a > b, a, b, self.needs_input_grad)

    def jvp(self, ta, tb):
        a, b = self.saved_tensors
        return _blend(ta, tb, a < b, a > b, a, b)


class Minimum(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.xp.minimum(a, b)

    def backward(self, gy):
        a, b = self.saved_tensors
        return _split_by(gy, a > b, a < b, a, b, self.needs_input_grad)

    def jvp(self, ta, tb):
        a, b = self.saved_tensors
        return _blend(ta, tb, a > b, a < b, a, b)


def _shares(a_loses, b_loses, a, b, dtype):
    """Each input's share of the gradient: 1/2 on ties, 0 where it lost, else 1."""
    half = where(a == b, 0.5, 1.0).to(dtype)
    return where(a_loses, 0.0, half), where(b_loses, 0.0, half)


def _split_by(gy, a_loses, b_loses, a, b, needs):
    wa, wb = _shares(a_loses, b_loses, a, b, gy.dtype)
    return (sum_to(gy * wa, a.shape) if needs[0] else None,
            sum_to(gy * wb, b.shape) if needs[1] else None)


def _blend(ta, tb, a_loses, b_loses, a, b):
    dtype = (ta if ta is not None else tb).dtype
    wa, wb = _shares(a_loses, b_loses, a, b, dtype)
    return _tangent_sum(broadcast_shapes(a.shape, b.shape),
                        None if ta is None else ta * wa, None if tb is None else tb * wb)


def maximum(a, b):
    return Maximum().apply(*as_operands(a, b, "maximum"))


def minimum(a, b):
    return Minimum().apply(*as_operands(a, b, "minimum"))


class Where(Function):
    def forward(self, cond, a, b):
        self.shapes = a.shape, b.shape
        self.save_for_backward(cond)
        return self.xp.where(cond, a, b)

    def backward(self, gy):
        cond, = self.saved_tensors
        zero = Tensor._make(self.backend.constant(0, gy.dtype), self.backend)
        _, na, nb = self.needs_input_grad
        return (None,
                sum_to(where(cond, gy, zero), self.shapes[0]) if na else None,
                sum_to(where(cond, zero, gy), self.shapes[1]) if nb else None)

    def jvp(self, tc, ta, tb):
        cond, = self.saved_tensors
        ta = self.zero_tangent(1) if ta is None else ta
        tb = self.zero_tangent(2) if tb is None else tb
        return where(cond, ta, tb)


def where(cond, a, b):
    """``a`` where ``cond`` is true, else ``b``; ``a`` and ``b`` may be Python numbers."""
    if not isinstance(cond, Tensor):
        raise TypeError("where: the condition must be a bool Tensor")
    if cond.dtype != dtypes.bool_:
        cond = cond != 0
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = Tensor._make(cond._backend.constant(a, dtypes.result_type(a, b)), cond._backend)
    a, b = as_operands(a, b, "where")
    broadcast_shapes(cond.shape, broadcast_shapes(a.shape, b.shape), "where")
    return Where().apply(cond, a, b)


class _Compare(Function):
    differentiable = False

    def __init__(self, ufunc):
        self.ufunc = ufunc

    def forward(self, a, b):
        return getattr(self.xp, self.ufunc)(a, b)


def _compare(ufunc):
    def compare(a, b):
        try:
            return _Compare(ufunc).apply(*as_operands(a, b, ufunc, wide_scalars=True))
        except _BeyondFloat16:
            return _in_float32(compare, a, b)
    compare.__name__ = ufunc
    return compare


lt, le, gt, ge = _compare("less"), _compare("less_equal"), _compare("greater"), \
    _compare("greater_equal")
eq, ne = _compare("equal"), _compare("not_equal")
logical_and, logical_or = _compare("logical_and"), _compare("logical_or")
logical_xor = _compare("logical_xor")


class LogicalNot(Function):
    differentiable = False

    def forward(self, x):
        return self.xp.logical_not(x)


def logical_not(x):
    return LogicalNot().apply(x)


# --- bitwise: on integers bit by bit, on bools logical (the dtype does not change) --------
def _integral(x, op):
    if x._data.dtype.kind not in "biu":
        raise TypeError(f"{op} is only defined on integer or bool tensors, got "
                        f"{dtypes.name(x.dtype)}; for masks compare first (x > 0), or "
                        "convert with .long()")
    return x


def _bitwise(ufunc, name):
    def op(a, b):
        a, b = as_operands(a, b, name)
        return _Compare(ufunc).apply(_integral(a, name), b)
    op.__name__ = name
    return op


bitwise_and = _bitwise("bitwise_and", "bitwise_and")
bitwise_or = _bitwise("bitwise_or", "bitwise_or")
bitwise_xor = _bitwise("bitwise_xor", "bitwise_xor")


class BitwiseNot(Function):
    differentiable = False

    def forward(self, x):
        return self.xp.invert(x)


def bitwise_not(x):
    """``~x``: each bit flipped on integers, logical not on bools."""
    return BitwiseNot().apply(_integral(x, "bitwise_not"))


class Shift(Function):
    """``a << s`` or ``a >> s`` with PyTorch's results for every shift: a left shift by a
    negative amount or by the width or more gives 0, such a right shift fills with the sign
    bit (in C both are undefined, so they are never left to the array library)."""

    differentiable = False

    def __init__(self, left):
        self.left = left

    def forward(self, a, s):
        xp, t = self.xp, s.dtype.type  # scalars typed: CuPy may widen Python ints
        width = a.dtype.itemsize * 8
        out_of_range = (s < 0) | (s >= width)
        if self.left:
            return xp.where(out_of_range, a.dtype.type(0),
                            xp.left_shift(a, xp.where(out_of_range, t(0), s)))
        return xp.right_shift(a, xp.where(out_of_range, t(width - 1), s))


def _shift(a, s, left):
    name = "bitwise_left_shift" if left else "bitwise_right_shift"
    a, s = as_operands(a, s, name)
    if _integral(a, name)._data.dtype == dtypes.bool_:
        raise TypeError(f"{name} of two bool operands is not supported (as in PyTorch); "
                        "convert them with .long()")
    return Shift(left).apply(a, s)


def bitwise_left_shift(a, s):
    """``a << s``: bits of integer ``a`` moved left by ``s``."""
    return _shift(a, s, True)


def bitwise_right_shift(a, s):
    """``a >> s``: bits of integer ``a`` moved right by ``s``, the sign bit filling in."""
    return _shift(a, s, False)


def bitwise_into(x, op, other):
    """``x op= other`` in place (``&=``, ``|=``, ``^=``, ``<<=``, ``>>=``): the result is
    written into ``x``, whose dtype it must fit (an int result cannot go into a bool)."""
    result = op(x, other)
    if result.dtype != x.dtype and (result.dtype.kind == "i") > (x.dtype.kind == "i"):
        raise TypeError(f"the result is {dtypes.name(result.dtype)} and cannot be stored in "
                        f"the {dtypes.name(x.dtype)} tensor being changed in place")
    return x.copy_(result)
