"""float16 ``erf`` and ``gelu`` stay float16 on every device (CuPy's erf loop table turns
float16 into float64, the Numba twin into float32): computed in float32 and rounded once,
as PyTorch computes them, forward and backward, alone and fused with a Linear."""
import numpy as np
import pytest

import gpuad
from gpuad.autograd import grad
from gpuad.ops.elementwise import erf
from gpuad.ops.fused import linear_act

F = gpuad.nn.functional
HALF = gpuad.float16


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _values(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape) * 2


def _pair(torch, values, device):
    return (gpuad.tensor(values, dtype=HALF, device=device, requires_grad=True),
            torch.tensor(values, dtype=torch.float16, requires_grad=True))


def _close(got, want):
    assert got.dtype == HALF
    np.testing.assert_allclose(got.detach().cpu().numpy().astype(np.float64),
                               want.detach().numpy().astype(np.float64), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("name", ["erf", "gelu"])
def test_float16_erf_and_gelu_stay_float16_forward_and_backward(torch, device, name):
    (x, tx), (v, tv) = _pair(torch, _values((4, 6)), device), _pair(torch, _values((4, 6), 1),
                                                                     device)
    ours = erf if name == "erf" else F.gelu
    theirs = torch.erf if name == "erf" else torch.nn.functional.gelu
    y, ty = ours(x), theirs(tx)
    _close(y, ty)
    once = ours(x.detach().to(gpuad.float32)).to(HALF)  # float32, rounded once
    assert (y == once).all().item()
    (y * v.detach()).sum().backward()  # the fused backward (gelu: act_backward)
    (ty * tv.detach()).sum().backward()
    _close(x.grad, tx.grad)
    g, = grad((ours(x) * v.detach()).sum(), x, create_graph=True)  # Tensor ops
    _close(g, tx.grad)


def test_float16_gelu_fused_with_a_linear_stays_float16(torch, device):
    (x, tx), (w, tw), (b, tb) = (_pair(torch, _values(s, k) / 2, device)
                                 for k, s in enumerate([(5, 4), (6, 4), (6,)]))
    y = linear_act(x, w, b, "gelu")
    ty = torch.nn.functional.gelu(torch.nn.functional.linear(tx, tw, tb))
    assert y.grad_fn.name == "LinearAct"
    _close(y, ty)
    gs = grad(y.sum(), [x, w, b])  # act_bias_backward
    tgs = torch.autograd.grad(ty.sum(), [tx, tw, tb])
    for g, tg in zip(gs, tgs):
        _close(g, tg)
    model = gpuad.nn.Sequential(gpuad.nn.Linear(4, 6), gpuad.nn.GELU()).to(device).to(HALF)
    out = model(x.detach())
    out.sum().backward()
    assert out.dtype == HALF and model[0].weight.grad.dtype == HALF


def test_backend_erf_keeps_the_dtype_of_every_floating_input(device):
    backend = gpuad.backends.backend_for(device)
    for dtype in (gpuad.float16, gpuad.float32, gpuad.float64):
        x = backend.asarray(np.linspace(-2, 2, 5), dtype)
        assert backend.erf(x).dtype == dtype
