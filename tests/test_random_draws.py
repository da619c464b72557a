"""Random draws: randint exact and uniform on every range, float16 rand/randn, the
generator state covering integer draws too, and layers built in float16 or with a zero
size."""
import numpy as np
import pytest

import gpuad
from gpuad.backends import backend_for
from gpuad.backends.base import Backend

torch = pytest.importorskip("torch")


def _counts(values, low, high):
    return np.bincount(np.asarray(values) - low, minlength=high - low)


def _assert_uniform(values, low, high):
    """Chi-square test at a 1e-6 false-alarm rate (the draws are seeded: it cannot flake)."""
    counts = _counts(values, low, high)
    assert counts.sum() == len(values) and len(counts) == high - low
    expected = len(values) / (high - low)
    chi2 = ((counts - expected) ** 2 / expected).sum()
    dof = high - low - 1
    assert chi2 < dof + 7 * np.sqrt(2 * dof) + 20, (counts, chi2)


@pytest.mark.parametrize("low, high", [(-2, 2), (0, 3), (-7, -2), (5, 6), (0, 10)])
def test_randint_is_uniform_on_the_whole_range(device, low, high):
    x = gpuad.randint(low, high, (40_000,), device=device)
    assert x.dtype == gpuad.int64 and x.shape == (40_000,)
    values = x.cpu().numpy()
    assert values.min() == low and values.max() == high - 1
    _assert_uniform(values, low, high)


def test_randint_draws_every_bit_of_wide_ranges(device):
    wide = gpuad.randint(0, 2 ** 62, (4000,), device=device).cpu().numpy()
    assert 1700 < (wide % 2 == 1).sum() < 2300  # odd numbers too, half of them
    assert 1700 < (wide >= 2 ** 61).sum() < 2300
    full = gpuad.randint(-2 ** 63, 2 ** 63 - 1, (4000,), device=device).cpu().numpy()
    assert (full < 0).sum() > 1700 and (full > 0).sum() > 1700
    odd_span = gpuad.randint(0, 2 ** 33 + 1, (4000,), device=device).cpu().numpy()
    assert odd_span.max() <= 2 ** 33 and (odd_span >= 2 ** 32).sum() > 1700


def test_randint_refuses_empty_and_unrepresentable_ranges(device):
    for args, pattern in [((5, 3), "less than high"), ((3, 3), "less than high"),
                          ((0, 2 ** 40, (2,), gpuad.int32), "int32"),
                          ((-1, 2, (2,), gpuad.bool), "bool"),
                          ((0.5, 3), "int"), ((0, 2 ** 64), "int64")]:
        with pytest.raises((ValueError, TypeError), match=pattern):
            gpuad.randint(*args, device=device)
    with pytest.raises(RuntimeError, match="less than 'to'"):
        torch.randint(5, 3, (2,))


def test_randint_signatures_and_dtypes_match_torch(device):
    assert gpuad.randint(3, (2, 4), device=device).shape == tuple(torch.randint(3, (2, 4)).shape)
    assert gpuad.randint(3, size=(5,), device=device).shape == (5,)
    assert gpuad.randint(1, 4, (0,), device=device).shape == (0,)
    for dtype in ("float32", "int32", "bool", "float64"):
        g = gpuad.randint(0, 2, (50,), dtype=getattr(gpuad, dtype), device=device)
        t = torch.randint(0, 2, (50,), dtype=getattr(torch, dtype))
        assert str(g.dtype) == str(t.dtype).replace("torch.", "")
        assert set(g.cpu().numpy().astype(int).tolist()) == {0, 1}


def test_randint_follows_the_seed_and_the_generator_state(device):
    backend = backend_for(device)
    gpuad.manual_seed(3)
    a = gpuad.randint(0, 1000, (20,), device=device).cpu().numpy()
    state = backend.get_rng_state()
    b, u = gpuad.randint(-5, 5, (30,), device=device), gpuad.rand(4, device=device)
    backend.set_rng_state(state)
    assert np.array_equal(gpuad.randint(-5, 5, (30,), device=device).cpu().numpy(),
                          b.cpu().numpy())
    assert np.array_equal(gpuad.rand(4, device=device).cpu().numpy(), u.cpu().numpy())
    gpuad.manual_seed(3)
    assert np.array_equal(gpuad.randint(0, 1000, (20,), device=device).cpu().numpy(), a)


class _WordsOnCPU(Backend):
    """The reference ``Backend.randint`` on NumPy, fed raw 32-bit words as cuRAND feeds it
    on a GPU (the CPU backend itself draws through NumPy's Generator.integers)."""

    def __init__(self, seed):
        self.xp = np
        self.words_drawn = 0
        self._rng = np.random.default_rng(seed)

    def random_words(self, n):
        self.words_drawn += n
        return self._rng.integers(0, 2 ** 32, n, dtype=np.uint32)


@pytest.mark.parametrize("low, high", [(-2, 2), (0, 3), (0, 5), (-(2 ** 40), 2 ** 40 + 3)])
def test_reference_randint_from_raw_words_is_exact_and_uniform(low, high):
    be = _WordsOnCPU(1)
    values = be.randint(low, high, (30_000,))
    assert values.dtype == np.int64 and values.min() >= low and values.max() < high
    if high - low < 100:
        _assert_uniform(values, low, high)
    else:  # halves and parities of a wide range each get half the draws
        assert abs((values % 2 == 0).mean() - 0.5) < 0.02
        assert abs((values < (low + high) / 2).mean() - 0.5) < 0.02
    words = 2 if (high - low - 1).bit_length() > 32 else 1
    assert 30_000 * words <= be.words_drawn < 2.5 * 30_000 * words  # redraws: under half


