"""Second derivatives: create_graph, grad of grad, Hessian-vector products."""
import numpy as np
import pytest

import gpuad
from gpuad.autograd import grad, hvp

F = gpuad.nn.functional

# scalar functions of one (4, 3) float64 input, covering the ops whose backward is itself
# differentiated (including fused backwards, which fall back to composite rules)
FUNCTIONS = {
    "cubic": lambda x: (x ** 3).sum(),
    "exp_log": lambda x: (x.exp() * (x * x + 1).log()).sum(),
    "tanh_sigmoid": lambda x: (x.tanh() * x.sigmoid()).sum(),
    "gelu_softplus": lambda x: (x.gelu() + x.softplus()).sum(),
    "softmax": lambda x: (x.softmax(1) * x).sum(),
    "log_softmax": lambda x: (x.log_softmax(0) ** 2).sum(),
    "logsumexp_var": lambda x: x.logsumexp(1).sum() * x.var(),
    "matmul": lambda x: ((x @ x.T) ** 2).sum(),
    "div_sqrt": lambda x: (x / (x * x + 2).sqrt()).sum(),
    "cross_entropy": lambda x: F.cross_entropy(x * x, gpuad.tensor([0, 2, 1, 1],
                                                                   device=x.device)),
    "linear_relu": lambda x: F.linear(x, x * 0.5 + 1).relu().pow(2).sum(),
    "index": lambda x: (x[[0, 0, 3]] ** 3).sum() + (x[x > 0] ** 2).sum(),
}


def _x(device):
    return gpuad.randn(4, 3, dtype=gpuad.float64, device=device)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_hvp_matches_finite_differences_of_gradient(device, name):
    f = FUNCTIONS[name]
    x, v = _x(device), _x(device)
    _, hv = hvp(f, x, v)
    eps = 1e-6

    def gradient(at):
        at = at.detach().requires_grad_()
        return grad(f(at), at)[0].numpy()

    numerical = (gradient(x + eps * v) - gradient(x - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hv.numpy(), numerical, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_double_backward_matches_torch(name):
    torch = pytest.importorskip("torch")
    f = FUNCTIONS[name]
    x = _x("cpu").requires_grad_()
    v = _x("cpu")
    g, = grad(f(x), x, create_graph=True)
    (g * v).sum().backward()
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    tf = _torch_version(name, torch)
    tg, = torch.autograd.grad(tf(tx), tx, create_graph=True)
    (tg * torch.tensor(v.numpy())).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-10)


def _torch_version(name, torch):
    """The same function written in PyTorch."""
    tF = torch.nn.functional
    return {
        "cubic": lambda x: (x ** 3).sum(),
        "exp_log": lambda x: (x.exp() * (x * x + 1).log()).sum(),
        "tanh_sigmoid": lambda x: (x.tanh() * x.sigmoid()).sum(),
        "gelu_softplus": lambda x: (tF.gelu(x) + tF.softplus(x)).sum(),
        "softmax": lambda x: (x.softmax(1) * x).sum(),
        "log_softmax": lambda x: (x.log_softmax(0) ** 2).sum(),
        "logsumexp_var": lambda x: x.logsumexp(1).sum() * x.var(),
        "matmul": lambda x: ((x @ x.T) ** 2).sum(),
        "div_sqrt": lambda x: (x / (x * x + 2).sqrt()).sum(),
        "cross_entropy": lambda x: tF.cross_entropy(x * x, torch.tensor([0, 2, 1, 1])),
        "linear_relu": lambda x: tF.linear(x, x * 0.5 + 1).relu().pow(2).sum(),
        "index": lambda x: (x[[0, 0, 3]] ** 3).sum() + (x[x > 0] ** 2).sum(),
    }[name]


def test_backward_with_create_graph_keeps_grad_differentiable(device):
    x = gpuad.tensor([1.5, -2.0], dtype=gpuad.float64, requires_grad=True, device=device)
    y = (x ** 3).sum()
    y.backward(create_graph=True)
    assert x.grad.requires_grad
    g = x.grad
    x.grad = None
    g.sum().backward()          # d/dx sum(3 x^2) = 6 x
    np.testing.assert_allclose(x.grad.numpy(), [9.0, -12.0])


def test_hvp_rejects_mismatched_direction(device):
    x = _x(device)
    with pytest.raises(ValueError, match="v must match the inputs' shapes"):
        hvp(lambda t: (t ** 2).sum(), x, gpuad.zeros(2, device=device, dtype=gpuad.float64))


def test_gradcheck_of_a_gradient(device):
    """gradcheck can check a function that differentiates inside (a gradgradcheck)."""
    x = gpuad.randn(3, dtype=gpuad.float64, device=device, requires_grad=True)

    def first_derivative(t):
        return grad((t.tanh() * t ** 2).sum(), t, create_graph=True)[0]

    assert gpuad.autograd.gradcheck(first_derivative, (x,))


def test_a_detached_alias_stays_outside_the_gradients_graph(device):
    # x and x.detach() hold one array: the saved operand must be the detached one
    x = gpuad.tensor([1.0, 2.0], device=device, requires_grad=True)
    g, = grad((x * x.detach()).sum(), x, create_graph=True)
    assert not g.requires_grad  # PyTorch: the gradient is the constant x.detach()
    np.testing.assert_allclose(g.numpy(), [1.0, 2.0])
    y = gpuad.tensor([3.0], device=device, requires_grad=True)
    g, = grad((y.detach() * y * y).sum(), y, create_graph=True)
    gg, = grad(g.sum(), y)
    np.testing.assert_allclose(gg.numpy(), [6.0])  # 2 * y.detach()


def test_forward_over_reverse_sees_the_tangent_of_an_aliased_operand(device):
    torch = pytest.importorskip("torch")
    import torch.autograd.forward_ad as fwAD

    def grad_of(p):
        q = p.detach().requires_grad_()
        with gpuad.enable_grad():
            g, = grad(((q * p) ** 3).sum(), q)
        return g

    x = gpuad.tensor([1.0, 2.0], device=device, dtype=gpuad.float64)
    _, tangent = gpuad.autograd.jvp(grad_of, (x,), (gpuad.ones_like(x),))
    xt = torch.tensor([1.0, 2.0], dtype=torch.float64)
    with fwAD.dual_level():
        p = fwAD.make_dual(xt, torch.ones(2, dtype=torch.float64))
        q = xt.clone().requires_grad_()
        expected = fwAD.unpack_dual(torch.autograd.grad(((q * p) ** 3).sum(), q)[0]).tangent
    np.testing.assert_allclose(tangent.numpy(), expected.numpy())
