"""The engine's choice between an op's ``fused_backward`` and its composite ``backward``:
fused when the backward needs no graph, composite under ``create_graph`` or an open jvp;
grad mode inside backward means only "record the backward" (it equals create_graph)."""
import numpy as np

import gpuad
from gpuad.autograd.function import Function
from helpers import leaf


class Cube(Function):
    """x ** 3 with both rules, logging which ran and the grad mode it saw."""

    log = []

    def forward(self, x):
        self.save_for_backward(x)
        return x ** 3

    def backward(self, gy):
        x, = self.saved_tensors
        self.log.append(("composite", gpuad.is_grad_enabled()))
        return gy * 3 * x * x

    def fused_backward(self, gy):
        x, = self.saved_tensors
        self.log.append(("fused", gpuad.is_grad_enabled()))
        return self.call_kernel(lambda g, a: 3 * g * a * a, gy, x)

    def jvp(self, tx):
        x, = self.saved_tensors
        return 3 * x * x * tx


def _cube(x):
    return Cube().apply(x)


def test_plain_backward_takes_the_fused_rule_with_grad_mode_off(device):
    Cube.log.clear()
    x = leaf([1.0, 2.0], device)
    _cube(x).sum().backward()
    assert Cube.log == [("fused", False)]
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0])


def test_create_graph_takes_the_composite_rule_and_records_it(device):
    Cube.log.clear()
    x = leaf([1.0, 2.0], device)
    g, = gpuad.autograd.grad(_cube(x).sum(), x, create_graph=True)
    assert Cube.log == [("composite", True)]
    gg, = gpuad.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), [6.0, 12.0])


def test_a_backward_inside_jvp_takes_the_composite_rule(device):
    Cube.log.clear()
    x = leaf([1.0, 2.0], device)

    def grad_of_cube(p):
        q = p.detach().requires_grad_()
        with gpuad.enable_grad():
            g, = gpuad.autograd.grad(_cube(q * p).sum(), q)
        return g

    _, tangent = gpuad.autograd.jvp(grad_of_cube, (x.detach(),),
                                    (gpuad.ones(2, device=device),))
    assert [k for k, _ in Cube.log] == ["composite"]
    # the gradient 3 q^2 p^3 at q = p (q held fixed), differentiated along p: 9 q^2 p^2
    np.testing.assert_allclose(tangent.numpy(), [9.0, 144.0])


def test_an_op_without_fused_rule_always_takes_backward(device):
    x = leaf([1.0, -2.0], device)
    x.exp().sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([1.0, -2.0]), rtol=1e-6)
