"""Elementwise ops: arithmetic, math functions, comparisons (activations: activation.py).

Binary ops broadcast like NumPy and promote dtypes like PyTorch; their backward sums
each gradient back to its input's shape (``sum_to``).
"""
from .. import dtypes
from ..autograd.function import Function
from ..errors import broadcast_shapes
from ..tensor import Tensor
from .shape import expand, sum_to


def as_operands(a, b, op, broadcast=True):
    """Both operands as Tensors of one dtype on one device (Python numbers become 0-d),
    checked to broadcast against each other unless ``broadcast=False``."""
    if not (isinstance(a, Tensor) and isinstance(b, Tensor) and a._data.dtype == b._data.dtype):
        dtype = dtypes.result_type(a, b)
        like = a if isinstance(a, Tensor) else b
        a, b = _as_tensor(a, like, dtype), _as_tensor(b, like, dtype)
    sa, sb = a._data.shape, b._data.shape
    if broadcast and sa != sb and sa and sb:  # a 0-d operand broadcasts to any shape
        broadcast_shapes(sa, sb, op)
    return a, b


def _as_tensor(x, like, dtype):
    if isinstance(x, Tensor):
        return x if x._data.dtype == dtype else cast(x, dtype)
    backend = like._backend
    return Tensor._make(backend.xp.asarray(x, dtype=dtype), backend)


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
        return x ** self.p

    def backward(self, gy):
        x, = self.saved_tensors
        if self.p == 2:
            return gy * (2 * x)
        if self.p == 0:  # zero, also at x = 0 where x ** -1 is inf (as in PyTorch)
            return gy * 0
        return gy * (self.p * x ** (self.p - 1))

    jvp = backward  # elementwise: the tangent is scaled like the gradient


class Pow(Function):
    """``a ** b`` with ``b`` a tensor."""

    def forward(self, a, b):
        y = a ** b
        self.save_for_backward(a, b, y)
        return y

    def backward(self, gy):
        a, b, y = self.saved_tensors
        na, nb = self.needs_input_grad
        return (sum_to(gy * _pow_slope(a, b), a.shape) if na else None,
                sum_to(gy * y * log(where(a > 0, a, 1)), b.shape) if nb else None)

    def jvp(self, ta, tb):
        a, b, y = self.saved_tensors
        return _tangent_sum(y.shape, None if ta is None else ta * _pow_slope(a, b),
                            None if tb is None else tb * y * log(where(a > 0, a, 1)))


def _pow_slope(a, b):
    """``b * a ** (b - 1)``, zero where ``b == 0`` (also at ``a == 0``, as in PyTorch)."""
    return b * a ** where(b == 0, 1, b - 1)


def add(a, b):
    return Add().apply(*as_operands(a, b, "add"))


def sub(a, b):
    return Sub().apply(*as_operands(a, b, "sub"))


def mul(a, b):
    return Mul().apply(*as_operands(a, b, "mul"))


def div(a, b):
    """True division: integer tensors give the default float dtype, as in PyTorch."""
    a, b = as_operands(a, b, "div")
    if not dtypes.is_floating(a.dtype):
        a, b = cast(a, dtypes.get_default_dtype()), cast(b, dtypes.get_default_dtype())
    return Div().apply(a, b)


def pow(a, b):
    if isinstance(a, Tensor) and isinstance(b, (int, float)) and not isinstance(b, bool):
        if isinstance(b, float) and not dtypes.is_floating(a.dtype):
            a = cast(a, dtypes.get_default_dtype())
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
    differentiable = False

    def forward(self, x):
        return self.xp.sign(x)


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
    return Abs().apply(x)


def erf(x):
    return Erf().apply(_floating(x))


def clamp(x, min=None, max=None):
    """Limit values to ``[min, max]``; the gradient passes where ``min <= x <= max``."""
    if min is None and max is None:
        raise ValueError("clamp needs at least one of min and max")
    return Clamp(min, max).apply(x)


def _floating(x):
    return x if dtypes.is_floating(x.dtype) else cast(x, dtypes.get_default_dtype())


class Maximum(Function):
    """Elementwise max; on ties each input gets half the gradient, as in PyTorch."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.xp.maximum(a, b)

    def backward(self, gy):
        a, b = self.saved_tensors
        return _split_by(gy, a > b, a == b, a.shape, b.shape, self.needs_input_grad)

    def jvp(self, ta, tb):
        a, b = self.saved_tensors
        return _blend(ta, tb, a > b, a == b)


class Minimum(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.xp.minimum(a, b)

    def backward(self, gy):
        a, b = self.saved_tensors
        return _split_by(gy, a < b, a == b, a.shape, b.shape, self.needs_input_grad)

    def jvp(self, ta, tb):
        a, b = self.saved_tensors
        return _blend(ta, tb, a < b, a == b)


def _split_by(gy, a_wins, tie, a_shape, b_shape, needs):
    share = where(tie, 0.5, where(a_wins, 1.0, 0.0)).to(gy.dtype)
    return (sum_to(gy * share, a_shape) if needs[0] else None,
            sum_to(gy * (1 - share), b_shape) if needs[1] else None)


def _blend(ta, tb, a_wins, tie):
    share = where(tie, 0.5, where(a_wins, 1.0, 0.0))
    shape = broadcast_shapes(a_wins.shape, tie.shape)
    return _tangent_sum(shape, None if ta is None else ta * share,
                        None if tb is None else tb * (1 - share))


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
        zero = Tensor._make(self.xp.zeros((), gy.dtype), self.backend)
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
        a = Tensor._make(cond._backend.xp.asarray(a, dtype=dtypes.result_type(a, b)),
                         cond._backend)
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
        return _Compare(ufunc).apply(*as_operands(a, b, ufunc))
    compare.__name__ = ufunc
    return compare


lt, le, gt, ge = _compare("less"), _compare("less_equal"), _compare("greater"), \
    _compare("greater_equal")
eq, ne = _compare("equal"), _compare("not_equal")
logical_and, logical_or = _compare("logical_and"), _compare("logical_or")


class LogicalNot(Function):
    differentiable = False

    def forward(self, x):
        return self.xp.logical_not(x)


def logical_not(x):
    return LogicalNot().apply(x)