def test_reference_randint_covers_the_int64_extremes():
    be = _WordsOnCPU(2)
    v = be.randint(-2 ** 63, 2 ** 63, (2000,))
    assert v.dtype == np.int64 and (v < -2 ** 62).sum() > 300 and (v > 2 ** 62).sum() > 300
    assert np.array_equal(be.randint(7, 8, (3,)), [7, 7, 7])


# --- float16 draws and layers ------------------------------------------------------------
def test_rand_and_randn_make_float16(device):
    u = gpuad.rand(100_000, dtype=gpuad.float16, device=device)
    n = gpuad.randn(100_000, dtype=gpuad.float16, device=device)
    assert u.dtype == n.dtype == gpuad.float16
    values = u.cpu().numpy().astype(np.float64)
    assert values.min() >= 0 and values.max() < 1 and abs(values.mean() - 0.5) < 0.01
    assert len(np.unique(values)) > 1000
    normal = n.cpu().numpy().astype(np.float64)
    assert abs(normal.mean()) < 0.02 and abs(normal.std() - 1) < 0.02
    assert gpuad.rand_like(u).dtype == gpuad.float16
    mask_kept = gpuad.nn.functional.dropout(gpuad.ones(10_000, dtype=gpuad.float16,
                                                       device=device), 0.5)
    assert mask_kept.dtype == gpuad.float16 and 4500 < (mask_kept.cpu().numpy() > 0).sum() < 5500


def test_linear_in_float16_trains_like_torch(device):
    gpuad.manual_seed(0)
    lin = gpuad.nn.Linear(8, 4, dtype=gpuad.float16, device=device)
    assert lin.weight.dtype == lin.bias.dtype == gpuad.float16
    ref = torch.nn.Linear(8, 4, dtype=torch.float16)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(lin.weight.detach().cpu().numpy()))
        ref.bias.copy_(torch.tensor(lin.bias.detach().cpu().numpy()))
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float16)
    y = gpuad.nn.functional.relu(lin(gpuad.tensor(x, device=device)))
    ty = torch.relu(ref(torch.tensor(x)))
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=2e-3,
                               atol=2e-3)
    np.testing.assert_allclose(lin.weight.grad.cpu().numpy(), ref.weight.grad.numpy(),
                               rtol=2e-3, atol=2e-3)


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")  # PyTorch's, on purpose
@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0)])
def test_linear_with_a_zero_size_matches_torch(device, shape):
    lin = gpuad.nn.Linear(*shape, device=device)
    ref = torch.nn.Linear(*shape)
    assert lin.weight.shape == tuple(ref.weight.shape)
    assert np.array_equal(lin.bias.detach().cpu().numpy(), ref.bias.detach().numpy())
    x = gpuad.ones(4, shape[0], device=device, requires_grad=True)
    tx = torch.ones(4, shape[0], requires_grad=True)
    for act, t_act in [(gpuad.nn.functional.relu, torch.relu),
                       (gpuad.nn.functional.gelu, torch.nn.functional.gelu)]:
        y = act(lin(x))
        ty = t_act(ref(tx))
        (y * 2).sum().backward()
        (ty * 2).sum().backward()
        assert y.shape == tuple(ty.shape)
        np.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy())
        assert x.grad.shape == tuple(tx.grad.shape)
        np.testing.assert_allclose(lin.bias.grad.cpu().numpy(), ref.bias.grad.numpy())
        assert lin.weight.grad.shape == tuple(ref.weight.grad.shape)
    with pytest.raises(ValueError, match="non-negative"):
        gpuad.nn.Linear(-1, 3)


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0)])
@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh", "sigmoid", "leaky_relu"])
def test_fused_linear_act_with_a_zero_size_matches_torch(device, shape, activation):
    from gpuad.ops.fused import linear_act
    t_act = {"relu": torch.relu, "gelu": torch.nn.functional.gelu, "tanh": torch.tanh,
             "sigmoid": torch.sigmoid, "leaky_relu": torch.nn.functional.leaky_relu}[activation]
    bias = np.linspace(-1, 1, shape[1])
    x, w, b = (gpuad.ones(4, shape[0], device=device, requires_grad=True),
               gpuad.zeros(shape[1], shape[0], device=device, requires_grad=True),
               gpuad.tensor(bias, dtype=gpuad.float32, device=device, requires_grad=True))
    tx, tw, tb = (torch.ones(4, shape[0], requires_grad=True),
                  torch.zeros(shape[1], shape[0], requires_grad=True),
                  torch.tensor(bias, dtype=torch.float32, requires_grad=True))
    y = linear_act(x, w, b, activation)
    assert y.grad_fn.name == "LinearAct"
    ty = t_act(torch.nn.functional.linear(tx, tw, tb))
    (y * 3).sum().backward()
    (ty * 3).sum().backward()
    np.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=1e-6)
    for g, t in ((x, tx), (w, tw), (b, tb)):
        assert g.grad.shape == tuple(t.grad.shape)
        np.testing.assert_allclose(g.grad.cpu().numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-7)
