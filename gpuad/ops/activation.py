"""Activation ops: one op for every entry of the activation table (``gpuad.activations``),
the functions users call (``relu``, ``leaky_relu``, ...: one per entry), and softplus."""
from types import SimpleNamespace

from .. import activations, dtypes
from ..autograd.function import Function
from .elementwise import _floating, erf, exp, maximum, where


class ActivationOp(Function):
    """``activation(x)`` for a table entry and its parameter: forward is the entry's
    formula on the backend's arrays, backward its formula on Tensors (differentiable),
    fused_backward the backend's ``act_backward`` kernel. Each entry has its subclass in
    ``OPS`` (``Relu``, ``LeakyRelu``, ...: the op's name in graphs and reports), which
    sets ``activation``, the default ``param`` and what backward takes at it
    (``saves_output``); an instance with another ``param`` sets both."""

    activation = None

    def forward(self, x):
        y = self.activation.forward(self.backend.math, x, self.param)
        self.save_for_backward(y if self.saves_output else x)
        return y

    def backward(self, gy):
        s, = self.saved_tensors
        return self.activation.backward(TENSOR_MATH, gy, s, self.param)

    def fused_backward(self, gy):
        s, = self.saved_tensors
        return self.call_kernel(self.backend.act_backward, gy, s, self.activation.name,
                                self.param)

    jvp = backward  # elementwise: the tangent is scaled like the gradient


def op_class(act):
    """The op of table entry ``act``: the subclass of ActivationOp named ``act.op_name``."""
    return type(act.op_name, (ActivationOp,), {
        "activation": act, "param": act.default, "saves_output": act.saves_output(act.default),
        "__module__": __name__})


OPS = {name: op_class(act) for name, act in activations.TABLE.items()}


def activate(act, x, param):
    """The op of table entry ``act`` with parameter ``param`` (a checked float) on ``x``."""
    op = OPS[act.name]()
    if param != act.default:
        op.param, op.saves_output = param, act.saves_output(param)
    return op.apply(_input(act.name, act.integers, x))


def _input(name, integers, x):
    """``x`` as activation ``name`` takes it: integers kept, promoted or refused, as
    PyTorch does for that activation."""
    if dtypes.is_floating(x.dtype):
        return x
    if integers == "promote":
        return _floating(x)
    if integers == "keep" and x.dtype != dtypes.bool_:
        return x
    raise TypeError(f"{name} is not defined for {dtypes.name(x.dtype)} tensors (nor in "
                    "PyTorch): convert the input with .float() first")


def _function(act):
    """The function users call for ``act``: ``relu(input)``, ``leaky_relu(input,
    negative_slope=0.01)``."""
    if act.param is None:
        op = OPS[act.name]

        def function(input):
            return op().apply(_input(act.name, act.integers, input))
    else:
        def function(input, *args, **kwargs):
            return activate(act, input, act.bind(args, kwargs, act.name))

    function.__name__ = function.__qualname__ = act.name
    function.__module__ = __name__
    function.__doc__ = f"{act.doc}, elementwise."
    function.__signature__ = act.signature("input")
    return function


FUNCTIONS = {name: _function(act) for name, act in activations.TABLE.items()}
globals().update(FUNCTIONS)

#: The math namespace of the table's formulas on Tensors (see ``gpuad.activations``).
TENSOR_MATH = SimpleNamespace(where=where, exp=exp, erf=erf, maximum=maximum,
                              tanh=FUNCTIONS["tanh"], sigmoid=FUNCTIONS["sigmoid"],
                              scalar=lambda a: float, cast=lambda a, dtype: a.to(dtype))


class Softplus(Function):
    """``log(1 + exp(beta x)) / beta``, linear above ``threshold`` as in PyTorch."""

    def __init__(self, beta, threshold):
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        self.save_for_backward(x)
        xp, bx = self.xp, x * x.dtype.type(self.beta)
        soft = xp.logaddexp(x.dtype.type(0), bx) / x.dtype.type(self.beta)
        return xp.where(bx > self.threshold, x, soft)

    def backward(self, gy):
        x, = self.saved_tensors
        bx = x * self.beta
        return gy * where(bx > self.threshold, 1.0, TENSOR_MATH.sigmoid(bx))

    jvp = backward


def softplus(x, beta=1.0, threshold=20.0):
    return Softplus(beta, threshold).apply(_input("softplus", "refuse", x))


__all__ = [*FUNCTIONS, "softplus"]
