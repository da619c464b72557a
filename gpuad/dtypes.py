"""Data types and the promotion rules of PyTorch.

gpuad's dtypes are NumPy dtype objects, so they pass straight to NumPy and CuPy.
"""
import numpy as np

float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")

_NAMES = {float16: "float16", float32: "float32", float64: "float64",
          int32: "int32", int64: "int64", bool_: "bool"}
_ALIASES = {"float": float32, "double": float64, "half": float16, "int": int32,
            "long": int64, **{name: dt for dt, name in _NAMES.items()}}

_default_float = float32


def get_default_dtype():
    """The dtype given to tensors built from Python floats (float32 unless changed)."""
    return _default_float


def set_default_dtype(dtype):
    """Set the dtype of tensors built from Python floats: float32 or float64.

    Process-wide, as ``torch.set_default_dtype``: every thread sees the change (one
    assignment, so an op sees the old dtype or the new one, never a mix)."""
    global _default_float
    dtype = as_dtype(dtype)
    if not is_floating(dtype):
        raise TypeError(f"default dtype must be a floating dtype, got {name(dtype)}")
    _default_float = dtype


def as_dtype(dtype):
    """Turn a gpuad dtype, NumPy dtype or name ('float32', 'long') into a supported dtype."""
    if isinstance(dtype, str) and dtype in _ALIASES:
        return _ALIASES[dtype]
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in _NAMES:
        raise TypeError(f"unsupported dtype {dtype!r}; use one of "
                        + ", ".join(f"gpuad.{n}" for n in _NAMES.values()))
    return dt


def name(dtype):
    return _NAMES.get(np.dtype(dtype), str(dtype))


def is_floating(dtype):
    return np.dtype(dtype).kind == "f"


_CATEGORY = {"b": 0, "i": 1, "u": 1, "f": 2}
_PYTHON_CATEGORY = {bool: 0, int: 1, float: 2}


def _category(dtype):
    return _CATEGORY[dtype.kind]


def _scalar_category(value):
    if isinstance(value, (bool, np.bool_)):
        return 0
    if isinstance(value, (int, np.integer)):
        return 1
    if isinstance(value, (float, np.floating)):
        return 2
    raise TypeError(f"unsupported operand of type {type(value).__name__}; "
                    "use a Tensor, a Python number or a bool")


def _promote(dts):
    """The widest of the dtypes of the highest category among ``dts`` (float32 with int64
    is float32, not NumPy's float64)."""
    top = max(_CATEGORY[dt.kind] for dt in dts)
    return np.result_type(*[dt for dt in dts if _CATEGORY[dt.kind] == top])


def result_type(*operands):
    """The dtype PyTorch gives an op on these operands (Tensors or Python numbers).

    Dimensioned tensors decide first, then 0-d tensors, then Python numbers; a lower
    group changes the result only when it is of a higher category (bool < int < float),
    and a Python float then brings the default float dtype.
    """
    if len(operands) == 2:  # the common case, tensor with a Python number, made quick
        t, v = operands
        if not hasattr(t, "ndim"):
            t, v = v, t
        cat = _PYTHON_CATEGORY.get(type(v))
        if cat is not None and hasattr(t, "ndim"):
            dtype = t.dtype
            return dtype if cat <= _CATEGORY[dtype.kind] else (bool_, int64, _default_float)[cat]
    groups = ([], [], [])
    for op in operands:
        if hasattr(op, "dtype") and hasattr(op, "ndim"):
            groups[0 if op.ndim else 1].append(op.dtype)
    result, category = None, -1
    for dts in groups[:2]:
        if dts:
            dt = _promote(dts)
            if result is None or _category(dt) > category:
                result, category = dt, _category(dt)
    for op in operands:
        if not (hasattr(op, "dtype") and hasattr(op, "ndim")):
            cat = _scalar_category(op)
            if cat > category:
                result, category = (bool_, int64, _default_float)[cat], cat
    return result
