"""Forward-mode AD with dual numbers: ``jvp(fn, primals, tangents)``.

While a dual level is open, every op whose inputs carry tangents computes its outputs'
tangents with its ``jvp`` rule right after its forward, so one forward pass gives both
the outputs and their directional derivatives (no reverse pass involved). A level is
open in the calling thread only (as ``torch.func.jvp``'s): other threads' ops carry no
tangents.
"""
from ..thread_state import local as _tls
from . import grad_mode


class _DualLevel:
    """Tangents of the tensors of one forward-mode computation."""

    def __init__(self):
        self.tangents = {}  # id(tensor) -> (tensor, tangent); the tensor is held so ids stay unique

    def tangent(self, t):
        entry = self.tangents.get(id(t))
        return None if entry is None or entry[0] is not t else entry[1]

    def set(self, t, tangent):
        self.tangents[id(t)] = (t, tangent)


def is_dual_level_open():
    """True while ``jvp`` runs its function in the calling thread."""
    return _tls.state.dual_level is not None


def apply_rule(node, inputs, outputs):
    """Give ``outputs`` of ``node`` their tangents, when an input has one."""
    state = _tls.state
    level = state.dual_level
    tangents = [level.tangent(t) for t in inputs]
    if not node.differentiable or all(t is None for t in tangents):
        return
    state.dual_level = None  # the rule's own ops are plain ops, not dual ones
    try:
        with grad_mode.no_grad():
            out = node.jvp(*tangents)
    finally:
        state.dual_level = level
    for y, ty in zip(outputs, out if isinstance(out, tuple) else (out,)):
        if ty is not None and y.dtype.kind == "f":
            level.set(y, ty if ty.dtype == y.dtype else ty.to(y.dtype))


def jvp(fn, primals, tangents):
    """Outputs of ``fn(*primals)`` and their derivatives in the direction ``tangents``.

    >>> out, tangent = gpuad.autograd.jvp(lambda x: x ** 3, (x,), (v,))   # 3 x**2 v
    """
    from ..tensor import Tensor
    state = _tls.state
    single = isinstance(primals, Tensor)
    primals = (primals,) if single else tuple(primals)
    tangents = (tangents,) if isinstance(tangents, Tensor) else tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents; give one "
                         "tangent per primal")
    for i, (p, t) in enumerate(zip(primals, tangents)):
        if p.shape != t.shape or p.device != t.device:
            raise ValueError(f"jvp: tangent {i} has shape {t.shape} on {t.device}, but its "
                             f"primal has shape {p.shape} on {p.device}; they must match")
        if p.dtype.kind != "f":
            raise TypeError(f"jvp: primal {i} is {p.dtype}; only floating tensors have "
                            "tangents")
    if state.dual_level is not None:
        raise RuntimeError("jvp: nested jvp calls are not supported")
    level = state.dual_level = _DualLevel()
    try:
        duals = tuple(p.detach() for p in primals)
        for d, t in zip(duals, tangents):
            level.set(d, t.detach().to(d.dtype))
        out = fn(*duals)
        outs = out if isinstance(out, tuple) else (out,)
        touts = tuple(level.tangent(o) if level.tangent(o) is not None
                      else _zeros_like(o) for o in outs)
    finally:
        state.dual_level = None
    detached = tuple(o.detach() for o in outs)
    return (detached, touts) if isinstance(out, tuple) else (detached[0], touts[0])


def _zeros_like(t):
    from ..tensor import Tensor
    return Tensor._make(t._backend.full(t.shape, 0, t.dtype), t._backend)
