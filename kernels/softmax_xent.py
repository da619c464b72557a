"""Numba twins of ``softmax_xent.cu``: softmax cross-entropy forward and backward.

Logits ``x`` are C-contiguous (N, C) float32 or float64 with N, C >= 1; targets ``t`` are
int64 class indices. A target outside ``[0, C)`` gives a NaN loss for its row and no
one-hot term in the gradient (the kernels never read out of bounds).
"""
import math

from numba import njit


@njit(nogil=True, cache=True)
def xent_forward(x, t, lse, loss):
    """Per row ``i``: ``lse[i] = logsumexp(x[i])`` and ``loss[i] = lse[i] - x[i, t[i]]``."""
    n, c = x.shape
    for i in range(n):
        m = x[i, 0]
        for j in range(1, c):
            if x[i, j] > m:
                m = x[i, j]
        total = 0.0  # float64 for float32 logits too: summing C terms in order
        for j in range(c):
            total += math.exp(x[i, j] - m)
        row_lse = type(m)(math.log(total)) + m
        lse[i] = row_lse
        k = t[i]
        loss[i] = row_lse - x[i, k] if 0 <= k < c else math.nan


@njit(nogil=True, cache=True)
def xent_backward(x, lse, t, scale, g):
    """``g = (softmax(x) - onehot(t)) * scale``, softmax rebuilt from ``lse``."""
    n, c = x.shape
    one = type(scale)(1)
    for i in range(n):
        k = t[i]
        for j in range(c):
            e = math.exp(x[i, j] - lse[i])
            if j == k:
                e -= one
            g[i, j] = e * scale
