"""Fused layer ops: a Linear layer and its activation in one op.

``linear_act(x, w, b, "relu")`` equals ``relu(x @ w.T + b)``; the CUDA/Numba kernels in
``kernels/`` make it one elementwise pass forward and one backward.
"""
from .elementwise import gelu, leaky_relu, relu, sigmoid, tanh
from .linalg import matmul

ACTIVATIONS = {"relu": relu, "leaky_relu": leaky_relu, "gelu": gelu, "tanh": tanh,
               "sigmoid": sigmoid, None: None}


def linear(x, weight, bias=None):
    """``x @ weight.T + bias``, PyTorch's ``F.linear``."""
    y = matmul(x, weight.mT if weight.ndim > 1 else weight)
    return y if bias is None else y + bias


def linear_act(x, weight, bias, activation):
    """``activation(linear(x, weight, bias))`` for activation in ``ACTIVATIONS``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"linear_act: unknown activation {activation!r}; expected one of "
                         f"{sorted(a for a in ACTIVATIONS if a)}")
    y = linear(x, weight, bias)
    return y if activation is None else ACTIVATIONS[activation](y)
