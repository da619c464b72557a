"""Fused layer ops: a Linear layer and its activation in one op.

``linear_act(x, w, b, "relu")`` equals ``relu(x @ w.T + b)`` for any activation of the
table (``gpuad.activations``) and its parameter: one matmul, then the backend's fused bias
+ activation written over the matmul's output; backward is one fused pass (activation and
bias gradients) and the two matmuls.
"""
import math

from .. import activations, dtypes
from ..autograd.function import Function
from ..tensor import Tensor
from .activation import TENSOR_MATH, activate
from .linalg import matmul
from .shape import expand, reshape


def linear(x, weight, bias=None):
    """``x @ weight.T + bias``, PyTorch's ``F.linear``: all of one dtype."""
    y = matmul(x, weight.mT if weight.ndim > 1 else weight)
    if bias is None:
        return y
    if isinstance(bias, Tensor) and bias.dtype != y.dtype:
        raise TypeError(f"linear: the bias is {dtypes.name(bias.dtype)} but the input and "
                        f"weight are {dtypes.name(y.dtype)}; they must have the same dtype")
    return y + bias


def linear_act(x, weight, bias, activation, param=None):
    """``activation(linear(x, weight, bias))`` for an activation of the table (or None)
    with its parameter (leaky_relu's negative slope; None: the default).

    One fused op for a 2-D weight and a bias of shape (out,) or None, all of one floating
    dtype; other operands take the composite ops (same result)."""
    if activation is None:
        return linear(x, weight, bias)
    try:
        act = activations.get(activation)
    except ValueError as e:
        raise ValueError(f"linear_act: {e}") from None
    param = act.check(param)
    if not _fusable(x, weight, bias):
        return activate(act, linear(x, weight, bias), param)
    op = LinearAct(act, param)
    return op.apply(x, weight) if bias is None else op.apply(x, weight, bias)


def _fusable(x, w, b):
    return (isinstance(x, Tensor) and isinstance(w, Tensor) and w.ndim == 2 and x.ndim >= 1
            and x.shape[-1] == w.shape[1] and dtypes.is_floating(x.dtype)
            and w.dtype == x.dtype
            and (b is None or isinstance(b, Tensor) and b.shape == w.shape[:1]
                 and b.dtype == x.dtype))


class LinearAct(Function):
    """``activation(x @ w.T + b)``, ``b`` optional, for a table entry and its parameter.

    Saves the activation's output (its input where its backward takes the input: gelu,
    leaky_relu with a negative slope) and ``x`` / ``w`` only where the other's gradient
    needs them. An activation saving its input also keeps ``x``, ``w`` and ``b``: a double
    backward rebuilds its input from them, as its output does not give it back.
    """

    def __init__(self, activation, param):
        self.activation, self.param = activation, param

    def forward(self, x, w, b=None):
        nx, nw = self.needs_input_grad[:2]
        y, saved = self.backend.bias_act(self.backend.matmul(x, w.T), b, self.activation.name,
                                         self.param)
        if self.activation.saves_output(self.param):
            self.save_for_backward(x if nw else None, w if nx else None, None, saved)
        else:
            self.save_for_backward(x, w, b, saved)
        return y

    def backward(self, gy):
        x, w, b, saved = self.saved_tensors
        if not self.activation.saves_output(self.param):
            saved = linear(x, w, b)  # the pre-activation, now in the graph
        gz = self._activation_grad(gy, saved)
        gb = _rows(gz).sum(0) if self._needs_bias_grad() else None
        return self._linear_grads(gz, gb, x, w)

    def fused_backward(self, gy):
        x, w, _, saved = self.saved_tensors
        name = self.activation.name
        if self._needs_bias_grad():
            gz, gb = self.call_kernel(self.backend.act_bias_backward, gy, saved, name,
                                      self.param)
        else:
            gz, gb = self.call_kernel(self.backend.act_backward, gy, saved, name,
                                      self.param), None
        return self._linear_grads(gz, gb, x, w)

    def jvp(self, tx, tw, tb=None):
        x, w, _, saved = self.saved_tensors
        terms = [t for t in (None if tx is None else tx @ w.mT,
                             None if tw is None else x @ tw.mT, tb) if t is not None]
        tz = terms[0]
        for t in terms[1:]:
            tz = tz + t
        if tz.shape != saved.shape:
            tz = expand(tz, saved.shape)
        return self._activation_grad(tz, saved)

    def _activation_grad(self, gy, saved):
        """The activation's gradient from Tensor ops (differentiable again), from what it
        saved: its output or its input."""
        return self.activation.backward(TENSOR_MATH, gy, saved, self.param)

    def _needs_bias_grad(self):
        return len(self.needs_input_grad) == 3 and self.needs_input_grad[2]

    def _linear_grads(self, gz, gb, x, w):
        nx, nw = self.needs_input_grad[:2]
        gx = gz @ w if nx else None
        gw = _rows(gz).mT @ _rows(x) if nw else None
        return (gx, gw) if len(self.needs_input_grad) == 2 else (gx, gw, gb)


def _rows(t):
    """``t`` as a matrix of its last dim (sizes spelled out: -1 is ambiguous when a size
    is 0, as for a Linear layer without inputs)."""
    return reshape(t, (math.prod(t.shape[:-1]), t.shape[-1]))

