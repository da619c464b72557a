"""The engine and the Tensor around it: accumulation, retain_graph, autograd.grad, hooks,
grad modes, dtypes, factories, conversions, repr and in-place ops."""
import numpy as np
import pytest

import gpuad
from gpuad import no_grad, enable_grad, tensor
from gpuad.autograd import grad
from helpers import leaf

F64 = gpuad.float64


# --- the backward sweep ------------------------------------------------------------------
def test_long_chain_needs_no_recursion(device):
    x = leaf(2.0, device)
    y = x * 3
    for _ in range(100_000):   # negation: the cheapest op, to keep the test quick
        y = -y
    y.backward()
    assert y.item() == 6.0 and x.grad.item() == 3.0
    del y                      # freeing the chain must not recurse either


def test_tensor_used_several_times_accumulates(device):
    x = leaf([1.0, -2.0], device)
    y = x * 3
    ((y + y * x) + x.exp()).sum().backward()      # d/dx (3x + 3x^2 + e^x)
    np.testing.assert_allclose(x.grad.numpy(), 3 + 6 * x.detach().numpy()
                               + np.exp(x.detach().numpy()), rtol=1e-6)


def test_grad_accumulates_across_backward_calls(device):
    x = leaf([1.0, 2.0], device)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0])


def test_retain_graph_allows_a_second_backward(device):
    x = leaf([1.0, 2.0], device)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)


def test_backward_with_explicit_gradient(device):
    x = leaf([1.0, 2.0, 3.0], device)
    (x * x).backward(tensor([1.0, 0.0, -1.0], device=device))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 0.0, -6.0])


def test_grad_has_the_leaf_dtype_and_device(device):
    x = leaf([1.0, 2.0], device)
    (x.double() * 2).sum().backward()
    assert x.grad.dtype == gpuad.float32 and x.grad.device == x.device
    assert not x.grad.requires_grad and x.grad.grad_fn is None


def test_zero_exponent_has_zero_gradient_at_zero(device):
    x, b = leaf([0.0, 2.0], device, F64), leaf([0.0, 3.0], device, F64)
    (x ** 0 + x ** b).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 12.0])
    np.testing.assert_allclose(b.grad.numpy(), [0.0, 8 * np.log(2.0)])


# --- autograd.grad --------------------------------------------------------------------------
def test_autograd_grad_leaves_dot_grad_alone(device):
    x, w = leaf([1.0, 2.0], device), leaf([3.0, -1.0], device)
    gx, gw = grad((x * w).sum(), [x, w])
    np.testing.assert_allclose(gx.numpy(), [3.0, -1.0])
    np.testing.assert_allclose(gw.numpy(), [1.0, 2.0])
    assert x.grad is None and w.grad is None


def test_autograd_grad_of_a_non_leaf_input(device):
    x = leaf([1.0, 2.0], device)
    calls = []
    x.register_hook(calls.append)
    h = x * x
    gh, = grad((h * 3).sum(), h)
    np.testing.assert_allclose(gh.numpy(), [3.0, 3.0])
    assert x.grad is None and calls == []   # x was not asked for: its hook does not run


def test_autograd_grad_allow_unused(device):
    x, unused = leaf([1.0], device), leaf([2.0], device)
    gx, gu = grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gx.item() == 2.0 and gu is None
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        grad((x * 2).sum(), [x, unused])


def test_autograd_grad_with_grad_outputs(device):
    x = leaf([1.0, 2.0], device)
    gx, = grad(x * x, x, grad_outputs=tensor([1.0, 10.0], device=device))
    np.testing.assert_allclose(gx.numpy(), [2.0, 40.0])


# --- retain_grad and hooks ------------------------------------------------------------------
def test_retain_grad_on_a_non_leaf(device):
    x = leaf([1.0, 2.0], device)
    h = x * 3
    other = x * 2
    h.retain_grad()
    (h * h + other).sum().backward()
    assert h.retains_grad and not h.is_leaf
    np.testing.assert_allclose(h.grad.numpy(), [6.0, 12.0])   # 2 h
    assert other.grad is None


def test_hook_on_a_leaf_sees_the_total_gradient_once(device):
    x = leaf([1.0, 2.0], device)
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    (x * 2 + x * 3).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [5.0, 5.0])


