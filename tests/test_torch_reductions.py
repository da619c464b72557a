"""Reductions against PyTorch: max/min's (values, indices), amax/amin, NaN and ties, empty
and 0-d dims, dim=(), float16 accumulation, std's gradient at zero variance."""
import math

import numpy as np
import pytest

import gpuad
from torch_diff import assert_same, value_and_grads

torch = pytest.importorskip("torch")

NAN, INF = math.nan, math.inf
_X = [[1.0, 3.0, 3.0, -1.0], [2.0, NAN, 0.0, NAN], [-INF, -INF, -INF, -INF]]


def _both(case, arrays, device, rtol=1e-7):
    g_out, g_grads = value_and_grads(gpuad, case, arrays, device)
    t_out, t_grads = value_and_grads(torch, case, arrays)
    assert_same(g_out, t_out, rtol=rtol)
    assert_same(g_grads, t_grads, rtol=rtol, what="grads")


def test_max_dim_returns_values_and_indices_like_torch(device):
    x = gpuad.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]], device=device)
    values, idx = x.max(1)
    assert values.tolist() == [5.0, 7.0] and idx.tolist() == [1, 0]
    out = x.max(1)
    assert out.values is out[0] and out.indices is out[1]
    assert type(out).__name__ == "max" and repr(out).startswith("max(values=")
    assert out.indices.dtype == gpuad.int64 and out.indices.grad_fn is None
    assert x.min(dim=0, keepdim=True).indices.shape == (1, 3)
    assert isinstance(x.max(), gpuad.Tensor) and x.max().item() == 7.0
    assert gpuad.max(x, 1).values.tolist() == [5.0, 7.0]
    assert gpuad.min(x, -1)[1].tolist() == [0, 1]


@pytest.mark.parametrize("case", [
    lambda lib, x: x.max(1)[0], lambda lib, x: x.max(1).indices,
    lambda lib, x: x.min(0).values, lambda lib, x: x.min(0, keepdim=True)[1],
    lambda lib, x: lib.max(x, -1, keepdim=True).values,
    lambda lib, x: x.max(), lambda lib, x: x.min(), lambda lib, x: x[:1].max(),
    lambda lib, x: x.amax(1), lambda lib, x: x.amin((0, 1)), lambda lib, x: x[:1].amax(),
    lambda lib, x: lib.amax(x, 0, keepdim=True), lambda lib, x: x.amax(()),
    lambda lib, x: x.argmax(1), lambda lib, x: x.argmin(0), lambda lib, x: x.argmax(),
    lambda lib, x: x.argmin(keepdim=True), lambda lib, x: x.argmax(1, keepdim=True),
], ids=["max_values", "max_indices", "min_values", "min_keepdim_idx", "max_function",
        "max_all_nan", "min_all", "max_all_ties", "amax", "amin_dims", "amax_ties",
        "amax_function", "amax_empty_tuple", "argmax", "argmin", "argmax_all", "argmin_keep",
        "argmax_keep"])
def test_max_min_with_nan_ties_and_inf_match_torch(device, case):
    _both(case, [np.array(_X)], device)


@pytest.mark.parametrize("case", [
    lambda lib, x: x.sum(0), lambda lib, x: x.sum(-1), lambda lib, x: x.sum((0,)),
    lambda lib, x: x.mean(0), lambda lib, x: x.mean(-1, keepdim=True),
    lambda lib, x: x.logsumexp(0), lambda lib, x: lib.logsumexp(x, -1, keepdim=True),
    lambda lib, x: x.squeeze(-1), lambda lib, x: x.squeeze(0), lambda lib, x: x.unsqueeze(-1),
    lambda lib, x: x.softmax(0), lambda lib, x: x.log_softmax(-1),
    lambda lib, x: x.max(0)[0], lambda lib, x: x.max(-1).indices, lambda lib, x: x.min(0)[0],
    lambda lib, x: x.amax(0), lambda lib, x: x.argmax(0), lambda lib, x: x.argmin(-1),
    lambda lib, x: x.all(0), lambda lib, x: x.any(-1), lambda lib, x: x.var(0, correction=0),
    lambda lib, x: x.std(-1, correction=0), lambda lib, x: x.sum(0, keepdim=True),
    lambda lib, x: x.flatten(0), lambda lib, x: x.transpose(0, -1),
], ids=["sum0", "sum-1", "sum_tuple", "mean0", "mean-1", "lse0", "lse-1", "squeeze-1",
        "squeeze0", "unsqueeze-1", "softmax0", "log_softmax-1", "max0", "max-1_idx", "min0",
        "amax0", "argmax0", "argmin-1", "all0", "any-1", "var0", "std-1", "sum_keepdim",
        "flatten", "transpose"])
