"""Helpers of the differential tests against PyTorch: one function, two libraries.

A case is written once as ``f(lib, *xs)`` with ``lib`` gpuad or torch; ``run_both`` runs it
on the same float64 (or given) data in both and ``assert_same`` compares what came out:
values, dtypes and shapes, NaN and inf included.
"""
import numpy as np

import gpuad


def dtype_name(dtype):
    return str(dtype).replace("torch.", "")


def to_numpy(t):
    if isinstance(t, gpuad.Tensor):
        return t.detach().numpy()
    return t.detach().cpu().numpy()


def assert_same(g, t, rtol=1e-7, atol=0.0, what="result"):
    """gpuad's ``g`` equals torch's ``t`` (Tensors, numbers, or nested tuples/lists)."""
    if isinstance(t, (tuple, list)):
        assert isinstance(g, (tuple, list)) and len(g) == len(t), f"{what}: {g!r} vs {t!r}"
        for i, (a, b) in enumerate(zip(g, t)):
            assert_same(a, b, rtol, atol, f"{what}[{i}]")
        return
    if t is None:
        assert g is None, f"{what}: gpuad gave {g!r}, torch gave None"
        return
    if not hasattr(t, "dtype"):
        assert g == t, f"{what}: {g!r} vs {t!r}"
        return
    assert g is not None, f"{what}: gpuad gave None, torch gave {t!r}"
    assert dtype_name(g.dtype) == dtype_name(t.dtype), \
        f"{what}: dtype {dtype_name(g.dtype)} vs torch's {dtype_name(t.dtype)}"
    assert tuple(g.shape) == tuple(t.shape), f"{what}: shape {tuple(g.shape)} vs {tuple(t.shape)}"
    np.testing.assert_allclose(to_numpy(g), to_numpy(t), rtol=rtol, atol=atol, equal_nan=True,
                               err_msg=what)


def leaves(lib, arrays, device="cpu"):
    """Each array as a tensor of ``lib``; floating ones require grad."""
    out = []
    for a in arrays:
        a = np.asarray(a)
        if lib is gpuad:
            out.append(gpuad.tensor(a, device=device, requires_grad=a.dtype.kind == "f"))
        else:
            out.append(lib.tensor(a, requires_grad=a.dtype.kind == "f"))
    return out


def value_and_grads(lib, fn, arrays, device="cpu"):
    """``fn(lib, *xs)`` and the gradient of its sum at each floating input (None where
    none reaches it)."""
    xs = leaves(lib, arrays, device)
    out = fn(lib, *xs)
    wrt = [x for x in xs if x.requires_grad]
    if not wrt or not out.requires_grad:
        return out, [None] * len(wrt)
    grads = lib.autograd.grad(out.sum(), wrt, allow_unused=True)
    return out, list(grads)