def test_hook_replaces_the_gradient_of_a_leaf(device):
    x = leaf([1.0, 2.0], device)
    x.register_hook(lambda g: g * 10)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [20.0, 40.0])


def test_hook_on_a_non_leaf_changes_what_flows_back(device):
    x = leaf([1.0, 2.0], device)
    h = x * x
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy().copy()))
    h.register_hook(lambda g: g * 0 + 1.0)   # replace the gradient of h by ones
    (h * 5).sum().backward()
    np.testing.assert_allclose(seen[0], [5.0, 5.0])
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])    # 1 * 2x


def test_removed_hook_is_not_called(device):
    x = leaf([1.0, 2.0], device)
    calls = []
    handle = x.register_hook(lambda g: calls.append(1) or g * 100)
    handle.remove()
    (x * 2).sum().backward()
    assert calls == []
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


# --- grad modes and detach ------------------------------------------------------------------
def test_no_grad_records_nothing(device):
    x = leaf([1.0, 2.0], device)
    with no_grad():
        y = x * 2 + 1
        assert not gpuad.is_grad_enabled()
    assert gpuad.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    np.testing.assert_allclose(y.numpy(), [3.0, 5.0])


def test_enable_grad_inside_no_grad(device):
    x = leaf([1.0], device)
    with no_grad():
        with enable_grad():
            y = x * 2
        z = x * 2
    assert y.requires_grad and y.grad_fn is not None
    assert z.grad_fn is None


def test_grad_modes_as_decorators(device):
    x = leaf([1.0], device)

    @no_grad()
    def evaluate(t):
        return t * 2

    @enable_grad()
    def train(t):
        return t * 2

    assert evaluate(x).grad_fn is None
    with no_grad():
        assert train(x).grad_fn is not None
    assert gpuad.is_grad_enabled()


def test_grad_mode_is_restored_after_an_exception(device):
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert gpuad.is_grad_enabled()


def test_detach_shares_data_and_stops_gradients(device):
    x = leaf([1.0, 2.0], device)
    d = (x * 2).detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    (x * d).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])   # d is a constant
    e = x.detach()
    with no_grad():
        e.add_(1)
    np.testing.assert_allclose(x.detach().numpy(), [2.0, 3.0])  # same memory


def test_integer_tensors_carry_no_gradient(device):
    i = tensor([1, 2], device=device)
    with pytest.raises(RuntimeError, match="only floating-point tensors"):
        i.requires_grad_()
    x = leaf([0.5, 0.25], device)
    y = i * 3
    assert not y.requires_grad and y.grad_fn is None
    z = (i * x).sum()
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 2.0])
    assert i.grad is None


def test_comparisons_and_argmax_carry_no_gradient(device):
    x = leaf([1.0, 3.0, 2.0], device)
    for out in (x > 1, x == x, x.argmax(), x.max(0).indices):
        assert not out.requires_grad and out.grad_fn is None
    assert x.argmax().item() == 1 and x.argmax().dtype == gpuad.int64


# --- dtypes -----------------------------------------------------------------------------------
def _t(values, dtype, device):
    return tensor(values, dtype=dtype, device=device)


@pytest.mark.parametrize("fn, expected", [
    (lambda d: _t([1.0], "float32", d) * 2.5, gpuad.float32),
    (lambda d: 2.5 * _t([1.0], "float32", d), gpuad.float32),
    (lambda d: _t([1.0], "float32", d) + _t([1.0], "float64", d), gpuad.float64),
    (lambda d: _t([3], "int64", d) / 2, gpuad.float32),
    (lambda d: _t([3], "int64", d) / _t([2], "int64", d), gpuad.float32),
    (lambda d: _t(2.0, "float64", d) * _t([1.0], "float32", d), gpuad.float32),
    (lambda d: _t([1], "int64", d) * 2.5, gpuad.float32),
    (lambda d: _t([1], "int32", d) + 5, gpuad.int32),
    (lambda d: _t([1], "int32", d) + _t(5, "int64", d), gpuad.int32),
    (lambda d: _t([1], "int64", d) + _t(5.0, "float64", d), gpuad.float64),
    (lambda d: _t([1.0], "float16", d) * 2.0, gpuad.float16),
    (lambda d: _t([True], "bool", d) + 1, gpuad.int64),
    (lambda d: _t([1], "int64", d) ** 2, gpuad.int64),
    (lambda d: _t([True, False], "bool", d).sum(), gpuad.int64),
    (lambda d: _t([1.0], "float32", d).double(), gpuad.float64),
])
def test_dtype_promotion_follows_pytorch(device, fn, expected):
    assert fn(device).dtype == expected


