"""Higher-order helpers built on ``grad``: ``vjp`` and ``hvp``."""
from .api import grad


def _tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def vjp(fn, inputs, v=None):
    """``(fn(*inputs), v^T J)``: the output and its vector-Jacobian product."""
    single = not isinstance(inputs, (tuple, list))
    xs = tuple(x.detach().requires_grad_() for x in _tuple(inputs))
    out = fn(*xs)
    gs = grad(out, xs, v, allow_unused=True)
    gs = tuple(x.detach() * 0 if g is None else g for x, g in zip(xs, gs))
    return out.detach(), gs[0] if single else gs


def hvp(fn, inputs, v):
    """``(fn(*inputs), H v)`` for a scalar ``fn``: the Hessian-vector product, by
    differentiating the gradient (``create_graph=True``) once more.

    >>> loss, hv = gpuad.autograd.hvp(lambda x: (x ** 3).sum(), x, v)    # 6 x v
    """
    single = not isinstance(inputs, (tuple, list))
    xs = tuple(x.detach().requires_grad_() for x in _tuple(inputs))
    vs = _tuple(v)
    if len(vs) != len(xs) or any(a.shape != b.shape for a, b in zip(xs, vs)):
        raise ValueError(f"hvp: v must match the inputs' shapes {[x.shape for x in xs]}, got "
                         f"{[t.shape for t in vs]}")
    out = fn(*xs)
    if out.numel() != 1:
        raise ValueError(f"hvp needs a function with one output element, got shape {out.shape}")
    gs = grad(out, xs, create_graph=True)
    dot = sum((g * u).sum() for g, u in zip(gs, vs))
    hv = grad(dot, xs, allow_unused=True)
    hv = tuple(x.detach() * 0 if h is None else h.detach() for x, h in zip(xs, hv))
    return out.detach(), hv[0] if single else hv
