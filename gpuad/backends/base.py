"""What both backends share: the reference formulas of the fused ops, written once on xp.

A backend overrides a method with a fused kernel (a Numba twin on CPU, CUDA C on GPU)
where that pays; the formula here stays the specification the kernels are tested against.
"""


class Backend:
    """The surface every backend offers the ops (``xp`` plus the methods below)."""

    xp = None
    name = None

    def sigmoid(self, x):
        """``1 / (1 + exp(-x))`` without overflow for large ``|x|``."""
        xp = self.xp
        e = xp.exp(-xp.abs(x))
        return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    def cross_entropy_forward(self, x, t):
        """Per-row logsumexp of logits ``x`` (N, C) and the mean loss at targets ``t``."""
        xp = self.xp
        m = x.max(axis=1, keepdims=True)
        lse = (xp.log(xp.exp(x - m).sum(axis=1, keepdims=True)) + m)[:, 0]
        picked = xp.take_along_axis(x, t[:, None], axis=1)[:, 0]
        return lse, (lse - picked).mean(dtype=x.dtype)

    def cross_entropy_backward(self, x, lse, t, scale):
        """``(softmax(x) - onehot(t)) * scale``, softmax rebuilt from the saved logsumexp."""
        xp = self.xp
        g = xp.exp(x - lse[:, None])
        g[xp.arange(x.shape[0]), t] -= 1
        g *= scale
        return g

    # --- optimizer updates (in place, one parameter at a time) -----------------------------
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
        if weight_decay:
            if decoupled:
                p *= 1 - lr * weight_decay
            else:
                g = g + weight_decay * p
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        bias1, bias2 = 1 - beta1 ** step, 1 - beta2 ** step
        denom = self.xp.sqrt(v) / (bias2 ** 0.5) + eps
        p -= (lr / bias1) * m / denom