# --- factories --------------------------------------------------------------------------------
@pytest.mark.parametrize("data, dtype", [
    (2.0, gpuad.float32), (2, gpuad.int64), (True, gpuad.bool),
    ([1, 2.5], gpuad.float32), ([[1, 2], [3, 4]], gpuad.int64),
    (np.zeros(2, np.float64), gpuad.float64), (np.zeros(2, np.int32), gpuad.int32),
])
def test_tensor_infers_dtype(device, data, dtype):
    t = tensor(data, device=device)
    assert t.dtype == dtype and t.device == gpuad.device(device)
    np.testing.assert_array_equal(t.numpy(), np.array(data))


@pytest.mark.parametrize("make, shape, dtype, values", [
    (lambda d: gpuad.zeros(2, 3, device=d), (2, 3), gpuad.float32, 0),
    (lambda d: gpuad.zeros((2, 3), device=d), (2, 3), gpuad.float32, 0),
    (lambda d: gpuad.ones(2, dtype=gpuad.int64, device=d), (2,), gpuad.int64, 1),
    (lambda d: gpuad.full((2,), 3, device=d), (2,), gpuad.int64, 3),
    (lambda d: gpuad.full((1, 2), 1.5, device=d), (1, 2), gpuad.float32, 1.5),
    (lambda d: gpuad.arange(4, device=d), (4,), gpuad.int64, [0, 1, 2, 3]),
    (lambda d: gpuad.arange(1, 7, 2, device=d), (3,), gpuad.int64, [1, 3, 5]),
    (lambda d: gpuad.arange(1, 2, 0.25, device=d), (4,), gpuad.float32, [1, 1.25, 1.5, 1.75]),
    (lambda d: gpuad.arange(3, dtype=gpuad.float64, device=d), (3,), gpuad.float64, [0, 1, 2]),
    (lambda d: gpuad.zeros_like(tensor([1, 2], device=d)), (2,), gpuad.int64, 0),
    (lambda d: gpuad.ones_like(gpuad.zeros(3, dtype=F64, device=d)), (3,), gpuad.float64, 1),
    (lambda d: gpuad.full_like(gpuad.zeros(2, device=d), 7), (2,), gpuad.float32, 7),
    (lambda d: gpuad.zeros_like(tensor([1, 2], device=d), dtype=gpuad.float32), (2,),
     gpuad.float32, 0),
])
def test_factories(device, make, shape, dtype, values):
    t = make(device)
    assert t.shape == shape and t.dtype == dtype and t.device == gpuad.device(device)
    np.testing.assert_array_equal(t.numpy(), np.broadcast_to(values, shape))


def test_factories_requires_grad(device):
    for t in (gpuad.zeros(2, device=device, requires_grad=True),
              gpuad.randn(2, device=device, requires_grad=True),
              gpuad.ones_like(gpuad.zeros(2, device=device), requires_grad=True),
              tensor([1.0], device=device, requires_grad=True)):
        assert t.requires_grad and t.is_leaf


def test_random_factories_follow_manual_seed(device):
    gpuad.manual_seed(7)
    a, u = gpuad.randn(5, device=device), gpuad.rand(100, device=device)
    gpuad.manual_seed(7)
    b, v = gpuad.randn(5, device=device), gpuad.rand(100, device=device)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(u.numpy(), v.numpy())
    assert not np.array_equal(a.numpy(), gpuad.randn(5, device=device).numpy())
    assert 0 <= u.numpy().min() and u.numpy().max() < 1
    assert gpuad.randn(2, dtype=F64, device=device).dtype == gpuad.float64
    assert gpuad.randn_like(a).shape == (5,) and gpuad.rand_like(a).dtype == gpuad.float32


# --- conversions ------------------------------------------------------------------------------
def test_item_numpy_tolist(device):
    x = tensor([[1.5, 2.0]], device=device)
    assert x.tolist() == [[1.5, 2.0]]
    assert x[0, 1].item() == 2.0 and isinstance(x[0, 1].item(), float)
    assert isinstance(tensor(3, device=device).item(), int)
    assert isinstance(x.numpy(), np.ndarray)
    np.testing.assert_array_equal(x.numpy(), [[1.5, 2.0]])
    assert leaf([1.0], device).detach().numpy().tolist() == [1.0]


