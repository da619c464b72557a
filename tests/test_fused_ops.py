"""The ops built on the fused kernels: ``linear_act``, the activations' backward and
``mse_loss``: gradcheck in float64, double backward (create_graph) against finite
differences and PyTorch, the composite path's results, and what ``linear_act`` saves."""
import numpy as np
import pytest

import gpuad
from gpuad.autograd import grad, gradcheck, jvp
from gpuad.backends import cpu_kernels
from gpuad.ops.fused import linear, linear_act

F = gpuad.nn.functional
ACTS = ["relu", "leaky_relu", "gelu", "tanh", "sigmoid"]
UNFUSED = {"relu": F.relu, "leaky_relu": F.leaky_relu, "gelu": F.gelu, "tanh": F.tanh,
           "sigmoid": F.sigmoid}


@pytest.fixture(autouse=True)
def _twins_at_every_size(monkeypatch):
    """Small tensors would take NumPy on CPU: run them through the Numba twins here."""
    monkeypatch.setattr(cpu_kernels, "MIN_ELEMENTS", 1)


def _tensors(device, *shapes, dtype=gpuad.float64, requires_grad=True):
    return [gpuad.randn(*s, dtype=dtype, device=device, requires_grad=requires_grad)
            for s in shapes]


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_act_gradcheck(device, activation, bias):
    x, w, b = _tensors(device, (3, 4), (5, 4), (5,))
    args = (x, w, b) if bias else (x, w)
    assert gradcheck(lambda *a: linear_act(a[0], a[1], a[2] if bias else None, activation),
                     args)


@pytest.mark.parametrize("activation", ACTS)
def test_linear_act_gradcheck_of_one_input_and_batched(device, activation):
    x, = _tensors(device, (2, 3, 4))
    w, b = _tensors(device, (5, 4), (5,), requires_grad=False)
    assert gradcheck(lambda x: linear_act(x, w, b, activation), (x,))
    x, = _tensors(device, (4,), requires_grad=False)  # a single sample
    w, = _tensors(device, (5, 4))
    assert gradcheck(lambda w: linear_act(x, w, b, activation), (w,))


@pytest.mark.parametrize("activation", ACTS)
def test_linear_act_equals_the_composite_ops_in_float32(device, activation):
    x, w, b = _tensors(device, (16, 32), (24, 32), (24,), dtype=gpuad.float32)
    v = gpuad.randn(16, 24, device=device)
    fused = linear_act(x, w, b, activation)
    (fused * v).sum().backward()
    grads = [t.grad.numpy() for t in (x, w, b)]
    for t in (x, w, b):
        t.grad = None
    plain = UNFUSED[activation](linear(x, w, b))
    (plain * v).sum().backward()
    np.testing.assert_allclose(fused.detach().numpy(), plain.detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    for got, t in zip(grads, (x, w, b)):
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-4, atol=1e-5)


def _double_backward_check(f, inputs, v):
    """Hessian-vector products of ``f`` (summed against ``v``) by create_graph, against
    central differences of the gradient."""
    gs = grad((f(*inputs) * v).sum(), inputs, create_graph=True)
    directions = [gpuad.randn(*t.shape, dtype=t.dtype, device=t.device) for t in inputs]
    total = sum((g * d).sum() for g, d in zip(gs, directions))
    # relu's gradient has no graph back to x when w is constant: a zero Hessian
    hv = grad(total, inputs, allow_unused=True) if total.requires_grad else [None] * len(gs)
    eps = 1e-6

    def gradient(sign):
        at = [(t + sign * eps * d).detach().requires_grad_() for t, d in zip(inputs, directions)]
        return grad((f(*at) * v).sum(), at)

    for h, plus, minus in zip(hv, gradient(1), gradient(-1)):
        numerical = (plus - minus).numpy() / (2 * eps)
        got = np.zeros_like(numerical) if h is None else h.numpy()
        np.testing.assert_allclose(got, numerical, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", ACTS)
def test_linear_act_double_backward(device, activation):
    x, w, b = _tensors(device, (3, 4), (5, 4), (5,))
    v = gpuad.randn(3, 5, dtype=gpuad.float64, device=device)
    _double_backward_check(lambda x, w, b: linear_act(x, w, b, activation), [x, w, b], v)
    # one input requiring grad: gelu rebuilds its pre-activation from what it kept
    w.requires_grad_(False)
    b.requires_grad_(False)
    _double_backward_check(lambda x: linear_act(x, w, b, activation), [x], v)


@pytest.mark.parametrize("activation", ACTS)
def test_activation_double_backward(device, activation):
    x, = _tensors(device, (4, 3))
    v = gpuad.randn(4, 3, dtype=gpuad.float64, device=device)
    _double_backward_check(UNFUSED[activation], [x], v)


@pytest.mark.parametrize("activation", ACTS + ["linear_act"])
def test_double_backward_matches_torch(activation):
    torch = pytest.importorskip("torch")
    x, w, b = _tensors("cpu", (3, 4), (5, 4), (5,))
    n = x.shape if activation != "linear_act" else (3, 5)
    v, u = gpuad.randn(*n, dtype=gpuad.float64), gpuad.randn(3, 4, dtype=gpuad.float64)

    def ours(x):  # squared: relu's own second derivative is zero
        return (linear_act(x, w, b, "gelu") if activation == "linear_act" else
                UNFUSED[activation](x)) ** 2

    def theirs(x):
        tF = torch.nn.functional
        if activation == "linear_act":
            return tF.gelu(tF.linear(x, torch.tensor(w.detach().numpy()),
                                     torch.tensor(b.detach().numpy()))) ** 2
        return getattr(tF, activation)(x) ** 2

    g, = grad((ours(x) * v).sum(), x, create_graph=True)
    (g * u).sum().backward()
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    tg, = torch.autograd.grad((theirs(tx) * torch.tensor(v.numpy())).sum(), tx,
                              create_graph=True)
    (tg * torch.tensor(u.numpy())).sum().backward()
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-10)


