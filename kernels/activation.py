"""Numba twins of ``activation.cu``: bias + activation forward, activation backward, and
activation backward fused with the bias gradient.

``act`` is the activation's code (``gpuad.backends.base.ACTIVATION_CODES``), ``slope`` the
negative slope of leaky_relu. Arrays are C-contiguous, all float32 or all float64, and
``slope`` has their dtype; the CPU backend checks this and reshapes before calling.
"""
import math

import numpy as np
from numba import njit

RELU, LEAKY_RELU, GELU, TANH, SIGMOID = range(5)
_SQRT1_2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327

# One kernel per job with the activation as a runtime code, not one per activation: LLVM
# hoists the switch out of the loop (no slower than separate kernels, measured), and every
# kernel costs a Numba compilation per dtype.


@njit(inline="always")
def _forward(h, act, slope):
    t = type(h)  # constants in the array's dtype: a float64 literal would promote float32
    if act == RELU:
        return t(0) if h <= 0 else h
    if act == LEAKY_RELU:
        return h if h > 0 else h * slope
    if act == GELU:
        return h * (t(0.5) * (t(1) + math.erf(h * t(_SQRT1_2))))
    if act == TANH:
        # not math.tanh: its vectorised float32 form came back wrong from Numba's cache
        m = math.expm1(t(-2) * abs(h))
        y = -m / (t(2) + m)
        return y if h >= 0 else -y
    e = math.exp(-abs(h))
    return t(1) / (t(1) + e) if h >= 0 else e / (t(1) + e)


@njit(inline="always")
def _backward(g, s, act, slope):
    t = type(s)
    if act == RELU:
        return g * (t(1) if s > 0 else t(0))
    if act == LEAKY_RELU:
        return g if s > 0 else g * slope
    if act == GELU:
        cdf = t(0.5) * (t(1) + math.erf(s * t(_SQRT1_2)))
        pdf = math.exp(t(-0.5) * s * s) * t(_INV_SQRT_2PI)
        return g * (cdf + s * pdf)
    if act == TANH:
        return g * (t(1) - s * s)
    return g * s * (t(1) - s)


@njit(nogil=True, cache=True)
def bias_act(z, b, y, act, slope):
    """``y = act(z + b)`` for ``z`` (R, C) and ``b`` (C,); ``z`` keeps ``z + b``, unless
    ``y`` is ``z`` (in place)."""
    rows, cols = z.shape
    for i in range(rows):
        for j in range(cols):
            h = z[i, j] + b[j]
            z[i, j] = h
            y[i, j] = _forward(h, act, slope)


@njit(nogil=True, cache=True)
def act_backward(g, s, out, act, slope):
    """``out = dL/dh`` from ``g = dL/dy`` and the saved ``s`` (all flat)."""
    for i in range(g.size):
        out[i] = _backward(g[i], s[i], act, slope)


@njit(nogil=True, cache=True)
def act_bias_backward(g, s, out, act, slope):
    """``act_backward`` on (R, C) arrays; returns the bias gradient, ``out``'s column
    sums (a row block's, when the backend cuts the rows into blocks)."""
    rows, cols = g.shape
    gb = np.zeros(cols, g.dtype)
    for i in range(rows):
        for j in range(cols):
            v = _backward(g[i, j], s[i, j], act, slope)
            out[i, j] = v
            gb[j] += v
    return gb