def test_numpy_shares_memory_on_cpu():
    x = tensor([1.0, 2.0])
    x.numpy()[0] = 5.0
    assert x.tolist() == [5.0, 2.0]


def test_to_dtype(device):
    x = tensor([1.7, -2.2], device=device)
    assert x.to(gpuad.float32) is x
    assert x.to(F64).dtype == gpuad.float64
    assert x.to(gpuad.int64).tolist() == [1, -2]
    assert x.long().dtype == gpuad.int64 and x.double().dtype == gpuad.float64
    assert x.to(device, F64).dtype == gpuad.float64


def test_to_dtype_stays_in_the_graph(device):
    x = leaf([1.0, 2.0], device)
    (x.to(F64) * 3).sum().backward()
    assert x.grad.dtype == gpuad.float32
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


# --- repr -------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, text", [
    (lambda: tensor(4.0), "tensor(4.)"),
    (lambda: tensor(-0.5), "tensor(-0.5000)"),
    (lambda: tensor([1.0, 2.0], requires_grad=True), "tensor([1., 2.], requires_grad=True)"),
    (lambda: tensor([1.5, -2.0]), "tensor([ 1.5000, -2.0000])"),
    (lambda: tensor([[1.0, -2.5], [100.0, 3.0]]),
     "tensor([[  1.0000,  -2.5000],\n        [100.0000,   3.0000]])"),
    (lambda: tensor([[1.0, 10.0], [100.0, -5.0]]),
     "tensor([[  1.,  10.],\n        [100.,  -5.]])"),
    (lambda: tensor([-1e-5, 1.0]), "tensor([-1.0000e-05,  1.0000e+00])"),
    (lambda: tensor([1.0, 2000.0]), "tensor([1.0000e+00, 2.0000e+03])"),
    (lambda: tensor([0.5, float("nan")]), "tensor([0.5000,    nan])"),
    (lambda: tensor([1, -20, 3]), "tensor([  1, -20,   3])"),
    (lambda: tensor([True, False]), "tensor([ True, False])"),
    (lambda: tensor([1, 2], dtype=gpuad.int32), "tensor([1, 2], dtype=gpuad.int32)"),
    (lambda: tensor([0.25], dtype=F64), "tensor([0.2500], dtype=gpuad.float64)"),
    (lambda: tensor([1.0, 2.0], requires_grad=True) * 2,
     "tensor([2., 4.], grad_fn=<MulBackward>)"),
    (lambda: gpuad.zeros(0), "tensor([])"),
    (lambda: gpuad.zeros(2, 0, dtype=gpuad.int64), "tensor([], size=(2, 0), dtype=gpuad.int64)"),
    (lambda: gpuad.arange(2000.0), "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., "
                                   "1.9970e+03, 1.9980e+03,\n        1.9990e+03])"),
    (lambda: gpuad.arange(9, dtype=F64, requires_grad=True) / 3,
     "tensor([0.0000, 0.3333, 0.6667, 1.0000, 1.3333, 1.6667, 2.0000, 2.3333, 2.6667],\n"
     "       dtype=gpuad.float64, grad_fn=<DivBackward>)"),
])
def test_repr_like_pytorch(make, text):
    assert repr(make()) == text


# --- in-place ops -----------------------------------------------------------------------------
def test_in_place_on_a_leaf_under_no_grad(device):
    w = leaf([1.0, 2.0], device)
    version = w._version
    with no_grad():
        w.add_(1)
        w.mul_(2)
        w.sub_(tensor([1.0, 1.0], device=device))
        w -= 1
    np.testing.assert_allclose(w.detach().numpy(), [2.0, 4.0])
    assert w._version == version + 4
    assert w.requires_grad and w.is_leaf
    (w * w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [4.0, 8.0])
    with no_grad():
        w.grad.zero_()
        w.fill_(7)
    assert w.grad.tolist() == [0.0, 0.0] and w.tolist() == [7.0, 7.0]


