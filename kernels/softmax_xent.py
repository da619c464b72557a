"""Numba twins of ``softmax_xent.cu``: softmax cross-entropy forward and backward.

Logits ``x`` are C-contiguous (N, C) float32 or float64 with N, C >= 1; targets ``t`` are
int64 class indices. A target outside ``[0, C)`` gives its row a NaN loss and NaN
gradients (the kernels never read out of bounds). Each row's ``stats``
are its max ``m`` and ``log(sum(exp(x - m)))``, kept apart: ``m + log-sum`` would round
away the small part of large logits.
"""
import math

from numba import njit


@njit(nogil=True, cache=True)
def xent_forward(x, t, stats, loss):
    """Per row ``i``: ``stats[i] = (m, log(sum(exp(x[i] - m))))`` for the row max ``m``, and
    ``loss[i] = log-sum - (x[i, t[i]] - m)``."""
    n, c = x.shape
    for i in range(n):
        m = x[i, 0]
        for j in range(1, c):
            if x[i, j] > m:
                m = x[i, j]
        total = 0.0  # float64 for float32 logits too: summing C terms in order
        for j in range(c):
            total += math.exp(x[i, j] - m)
        log_sum = type(m)(math.log(total))
        stats[i, 0] = m
        stats[i, 1] = log_sum
        k = t[i]
        loss[i] = log_sum - (x[i, k] - m) if 0 <= k < c else math.nan


@njit(nogil=True, cache=True)
def xent_backward(x, stats, t, scale, g):
    """``g = (softmax(x) - onehot(t)) * scale``, softmax rebuilt from ``stats``."""
    n, c = x.shape
    one = type(scale)(1)
    for i in range(n):
        k = t[i]
        m, log_sum = stats[i, 0], stats[i, 1]
        row_scale = scale if 0 <= k < c else type(scale)(math.nan)
        for j in range(c):
            e = math.exp((x[i, j] - m) - log_sum)
            if j == k:
                e -= one
            g[i, j] = e * row_scale
