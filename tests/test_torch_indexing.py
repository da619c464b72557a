"""Indexing, splitting and iteration against PyTorch: the dimension order of mixed
integer/tensor indices, empty index lists, chunk/split edge cases, iterating 0-d."""
import numpy as np
import pytest

import gpuad
from torch_diff import assert_same, value_and_grads

torch = pytest.importorskip("torch")


def _idx(lib, x, values):
    """An index tensor on ``x``'s device."""
    return lib.tensor(values, device=x.device)


INDEX_CASES = {
    "int_slice_tensor": lambda lib, x: x[0, :, _idx(lib, x, [1, 2, 1])],
    "slice_int_slice_tensor": lambda lib, x: x[:, 0, :, _idx(lib, x, [1, 2])],
    "tensor_slice_int": lambda lib, x: x[_idx(lib, x, [1, 0]), :, 0],
    "int_tensor": lambda lib, x: x[0, _idx(lib, x, [1, 2])],
    "tensor_tensor": lambda lib, x: x[_idx(lib, x, [1, 0]), _idx(lib, x, [1, 2])],
    "tensor_slice_tensor": lambda lib, x: x[_idx(lib, x, [1, 0]), :, _idx(lib, x, [1, 2])],
    "slice_int_tensor": lambda lib, x: x[:, 0, _idx(lib, x, [1, 2])],
    "slice_tensor_int": lambda lib, x: x[:, _idx(lib, x, [1, 2]), 0],
    "int_slice_slice_tensor": lambda lib, x: x[0, :, :, _idx(lib, x, [1, 2])],
    "int_none_slice_tensor": lambda lib, x: x[0, None, :, _idx(lib, x, [1, 2])],
    "int_ellipsis_tensor": lambda lib, x: x[0, ..., _idx(lib, x, [1, 2])],
    "int_slice_list": lambda lib, x: x[0, :, [1, 2]],
    "int_slice_nested_list": lambda lib, x: x[0, :, [[1, 2], [0, 0]]],
    "int_slice_tensor_int": lambda lib, x: x[0, :, _idx(lib, x, [1, 2]), 0],
    "int_slice_mask": lambda lib, x: x[0, :, _idx(lib, x, [True, False, True, False])],
    "int0d_slice_tensor": lambda lib, x: x[_idx(lib, x, 0), :, _idx(lib, x, [1, 2])],
    "neg_int_slice_tensor_slice": lambda lib, x: x[-1, :, _idx(lib, x, [[3], [0]]), 1:],
    "tensor_int_slice_tensor": lambda lib, x: x[_idx(lib, x, [1]), 0, :, _idx(lib, x, [2, 4])],
    "empty_list": lambda lib, x: x[[]],
    "empty_list_second": lambda lib, x: x[:, []],
    "bool_list": lambda lib, x: x[[True, False]],
    "empty_tensor_index": lambda lib, x: x[lib.tensor([], dtype=lib.int64, device=x.device)],
    "int_slice_true": lambda lib, x: x[0, :, True],
    "true_int": lambda lib, x: x[True, 0],
    "int_slice_false_tensor": lambda lib, x: x[0, :, False, _idx(lib, x, [1])],
    "ellipsis_int_slice_tensor": lambda lib, x: x[..., 0, :, _idx(lib, x, [0, 1])],
    "int_slice_0d_tensor": lambda lib, x: x[0, :, _idx(lib, x, 1)],
}


@pytest.mark.parametrize("name", INDEX_CASES)
def test_advanced_indexing_matches_torch_dimension_order(device, name):
    case = INDEX_CASES[name]
    data = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5) / 7
    g_out, g_grads = value_and_grads(gpuad, case, [data], device)
    t_out, t_grads = value_and_grads(torch, case, [data])
    assert_same(g_out, t_out)
    assert_same(g_grads, t_grads, what="grads")


def test_mixed_index_assignment_follows_torch_order(device):
    g = gpuad.zeros(2, 3, 4, device=device)
    t = torch.zeros(2, 3, 4)
    g[0, :, gpuad.tensor([1, 3], device=device)] = gpuad.arange(6, device=device).reshape(3, 2) \
        .float()
    t[0, :, torch.tensor([1, 3])] = torch.arange(6).reshape(3, 2).float()
    assert_same(g, t)


@pytest.mark.parametrize("n, chunks", [(0, 3), (0, 1), (5, 3), (6, 4), (1, 4), (7, 7), (3, 5)])
def test_chunk_matches_torch(device, n, chunks):
    g = [p.shape for p in gpuad.zeros(n, 2, device=device).chunk(chunks)]
    t = [tuple(p.shape) for p in torch.zeros(n, 2).chunk(chunks)]
    assert g == t