@pytest.mark.parametrize("change, value, x_grad", [
    (lambda y, z: y.add_(1), [3.0, 5.0], [2.0, 2.0]),
    (lambda y, z: y.sub_(1, alpha=2), [0.0, 2.0], [2.0, 2.0]),
    (lambda y, z: y.mul_(3), [6.0, 12.0], [6.0, 6.0]),
    (lambda y, z: y.div_(4), [0.5, 1.0], [0.5, 0.5]),
    (lambda y, z: y.clamp_(max=3.0), [2.0, 3.0], [2.0, 0.0]),
    (lambda y, z: y.zero_(), [0.0, 0.0], [0.0, 0.0]),
    (lambda y, z: y.fill_(5), [5.0, 5.0], [0.0, 0.0]),
])
def test_in_place_on_a_non_leaf_rebases_its_gradient(device, change, value, x_grad):
    x = leaf([1.0, 2.0], device)
    y = x * 2
    assert change(y, None) is y
    np.testing.assert_allclose(y.detach().numpy(), value)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), x_grad)


@pytest.mark.parametrize("change, x_grad, z_grad", [
    (lambda y, z: y.mul_(z), [6.0, 8.0], [2.0, 4.0]),     # z's grad needs the old y
    (lambda y, z: y.add_(z), [2.0, 2.0], [1.0, 1.0]),
    (lambda y, z: y.div_(z), [2 / 3, 0.5], [-2 / 9, -0.25]),
    (lambda y, z: y.copy_(z), [0.0, 0.0], [1.0, 1.0]),
])
def test_in_place_with_an_operand_that_requires_grad(device, change, x_grad, z_grad):
    x, z = leaf([1.0, 2.0], device), leaf([3.0, 4.0], device)
    y = x * 2
    change(y, z)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), x_grad, rtol=1e-6)
    np.testing.assert_allclose(z.grad.numpy(), z_grad, rtol=1e-6)


def test_in_place_makes_a_constant_join_the_graph(device):
    z = leaf([3.0, 4.0], device)
    c = gpuad.ones(2, device=device)
    c += z * z
    assert c.requires_grad and c.grad_fn is not None
    c.sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), [6.0, 8.0])


def test_in_place_change_of_a_saved_tensor_is_detected(device):
    x = leaf([1.0, 2.0], device)
    y = x.exp()
    y.add_(1)
    with pytest.raises(RuntimeError, match=r"Exp saved for backward was changed by an "
                                           r"in-place operation \(version 0 -> 1\)"):
        y.sum().backward()


def test_in_place_through_a_view_bumps_the_shared_version(device):
    x = leaf([1.0, 2.0, 3.0], device)
    y = x.exp()
    view = y[1:]
    with no_grad():
        view.mul_(2)
    assert y._version == view._version == 1
    np.testing.assert_allclose(y.detach().numpy(), np.exp([1.0, 2.0, 3.0]) * [1, 2, 2],
                               rtol=1e-6)
    with pytest.raises(RuntimeError, match="in-place operation"):
        y.sum().backward()


def test_integer_index_gives_a_view(device):
    x = tensor([1.0, 2.0, 3.0], device=device)
    first, row = x[0], x[1:]
    first.add_(10)
    row.mul_(2)
    assert x.tolist() == [11.0, 4.0, 6.0]
    assert first.item() == 11.0 and first.shape == ()


def test_zero_dim_results_hold_arrays(device):
    x = leaf([1.0, 2.0], device)
    s = (x * x).sum()
    assert s.shape == () and isinstance(s.detach().numpy(), np.ndarray)
    with no_grad():
        t = s * 1
        t.add_(1)
    assert t.item() == 6.0


def test_setitem_under_no_grad(device):
    x = gpuad.zeros(2, 3, device=device)
    x[0, 1:] = 5.0
    x[tensor([1], device=device)] = tensor([1.0, 2.0, 3.0], device=device)
    assert x.tolist() == [[0.0, 5.0, 5.0], [1.0, 2.0, 3.0]]
    assert x._version == 2


def test_leaf_grad_owns_its_memory():
    """.grad never aliases the caller's gradient= nor is a view (zero_() must be safe)."""
    x = gpuad.randn(3, 2, requires_grad=True)
    g = gpuad.ones(3, 2)
    (x + gpuad.randn(3, 2)).backward(g)
    x.grad.zero_()
    assert g.tolist() == [[1.0, 1.0]] * 3
    w = gpuad.randn(4, 3, requires_grad=True)
    gpuad.nn.functional.linear(gpuad.randn(5, 3), w).sum().backward()
    assert w.grad.data.flags.c_contiguous and w.grad.data.base is None
