"""The activation table: each activation's formulas, kernel code and parameter, once.

Everything else is built from an entry: the op and the functions users call
(``gpuad.<name>``, ``F.<name>``, ``Tensor.<name>``), the ``nn`` module, ``linear_act``'s
fused op, and the backends' reference formulas that the kernels are tested against.

An entry's formulas are written against a math namespace ``m``:

* ``forward(m, x, p, out=None)``: the activation of ``x`` with parameter ``p``, on arrays
  (``ArrayMath``); ``out`` is None or ``x`` itself, which the result may overwrite.
* ``backward(m, g, s, p)``: the gradient at the input from the output's gradient ``g`` and
  ``s``, the output where ``saves_output(p)`` and the input elsewhere; on arrays it is the
  reference of the fused backward kernels, on Tensors (``gpuad.ops.activation``) the
  differentiable rule that double backward and forward mode use.

``m`` offers ``where``, ``exp``, ``erf``, ``tanh``, ``sigmoid``, ``maximum``,
``scalar(a)``: the type a Python constant takes to compute in ``a``'s dtype (the array's
scalar type; ``float`` for Tensors, which convert constants themselves), and ``cast(a,
dtype)``. A formula that rounds at each step (gelu) is wrapped in ``_float16_in_float32``.
"""
import dataclasses
import functools
import inspect
import numbers
from typing import Callable, Optional

from .dtypes import float16, float32

SQRT1_2 = 0.7071067811865476       # 1 / sqrt(2)
INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi)


def _always(p):
    return True


def _never(p):
    return False


@dataclasses.dataclass(frozen=True)
class Activation:
    """One activation: its names, formulas and parameter (see the module docstring)."""

    name: str        # gpuad.<name>, F.<name>, Tensor.<name>, and linear_act's name for it
    module: str      # its nn.Module class
    doc: str
    forward: Callable
    backward: Callable
    saves_output: Callable = _always  # p -> whether backward takes the output (else input)
    param: Optional[str] = None       # the parameter's keyword, if it takes one
    default: float = 0.0              # its default (what the kernels get when there is none)
    code: Optional[int] = None        # its code in kernels/activation.cu and .py, if hot
    integers: str = "refuse"          # integer inputs: "keep" them (bool refused),
    #                                   "promote" them to the default float, or "refuse"

    @property
    def op_name(self):
        """The op's name in graphs and reports: ``Relu``, ``LeakyRelu``, ..."""
        return "".join(part.capitalize() for part in self.name.split("_"))

    def signature(self, first):
        """The signature ``(first, <param>=<default>)`` of a call taking the parameter."""
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        params = [inspect.Parameter(first, kind)]
        if self.param is not None:
            params.append(inspect.Parameter(self.param, kind, default=self.default))
        return inspect.Signature(params)

    def bind(self, args, kwargs, caller):
        """The parameter given by a call's extra arguments (the default when none)."""
        if not kwargs:
            if not args:
                return self.default
            if len(args) == 1 and self.param is not None:
                return self.check(args[0])
        elif not args and len(kwargs) == 1 and self.param in kwargs:
            return self.check(kwargs[self.param])
        wants = "no parameter" if self.param is None else f"one parameter, {self.param}"
        got = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        raise TypeError(f"{caller}: unexpected arguments {', '.join(got)}; {self.name} "
                        f"takes {wants}")

    def check(self, value):
        """``value`` (None: the default) as this activation's parameter, a float."""
        if type(value) is float and self.param is not None:
            return value
        if value is None:
            return self.default
        if self.param is None:
            raise TypeError(f"{self.name} takes no parameter, got {value!r}")
        if type(value) not in (float, int) and (
                isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise TypeError(f"{self.name}: {self.param} must be a real number, got "
                            f"{type(value).__name__}; pass a Python float (x.item() for a "
                            "tensor)")
        return float(value)


def _float16_in_float32(formula):
    """``formula`` with float16 operands computed in float32 and rounded to float16 once,
    at the end (as PyTorch computes half-precision activations)."""
    @functools.wraps(formula)
    def run(m, a, *rest):
        if a.dtype != float16:
            return formula(m, a, *rest)
        wide = [m.cast(r, float32) if getattr(r, "dtype", None) == float16 else r
                for r in rest]
        return m.cast(formula(m, m.cast(a, float32), *wide), float16)
    return run


@_float16_in_float32
def _gelu(m, x, p, out=None):
    t = m.scalar(x)
    return x * (t(0.5) * (1 + m.erf(x * t(SQRT1_2))))


@_float16_in_float32
def _gelu_backward(m, g, x, p):
    t = m.scalar(x)
    cdf = t(0.5) * (1 + m.erf(x * t(SQRT1_2)))
    pdf = m.exp(t(-0.5) * x * x) * t(INV_SQRT_2PI)
    return g * (cdf + x * pdf)


TABLE = {a.name: a for a in [
    Activation("relu", "ReLU", "``max(x, 0)``",
               forward=lambda m, x, p, out=None: m.maximum(x, 0, out=out),
               backward=lambda m, g, y, p: g * (y > 0),
               code=0, integers="keep"),
    Activation("leaky_relu", "LeakyReLU",
               "``x`` where positive, ``negative_slope * x`` elsewhere",
               forward=lambda m, x, p, out=None: m.where(x > 0, x, x * m.scalar(x)(p)),
               backward=lambda m, g, s, p: m.where(s > 0, g, g * m.scalar(s)(p)),
               # with slope >= 0 the output has the input's sign: saving it is enough
               saves_output=lambda p: p >= 0, param="negative_slope", default=0.01, code=1),
    Activation("gelu", "GELU", "``x * Phi(x)``, the exact (erf) GELU", forward=_gelu,
               backward=_gelu_backward, saves_output=_never, code=2),
    Activation("tanh", "Tanh", "``tanh(x)``",
               forward=lambda m, x, p, out=None: m.tanh(x, out=out),
               backward=lambda m, g, y, p: g * (1 - y * y), code=3, integers="promote"),
    Activation("sigmoid", "Sigmoid", "``1 / (1 + exp(-x))``",
               forward=lambda m, x, p, out=None: m.sigmoid(x),
               backward=lambda m, g, y, p: g * y * (1 - y), code=4,
               integers="promote"),
]}

#: Every activation's name; the ones with a fused kernel and their codes in the kernels.
ACTIVATIONS = tuple(TABLE)
ACTIVATION_CODES = {a.name: a.code for a in TABLE.values() if a.code is not None}


def get(name):
    """The table's entry for ``name``; a ValueError naming the known ones otherwise."""
    try:
        return TABLE[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; the table knows "
                         f"{', '.join(TABLE)}") from None


def saves_output(name, param):
    """True when ``name``'s backward takes its output (else its input) at ``param``."""
    return get(name).saves_output(param)


class ArrayMath:
    """The math namespace of one backend's arrays: xp's ufuncs, the backend's erf and
    overflow-free sigmoid, constants in the array's dtype."""

    def __init__(self, backend):
        xp = backend.xp
        self._backend = backend
        self.where, self.exp, self.tanh, self.maximum = xp.where, xp.exp, xp.tanh, xp.maximum

    def erf(self, x):
        return self._backend.erf(x)

    def sigmoid(self, x):
        return self._backend.sigmoid(x)

    @staticmethod
    def scalar(a):
        return a.dtype.type

    @staticmethod
    def cast(a, dtype):
        return a.astype(dtype, copy=False)