def test_chunk_and_split_refuse_what_torch_refuses(device):
    x = gpuad.zeros(5, device=device)
    for fn, pattern in [(lambda: x.chunk(0), "chunks must be"), (lambda: x.split(-1), "negative"),
                        (lambda: x.split(0), "size 0"), (lambda: x.split([6, -1]), "negative"),
                        (lambda: x.split([2, 2]), "add up")]:
        with pytest.raises(ValueError, match=pattern):
            fn()


@pytest.mark.parametrize("n, size", [(0, 0), (0, 2), (5, 2), (4, 4), (3, 7)])
def test_split_sizes_match_torch(device, n, size):
    g = [p.shape for p in gpuad.zeros(n, device=device).split(size)]
    t = [tuple(p.shape) for p in torch.zeros(n).split(size)]
    assert g == t
    assert [p.shape for p in gpuad.zeros(n, device=device).split([n, 0])] == \
        [tuple(p.shape) for p in torch.zeros(n).split([n, 0])]


def test_iterating_a_0d_tensor_raises_like_torch(device):
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(torch.tensor(1.0))
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(gpuad.tensor(1.0, device=device))
    rows = list(gpuad.tensor([[1, 2], [3, 4]], device=device))
    assert [r.tolist() for r in rows] == [[1, 2], [3, 4]]
    a, b = gpuad.tensor([5.0, 6.0], device=device)
    assert a.shape == () and b.item() == 6.0


def _random_index(rng, shape):
    """An index for ``shape`` mixing ints, slices, None, an Ellipsis, int tensors (1-D
    and 2-D), lists and 1-D masks (values valid for the dim each one takes)."""
    k = int(rng.integers(1, len(shape) + 1))
    ellipsis_at = int(rng.integers(0, k + 1)) if rng.random() < 0.3 and k < len(shape) else None
    dims = list(range(k)) if ellipsis_at is None else \
        list(range(ellipsis_at)) + list(range(len(shape) - (k - ellipsis_at), len(shape)))
    items = []
    for d in dims:
        n, kind = shape[d], rng.choice(["int", "slice", "tensor", "tensor2", "list", "mask"])
        if kind == "int":
            items.append(("int", int(rng.integers(-n, n))))
        elif kind == "slice":
            items.append(("slice", slice(int(rng.integers(0, n)), None, int(rng.integers(1, 3)))))
        elif kind == "tensor":
            items.append(("tensor", rng.integers(-n, n, int(rng.integers(1, 3))).tolist()))
        elif kind == "tensor2":
            items.append(("tensor", rng.integers(0, n, (2, 1)).tolist()))
        elif kind == "list":
            items.append(("list", rng.integers(0, n, int(rng.integers(1, 3))).tolist()))
        else:
            items.append(("mask", (rng.random(n) < 0.5).tolist()))
    if ellipsis_at is not None:
        items.insert(ellipsis_at, ("ellipsis", Ellipsis))
    if rng.random() < 0.3:
        items.insert(int(rng.integers(0, len(items) + 1)), ("none", None))
    return items


def _build(lib, items, device="cpu"):
    out = []
    for kind, v in items:
        out.append(lib.tensor(v, device=device) if kind in ("tensor", "mask") else v)
    return tuple(out)


def test_random_mixed_indices_match_torch(device):
    """300 derandomized indices: same shape, values and gradient as PyTorch, or both raise."""
    rng = np.random.default_rng(15)
    shape = (2, 3, 4, 5)
    data = rng.standard_normal(shape)
    for trial in range(300):
        items = _random_index(rng, shape)
        tx = torch.tensor(data, requires_grad=True)
        gx = gpuad.tensor(data, device=device, requires_grad=True)
        try:
            t_out = tx[_build(torch, items)]
        except (IndexError, RuntimeError, ValueError):
            with pytest.raises((IndexError, RuntimeError, ValueError)):
                gx[_build(gpuad, items, device)]
            continue
        g_out = gx[_build(gpuad, items, device)]
        assert_same(g_out, t_out, what=f"trial {trial}: {items}")
        weights = rng.standard_normal(tuple(t_out.shape))
        (t_out * torch.tensor(weights)).sum().backward()
        (g_out * gpuad.tensor(weights, device=device)).sum().backward()
        assert_same(gx.grad, tx.grad, rtol=1e-12, what=f"grad of trial {trial}: {items}")
