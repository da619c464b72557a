"""What both backends share: the reference formulas of the fused ops, written once on xp.

A backend overrides a method with a fused kernel (a Numba twin on CPU, CUDA C on GPU)
where that pays; the formula here stays the specification the kernels are tested against
and the fallback for what a kernel does not take (other dtypes, non-contiguous arrays).
"""
import functools

from .. import activations
from ..dtypes import float32, float64

_KERNEL_DTYPES = (float32, float64)  # dtypes, not names: dtype.name is slow Python


def fusable(*arrays):
    """True when gpuad's kernels take these arrays as they are: non-empty, C-contiguous,
    all float32 or all float64."""
    dtype = arrays[0].dtype
    return (dtype in _KERNEL_DTYPES and arrays[0].size > 0
            and all(a.dtype == dtype and a.flags.c_contiguous for a in arrays))


def bias_vector(xp, z, b):
    """``b`` as the ``(C,)`` vector a bias kernel reads for ``z`` of shape ``(..., C)``:
    zeros for None, None when ``b`` broadcasts some other way."""
    c = z.shape[-1]
    if b is None:
        return xp.zeros(c, z.dtype)
    if b.ndim <= z.ndim and b.size == c and b.shape[-1:] == (c,):
        return b.reshape(c)
    return None


def adam_scalars(dtype, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    """The scalars of one Adam step in the parameter's dtype, as the update uses them:
    ``beta1, 1 - beta1, beta2, 1 - beta2, sqrt(bias2), eps, lr / bias1, l2, decay``.

    ``l2`` is added to the gradient (Adam's weight decay), ``decay`` scales p (AdamW's)."""
    t = dtype.type
    bias1, bias2 = 1 - beta1 ** step, 1 - beta2 ** step
    l2 = weight_decay if weight_decay and not decoupled else 0
    decay = 1 - lr * weight_decay if weight_decay and decoupled else 1
    return (t(beta1), t(1 - beta1), t(beta2), t(1 - beta2), t(bias2 ** 0.5), t(eps),
            t(lr / bias1), t(l2), t(decay))


class Backend:
    """The surface every backend offers the ops (``xp`` plus the methods below)."""

    xp = None
    name = None

    def sigmoid(self, x):
        """``1 / (1 + exp(-x))`` without overflow for large ``|x|``."""
        xp = self.xp
        e = xp.exp(-xp.abs(x))
        return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    @functools.cached_property
    def math(self):
        """The namespace the activation table's formulas run on for this backend's arrays."""
        return activations.ArrayMath(self)

    # --- activations: bias + activation forward, activation backward ----------------------
    def bias_act(self, z, b, activation, slope=0.01):
        """``activation(z + b)`` for a matmul output ``z``, which it overwrites; ``slope``
        is the activation's parameter (the table's formula ignores it where it has none).

        Returns ``(y, saved)``, ``saved`` being what ``act_backward`` takes: the output
        itself, written over ``z``, when ``saves_output(activation, slope)``; else the
        pre-activation ``z + b``, left in ``z`` (``y`` is then a new array).
        """
        act = activations.get(activation)
        if b is not None:
            z += b
        if not act.saves_output(slope):
            return act.forward(self.math, z, slope), z
        y = act.forward(self.math, z, slope, out=z)
        if y is not z:
            z[...] = y
        return z, z

    def act_backward(self, gy, saved, activation, slope=0.01):
        """The gradient at the activation's input, from ``gy`` and what ``bias_act`` saved."""
        return activations.get(activation).backward(self.math, gy, saved, slope)

    def act_bias_backward(self, gy, saved, activation, slope=0.01):
        """``act_backward`` and the bias gradient: its sum over all but the last axis."""
        gz = self.act_backward(gy, saved, activation, slope)
        return gz, gz.reshape(-1, gz.shape[-1]).sum(axis=0)

    # --- losses --------------------------------------------------------------------------
    def cross_entropy_forward(self, x, t):
        """Per-row logsumexp of logits ``x`` (N, C) and the mean loss at targets ``t``."""
        xp = self.xp
        m = x.max(axis=1, keepdims=True)
        lse = (xp.log(xp.exp(x - m).sum(axis=1, keepdims=True)) + m)[:, 0]
        picked = x[xp.arange(x.shape[0]), t]
        return lse, (lse - picked).mean(dtype=x.dtype)

    def cross_entropy_backward(self, x, lse, t, scale):
        """``(softmax(x) - onehot(t)) * scale``, softmax rebuilt from the saved logsumexp."""
        xp = self.xp
        g = xp.exp(x - lse[:, None])
        g[xp.arange(x.shape[0]), t] -= 1
        g *= scale
        return g

    def mse_backward(self, x, t, scale):
        """``2 * scale * (x - t)``: the gradient of ``scale * sum((x - t) ** 2)`` at ``x``."""
        g = x - t
        g *= 2 * scale
        return g

    # --- optimizer updates (in place, one parameter at a time) -----------------------------
    def sgd_kernel_buffer(self, p, g, buf, momentum, takes):
        """The buffer a fused SGD kernel reads (``p`` stands in without momentum), or None
        where the formula below must run: a missing buffer with momentum (it raises),
        mismatched shapes, or arrays the kernel does not ``takes``."""
        if buf is None:
            if momentum:
                return None
            buf = p
        if g.shape != p.shape or buf.shape != p.shape or not takes(p, g, buf):
            return None
        return buf

    def sgd_step(self, p, g, buf, lr, momentum, dampening, nesterov, weight_decay):
        """PyTorch's SGD update of array ``p``; ``buf`` is the momentum buffer or None."""
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            buf *= momentum
            buf += (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p -= lr * g

    def adam_step(self, p, g, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled):
        """PyTorch's Adam (``decoupled=False``) or AdamW update of ``p``, moments ``m``, ``v``."""
        b1, b1c, b2, b2c, bias2_sqrt, eps, step_size, l2, decay = adam_scalars(
            p.dtype, step, lr, beta1, beta2, eps, weight_decay, decoupled)
        if weight_decay:
            if decoupled:
                p *= decay
            else:
                g = g + l2 * p
        m *= b1
        m += b1c * g
        v *= b2
        v += b2c * g * g
        denom = self.xp.sqrt(v) / bias2_sqrt + eps
        p -= step_size * m / denom