def test_zero_dim_tensor_takes_dims_0_and_minus_1_like_torch(device, case):
    _both(case, [np.array(2.5)], device)


def test_zero_dim_tensor_refuses_other_dims(device):
    x = gpuad.tensor(2.5, device=device)
    for fn in (lambda: x.sum(1), lambda: x.squeeze(-2), lambda: x.logsumexp(1),
               lambda: x.max(1), lambda: x.argmax(2), lambda: x.softmax(1)):
        with pytest.raises(IndexError, match="out of range"):
            fn()
    with pytest.raises(ValueError, match="twice"):
        x.sum((0, -1))
    for fn in (lambda: x.split(1), lambda: x.chunk(1)):
        with pytest.raises(ValueError, match="0-d"):
            fn()


@pytest.mark.parametrize("case", [
    lambda lib, x: x.sum(dim=()), lambda lib, x: x.sum(dim=[]), lambda lib, x: x.mean(()),
    lambda lib, x: x.amax(()), lambda lib, x: x.sum((), True),
])
def test_an_empty_dim_tuple_reduces_all_dims_like_torch(device, case):
    _both(case, [np.arange(6.0).reshape(2, 3)], device)


def test_var_and_std_over_an_empty_dim_tuple_reduce_all_dims(device):
    """PyTorch's values reduce all dims, but its gradients treat () as no dim (inf); gpuad
    gives the gradient of the value it returns."""
    for case in (lambda lib, x: x.var(()), lambda lib, x: x.std(dim=())):
        data = np.arange(6.0).reshape(2, 3)
        g, (gg,) = value_and_grads(gpuad, case, [data], device)
        t = case(torch, torch.tensor(data))
        assert_same(g, t)
        expected, = value_and_grads(gpuad, lambda lib, x: case(lib, x.reshape(6)), [data],
                                    device)[1]
        assert_same(gg, expected)


def test_logsumexp_needs_a_dim(device):
    x = gpuad.ones(2, 3, device=device)
    for fn in (lambda: x.logsumexp(()), lambda: gpuad.logsumexp(x)):
        with pytest.raises(TypeError, match="pass the dim"):
            fn()


# --- size-0 dims ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape, case", [
    ((3, 0), lambda lib, x: x.softmax(1)), ((3, 0), lambda lib, x: x.log_softmax(-1)),
    ((3, 0), lambda lib, x: x.logsumexp(1)), ((0, 3), lambda lib, x: x.softmax(1)),
    ((0, 3), lambda lib, x: x.logsumexp(1)), ((3, 0), lambda lib, x: x.sum(1)),
    ((3, 0), lambda lib, x: x.mean(1)), ((0, 3), lambda lib, x: x.max(1).values),
    ((0, 3), lambda lib, x: x.max(1).indices), ((0, 3), lambda lib, x: x.min(-1)[0]),
    ((0, 3), lambda lib, x: x.argmax(1)), ((0, 3), lambda lib, x: x.amax(1)),
    ((3, 0), lambda lib, x: x.all(1)), ((3, 0), lambda lib, x: x.any(1)),
    ((0,), lambda lib, x: x.sum()), ((0, 2), lambda lib, x: x.logsumexp((0, 1))),
    ((3, 0), lambda lib, x: x.softmax(0)),
], ids=["softmax", "log_softmax", "logsumexp", "softmax_rows0", "logsumexp_rows0", "sum",
        "mean", "max_rows0", "max_rows0_idx", "min_rows0", "argmax_rows0", "amax_rows0", "all",
        "any", "sum_all", "logsumexp_all", "softmax_other_dim"])
def test_size_zero_dims_match_torch(device, shape, case):
    _both(case, [np.zeros(shape)], device)


@pytest.mark.parametrize("fn", [
    lambda x: x.max(1), lambda x: x.min(-1), lambda x: x.amax(1), lambda x: x.argmax(1),
    lambda x: x.max(), lambda x: x.argmin(), lambda x: x.amin(),
])
def test_picking_from_a_size_zero_dim_raises_like_torch(device, fn):
    with pytest.raises((IndexError, RuntimeError), match="non-zero size|numel"):
        fn(torch.zeros(3, 0))
    with pytest.raises((IndexError, RuntimeError), match="size 0|empty"):
        fn(gpuad.zeros(3, 0, device=device))


def test_argmax_of_bool_raises_like_torch(device):
    with pytest.raises(TypeError, match="bool"):
        gpuad.tensor([True, False], device=device).argmax()


