"""Numba twins of ``optim.cu``: one fused, in-place update per parameter.

Arrays are flat, C-contiguous, all float32 or all float64; the scalars have their dtype
and are computed as ``Backend.sgd_step`` / ``Backend.adam_step`` compute them, so the
twins give the reference's results.
"""
import math

from numba import njit


@njit(nogil=True, cache=True)
def sgd_step(p, g, buf, lr, momentum, damp_c, nesterov, weight_decay):
    """SGD with weight decay and momentum (``damp_c = 1 - dampening``); ``buf`` is the
    momentum buffer, not read when ``momentum`` is 0."""
    for i in range(p.size):
        d = g[i]
        if weight_decay != 0:
            d = d + weight_decay * p[i]
        if momentum != 0:
            b = buf[i] * momentum + damp_c * d
            buf[i] = b
            d = d + momentum * b if nesterov else b
        p[i] = p[i] - lr * d


@njit(nogil=True, cache=True)
def adam_step(p, g, m, v, beta1, beta1_c, beta2, beta2_c, bias2_sqrt, eps, step_size, l2,
              decay):
    """Adam/AdamW with the scalars of ``gpuad.backends.base.adam_scalars``."""
    for i in range(p.size):
        q = p[i] * decay
        d = g[i]
        if l2 != 0:
            d = d + l2 * q
        mi = m[i] * beta1 + beta1_c * d
        vi = v[i] * beta2 + beta2_c * d * d
        m[i] = mi
        v[i] = vi
        p[i] = q - step_size * mi / (math.sqrt(vi) / bias2_sqrt + eps)
