"""The examples every autograd engine must get right."""
import pytest

import gpuad
from gpuad import tensor


def test_seed_example(device):
    a = tensor(2., requires_grad=True, device=device)
    b = tensor(0., requires_grad=True, device=device)
    c = (a - b) ** 2
    c.backward()
    assert a.grad.item() == 4
    assert b.grad.item() == -4


@pytest.mark.parametrize("x0,y0", [(3., -2.), (0.5, 7.)])
def test_polynomial(device, x0, y0):
    x = tensor(x0, requires_grad=True, device=device)
    y = tensor(y0, requires_grad=True, device=device)
    z = x * x + x * y + 2
    z.backward()
    assert x.grad.item() == pytest.approx(2 * x0 + y0)
    assert y.grad.item() == pytest.approx(x0)


def test_default_dtype_is_float32():
    assert tensor(2.).dtype == gpuad.float32
    assert tensor([1, 2]).dtype == gpuad.int64
    assert (tensor([1., 2.]) * 2.5).dtype == gpuad.float32