# --- std, var ------------------------------------------------------------------------------
@pytest.mark.parametrize("case", [
    lambda lib, x: x.std(), lambda lib, x: x.std(1), lambda lib, x: x.std(0, keepdim=True),
    lambda lib, x: (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-5),
    lambda lib, x: x.std(1, correction=0), lambda lib, x: x[:1, :1].std(),
    lambda lib, x: x[:1, :1].std(correction=0),
], ids=["all", "dim", "keepdim", "normalise", "biased", "one_element", "one_biased"])
def test_std_gradient_at_zero_variance_matches_torch(device, case):
    _both(case, [np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0], [3.0, 3.0, 3.0]])], device)


def test_std_double_backward_stays_finite_at_zero_variance(device):
    x = gpuad.tensor([[2.0, 2.0], [1.0, 3.0]], dtype=gpuad.float64, device=device,
                     requires_grad=True)
    g, = gpuad.autograd.grad(x.std(1).sum(), x, create_graph=True)
    gg, = gpuad.autograd.grad((g * g).sum(), x)
    assert np.isfinite(gg.numpy()).all()
    tx = torch.tensor([[2.0, 2.0], [1.0, 3.0]], dtype=torch.float64, requires_grad=True)
    tg, = torch.autograd.grad(tx.std(1).sum(), tx, create_graph=True)
    tgg, = torch.autograd.grad((tg * tg).sum(), tx)
    np.testing.assert_allclose(gg.numpy()[1], tgg.numpy()[1], rtol=1e-10)


def test_reductions_of_ints_match_torch(device):
    i = gpuad.tensor([[1, 2], [3, 4]], device=device)
    ti = torch.tensor([[1, 2], [3, 4]])
    for case in (lambda x: x.sum(), lambda x: x.sum(dtype=gpuad.float32 if isinstance(
            x, gpuad.Tensor) else torch.float32), lambda x: x.max(1).values, lambda x: x.amax(),
            lambda x: x.logsumexp(1), lambda x: x.all(1), lambda x: x.any((0, 1)),
            lambda x: x.mean(dtype=gpuad.float64 if isinstance(x, gpuad.Tensor)
                             else torch.float64)):
        assert_same(case(i), case(ti))
    with pytest.raises(TypeError, match="var of a int64"):
        i.var()


# --- float16 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", [
    lambda lib, x: x.sum(), lambda lib, x: x.mean(), lambda lib, x: x.var(),
    lambda lib, x: x.std(), lambda lib, x: x.reshape(100, 1000).sum(1),
    lambda lib, x: x.reshape(100, 1000).mean(0), lambda lib, x: x[:5000].sum(),
    lambda lib, x: x.reshape(1000, 100).var(1, keepdim=True),
    lambda lib, x: x.reshape(2, 50000).softmax(1)[:, :3],
    lambda lib, x: lib.nn.functional.mse_loss(x, x * 0.5),
    lambda lib, x: lib.nn.functional.mse_loss(x, x * 0.5, reduction="sum") / 1e6,
], ids=["sum", "mean", "var", "std", "sum_dim", "mean_dim", "sum_5000", "var_dim", "softmax",
        "mse", "mse_sum"])
def test_float16_accumulates_in_float32_like_torch(device, case):
    values = (np.arange(100_000) % 7).astype(np.float16) * np.float16(1.5)
    g_out = case(gpuad, gpuad.tensor(values, device=device))
    t_out = case(torch, torch.tensor(values))
    assert_same(g_out, t_out, rtol=2e-3)


def test_float16_reductions_give_float16_gradients(device):
    x = gpuad.tensor(np.full(70_000, 2.0, np.float16), device=device, requires_grad=True)
    (x.mean() + x.std() + x.logsumexp(0)).backward()
    tx = torch.tensor(np.full(70_000, 2.0, np.float16), requires_grad=True)
    (tx.mean() + tx.std() + tx.float().logsumexp(0).half()).backward()
    assert x.grad.dtype == gpuad.float16
    assert_same(x.grad, tx.grad, rtol=2e-3)


def test_float16_logsumexp_and_log_softmax_do_not_overflow(device):
    """PyTorch's CPU float16 logsumexp and log_softmax overflow over 70000 ones (inf and
    -inf); gpuad accumulates in float32 and gives the finite answer instead."""
    x = gpuad.ones(70_000, dtype=gpuad.float16, device=device)
    ref = torch.ones(70_000, dtype=torch.float32)
    assert_same(x.logsumexp(0), ref.logsumexp(0).half())
    assert_same(x.log_softmax(0)[:3], ref.log_softmax(0)[:3].half())