def _saved_ids(y):
    return {id(a) for a in y.grad_fn.saved_arrays()}


def test_linear_act_saves_the_minimum(device):
    x, w, b = _tensors(device, (3, 4), (5, 4), (5,))
    x.requires_grad_(False)
    y = linear_act(x, w, b, "relu")  # w's gradient needs x; y gives relu's gradient
    assert _saved_ids(y) == {id(x.data), id(y.data)}
    w.requires_grad_(False)
    x.requires_grad_(True)
    y = linear_act(x, w, b, "tanh")
    assert _saved_ids(y) == {id(w.data), id(y.data)}
    assert len(_saved_ids(linear_act(x, w, b, "gelu"))) == 4  # x, w, b, pre-activation


@pytest.mark.parametrize("activation", ACTS)
def test_linear_act_forward_mode(device, activation):
    x, w, b = _tensors(device, (3, 4), (5, 4), (5,), requires_grad=False)
    tangents = _tensors(device, (3, 4), (5, 4), (5,), requires_grad=False)
    _, fused = jvp(lambda *a: linear_act(*a, activation), (x, w, b), tangents)
    _, plain = jvp(lambda x, w, b: UNFUSED[activation](linear(x, w, b)), (x, w, b), tangents)
    np.testing.assert_allclose(fused.numpy(), plain.numpy(), rtol=1e-10, atol=1e-12)


def test_linear_act_takes_the_composite_ops_for_other_operands(device):
    x, w, b = _tensors(device, (3, 4), (5, 4), (1, 5))
    y = linear_act(x, w, b, "relu")  # a (1, 5) bias: not the fused op's
    assert y.grad_fn.name == "Relu" and y.dtype == gpuad.float64
    with pytest.raises(TypeError, match="same dtype"):  # as in PyTorch: no promotion
        linear_act(x.float(), w, None, "relu")
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        linear_act(x, w, None, "swish")


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_loss_gradcheck_and_double_backward(device, reduction):
    x, t = _tensors(device, (3, 4), (3, 4))
    assert gradcheck(lambda x, t: F.mse_loss(x, t, reduction), (x, t))
    one = gpuad.ones((), dtype=gpuad.float64, device=device)
    _double_backward_check(lambda x, t: F.mse_loss(x * x, t, reduction), [x, t], one)


def test_mse_loss_values_and_fallbacks(device):
    x, t = _tensors(device, (5, 2), (5, 2), dtype=gpuad.float32)
    d = (x - t).detach().numpy()
    assert F.mse_loss(x, t).grad_fn.name == "MSELoss"
    np.testing.assert_allclose(F.mse_loss(x, t).item(), (d * d).mean(), rtol=1e-6)
    np.testing.assert_allclose(F.mse_loss(x, t, "sum").item(), (d * d).sum(), rtol=1e-6)
    np.testing.assert_allclose(F.mse_loss(x, t, "none").detach().numpy(), d * d, rtol=1e-6)
    ints = gpuad.tensor([1, 2], device=device)
    assert F.mse_loss(ints, ints, "sum").item() == 0
    with pytest.raises(ValueError, match="reduction must be"):
        F.mse_loss(x, t, "max")
    _, tangent = jvp(lambda x: F.mse_loss(x, t.detach()), (x.detach(),), (x.detach(),))
    np.testing.assert_allclose(tangent.item(), 2 * (d * x.detach().numpy()).mean(), rtol=1e-5)
