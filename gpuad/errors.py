"""Checks shared by ops, with errors that name the problem and the fix."""


def check_same_device(tensors, op):
    """The one backend of ``tensors``, or an error naming both devices."""
    backend = tensors[0]._backend
    for t in tensors[1:]:
        if t._backend is not backend:
            raise RuntimeError(
                f"{op}: expected all tensors on the same device, got {backend.device} and "
                f"{t._backend.device}; move one with .to('{backend.device}') or "
                f".to('{t._backend.device}')")
    return backend


def is_cpu_scalar(t):
    """Whether tensor ``t`` is a 0-d CPU tensor (which tensors of a GPU take, as in PyTorch)."""
    return t._data.ndim == 0 and t._backend.device.type == "cpu"


def cpu_scalars_moved(tensors, op):
    """``tensors`` with each 0-d CPU tensor moved to the one other device among them, as
    PyTorch takes a CPU scalar tensor with tensors of a GPU; else the error of
    ``check_same_device``."""
    targets = {t._backend for t in tensors if not is_cpu_scalar(t)}
    target = targets.pop() if len(targets) == 1 else None
    if target is None or target.device.type == "cpu":
        check_same_device(tensors, op)
    from .ops.shape import to_device  # ops import autograd, which imports this module
    return [t if t._backend is target else to_device(t, target) for t in tensors]


def broadcast_shapes(a, b, op="op"):
    """NumPy's broadcast of two shapes, or an error showing both."""
    if a == b:
        return a
    n = max(len(a), len(b))
    pa, pb = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(pa, pb):
        if x != y and x != 1 and y != 1:
            raise ValueError(
                f"{op}: shapes {tuple(a)} and {tuple(b)} cannot be broadcast: each "
                "dimension, aligned from the right, must be equal or 1; reshape or "
                "unsqueeze one operand")
        out.append(y if x == 1 else x)
    return tuple(out)
