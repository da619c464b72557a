"""Differential tests: the same float64 computation in gpuad and in PyTorch (CPU) gives the
same values and gradients.

Each case is written once as ``f(lib, *xs)`` and run with ``lib`` = gpuad and ``lib`` =
torch, which share the API used here.
"""
import numpy as np
import pytest

import gpuad

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-8, 1e-12


def _mlp(lib, x, w1, b1, w2, b2):
    F = lib.nn.functional
    hidden = F.gelu(F.linear(x, w1, b1))
    return F.cross_entropy(F.linear(hidden, w2, b2), lib.tensor([0, 2, 1, 2, 0, 1]))


def _indexing(lib, x):
    mask = lib.tensor([True, False, True, True])
    rows = lib.tensor([3, 0, 3, 3])
    return (x[1:, ::2] ** 2).sum() + (x[rows] * 3).sum() + x[mask].exp().sum() \
        + x[[0, 0, 2], [1, 1, 0]].sum() + x[..., -1].tanh().sum()


CASES = {
    "mlp_gelu_cross_entropy": (_mlp, [(6, 4), (5, 4), (5,), (3, 5), (3,)]),
    "mlp_relu_mse": (lambda lib, x, w, b, t: lib.nn.functional.mse_loss(
        lib.nn.functional.linear(x, w, b).relu(), t), [(5, 3), (2, 3), (2,), (5, 2)]),
    "softmax": (lambda lib, x: (x.softmax(1) * x).sum(), [(3, 4)]),
    "log_softmax": (lambda lib, x: (x.log_softmax(0) ** 2).sum(), [(3, 4)]),
    "nll_loss": (lambda lib, x: lib.nn.functional.nll_loss(
        x.log_softmax(1), lib.tensor([1, 1, 3])), [(3, 4)]),
    "indexing": (_indexing, [(4, 3)]),
    "batched_matmul": (lambda lib, a, b: ((a @ b) ** 2).sum(), [(2, 1, 3, 4), (3, 4, 2)]),
    "matmul_vectors": (lambda lib, a, b, c: (a @ b) * (b @ c).sum(), [(3,), (3,), (3, 2)]),
    "var": (lambda lib, x: x.var() + x.var(0).sum() + x.var(1, keepdim=True, unbiased=False)
            .sum(), [(3, 4)]),
    "std": (lambda lib, x: x.std(1).sum(), [(3, 4)]),
    "logsumexp": (lambda lib, x: x.logsumexp(1).sum() + lib.logsumexp(x * 100, 0).sum(),
                  [(3, 4)]),
    "activations": (lambda lib, x: (lib.nn.functional.gelu(x) * x.sigmoid() + x.tanh()
                                    + lib.nn.functional.softplus(x * 15)
                                    + lib.nn.functional.leaky_relu(x, 0.1)).sum(), [(3, 4)]),
    "max_min_all": (lambda lib, x: x.max() - 2 * x.min(), [(3, 4)]),
    "broadcast_arithmetic": (lambda lib, a, b: ((a - b) / (a * a + 1) + b ** 3 - 2 / (b * b + 1)
                                                + lib.maximum(a, b)).sum(), [(2, 1, 3), (4, 1)]),
    "where_clamp": (lambda lib, x: lib.where(x > 0, x.clamp(max=0.5), x * x).sum(), [(3, 4)]),
    "pow_exp_log": (lambda lib, x, y: ((x * x + 1) ** y + (x.abs() + 1).log()
                                       + x.exp().sqrt()).sum(), [(3, 2), (2,)]),
    "shapes": (lambda lib, x: (lib.cat([x, x.T.reshape(4, 3)], 1).unsqueeze(0).expand(2, 4, 6)
                               * lib.stack(x.split(1), 2).flatten()[:6]).sum(), [(4, 3)]),
    "mean_keepdim": (lambda lib, x: (x - x.mean(1, keepdim=True)).permute(1, 0).exp().sum(),
                     [(3, 4)]),
}


def _run(lib, fn, arrays):
    xs = [lib.tensor(a, requires_grad=True) for a in arrays]
    out = fn(lib, *xs)
    out.backward()
    return out.detach().numpy(), [x.grad.numpy() for x in xs]


@pytest.mark.parametrize("name", CASES)
def test_values_and_gradients_match_torch(name):
    fn, shapes = CASES[name]
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in shapes]
    value, grads = _run(gpuad, fn, arrays)
    t_value, t_grads = _run(torch, fn, arrays)
    np.testing.assert_allclose(value, t_value, rtol=RTOL, atol=ATOL)
    for g, tg in zip(grads, t_grads):
        np.testing.assert_allclose(g, tg, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_values_match_torch_for_large_logits(op):
    x = np.array([[1000.0, 0.0, -1000.0], [3.0, 3.0, 3.0]])
    ours = getattr(gpuad.tensor(x), op)(1).numpy()
    np.testing.assert_allclose(ours, getattr(torch.tensor(x), op)(1).numpy(), rtol=RTOL)


@pytest.mark.parametrize("make", [
    lambda lib: lib.tensor(np.random.default_rng(0).standard_normal((3, 4)) * 100),
    lambda lib: lib.tensor(np.random.default_rng(1).integers(-100, 100, (4, 30))),
    lambda lib: lib.tensor(np.random.default_rng(2).standard_normal((50, 40)),
                           requires_grad=True),
    lambda lib: lib.tensor([[1e-10, 1e10], [-1.0, 0.0]], dtype=lib.float32),
    lambda lib: lib.arange(12.0).reshape(3, 4) - 5,
], ids=["fixed", "int_wrapped", "summarized_rows", "scientific", "integral_floats"])
def test_repr_matches_torch(make):
    assert repr(make(gpuad)) == repr(make(torch)).replace("torch.", "gpuad.")
