"""``repr`` of tensors in PyTorch's style: ``tensor([1.0000, 2.5000], requires_grad=True)``."""
import numpy as np

from . import dtypes

_DEFAULT_SHOWN = (dtypes.int64, dtypes.bool_)


def _format_floats(arr):
    finite = arr[np.isfinite(arr)]
    if finite.size and np.all(finite == np.round(finite)) and np.abs(finite).max() < 1e8:
        return lambda v: f"{v:.0f}." if np.isfinite(v) else str(v)
    big = finite.size and (np.abs(finite).max() >= 1e8 or 0 < np.abs(finite[finite != 0])
                           .min(initial=np.inf) < 1e-4)
    if big:
        return lambda v: f"{v:.4e}"
    return lambda v: f"{v:.4f}" if np.isfinite(v) else str(v)


def tensor_repr(t):
    arr = np.asarray(t._backend.to_host(t._data))
    if arr.dtype.kind == "f":
        fmt = _format_floats(arr.astype(np.float64))
        body = np.array2string(arr, separator=", ", prefix="tensor(",
                               formatter={"float_kind": fmt}, threshold=1000, edgeitems=3)
    else:
        body = np.array2string(arr, separator=", ", prefix="tensor(", threshold=1000,
                               edgeitems=3).replace("True", "True").replace("False", "False")
    extras = []
    if t.device.type != "cpu":
        extras.append(f"device='{t.device}'")
    if t.dtype not in (dtypes.get_default_dtype(),) + _DEFAULT_SHOWN:
        extras.append(f"dtype=gpuad.{dtypes.name(t.dtype)}")
    if t.grad_fn is not None:
        extras.append(f"grad_fn={t.grad_fn!r}")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extras) + ")"
