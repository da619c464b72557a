"""``repr`` of tensors in PyTorch's style: ``tensor([ 1.5000, -2.0000], requires_grad=True)``.

Numbers are right-aligned in one column width, long dims are summarized with ``...`` and
lines wrap at 80 characters, following ``torch._tensor_str``.
"""
import math

import numpy as np

from . import dtypes

_DEFAULT_SHOWN = (dtypes.int64, dtypes.bool_)
_THRESHOLD, _EDGEITEMS, _LINEWIDTH = 1000, 3, 80
_PREFIX = "tensor("


def _summarized(arr):
    """The values a summarized print shows: the first and last items of each long dim
    (taken on the device, before moving to the host), and which dims were cut."""
    cut = tuple(n > 2 * _EDGEITEMS for n in arr.shape)
    keep = list(range(_EDGEITEMS)) + list(range(-_EDGEITEMS, 0))
    for d in range(arr.ndim):
        if cut[d]:
            arr = arr.take(keep, axis=d)
    return arr, cut


def _float_format(vals):
    """PyTorch's notation for these values: integers as ``2.``, fixed ``2.5000`` or
    scientific ``2.5000e+03``, chosen from the nonzero finite ones."""
    mags = np.abs(vals)
    int_mode = bool(np.all(mags == np.ceil(mags)))
    if mags.size and (mags.max() / mags.min() > 1000 or mags.max() > 1e8
                      or (not int_mode and mags.min() < 1e-4)):
        return lambda v: f"{v:.4e}"
    if int_mode:
        return lambda v: f"{v:.0f}." if math.isfinite(v) else f"{v:.0f}"
    return lambda v: f"{v:.4f}"


def _formatter(arr):
    """A function writing one value padded on the left to the column width, and the width."""
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float64)
        measured = arr[np.isfinite(arr) & (arr != 0)]
        fmt = _float_format(measured)
    else:
        measured, fmt = arr.ravel(), str
    width = max((len(fmt(v)) for v in measured.tolist()), default=1)
    return (lambda v: fmt(v).rjust(width)), width


def _body(arr, cut, fmt, width, indent):
    """The nested brackets; along a dim that was ``cut`` the middle is shown as ``...``."""
    if arr.ndim == 0:
        return fmt(arr.item())
    if arr.ndim == 1:
        items = [fmt(v) for v in arr.tolist()]
        if cut[0]:
            items.insert(_EDGEITEMS, " ...")
        per_line = max(1, (_LINEWIDTH - indent) // (width + 2))
        lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    parts = [_body(row, cut[1:], fmt, width, indent + 1) for row in arr]
    if cut[0]:
        parts.insert(_EDGEITEMS, "...")
    return "[" + ("," + "\n" * (arr.ndim - 1) + " " * (indent + 1)).join(parts) + "]"


def tensor_repr(t):
    suffixes = []
    if t.device.type != "cpu":
        suffixes.append(f"device='{t.device}'")
    shown_dtype = t.dtype not in (dtypes.get_default_dtype(),) + _DEFAULT_SHOWN
    if t.numel() == 0:
        body = "[]"
        if t.ndim != 1:
            suffixes.append(f"size={t.shape}")
        shown_dtype = t.dtype != dtypes.get_default_dtype()
    else:
        data, cut = t._data, (False,) * t.ndim
        if data.size > _THRESHOLD:
            data, cut = _summarized(data)
        arr = np.asarray(t._backend.to_host(data))
        fmt, width = _formatter(arr)
        body = _body(arr, cut, fmt, width, len(_PREFIX))
    if shown_dtype:
        suffixes.append(f"dtype=gpuad.{dtypes.name(t.dtype)}")
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn={t.grad_fn!r}")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    return _with_suffixes(_PREFIX + body, suffixes)


def _with_suffixes(text, suffixes):
    """``text, suffix, ...)``, a suffix going to a new line when it would pass 80 chars."""
    parts = [text]
    line = len(text) - text.rfind("\n") + 1
    for s in suffixes:
        if line + len(s) + 2 > _LINEWIDTH:
            parts.append(",\n" + " " * len(_PREFIX) + s)
            line = len(_PREFIX) + len(s)
        else:
            parts.append(", " + s)
            line += len(s) + 2
    return "".join(parts) + ")"
