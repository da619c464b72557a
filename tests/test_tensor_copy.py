"""copy.copy, copy.deepcopy and pickle of tensors, parameters, models and optimizers."""
import copy
import pickle

import numpy as np
import pytest

import gpuad
from gpuad import nn


def test_a_deep_copy_has_its_own_data_and_grad(device):
    t = gpuad.tensor([1., 2., 3.], device=device, requires_grad=True)
    (t * t).sum().backward()
    d = copy.deepcopy(t)
    assert d.requires_grad and d.is_leaf and str(d.device) == str(t.device)
    with gpuad.no_grad():
        d.add_(1)
        d.grad.zero_()
    assert t.tolist() == [1., 2., 3.] and t.grad.tolist() == [2., 4., 6.]


def test_a_non_leaf_refuses_deepcopy_and_names_the_fix(device):
    t = gpuad.ones(2, device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        copy.deepcopy(t * 2)


def test_a_shallow_copy_shares_the_data_as_in_pytorch(device):
    t = gpuad.ones(3, device=device, requires_grad=True)
    c = copy.copy(t)
    assert c is not t and c.requires_grad
    with gpuad.no_grad():
        c.mul_(5)
    assert t.tolist() == [5., 5., 5.]


def test_a_deep_copied_model_trains_apart_and_keeps_tied_weights_tied(device):
    gpuad.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4)).to(device)
    m[2].weight = m[0].weight  # tied: one Parameter in two places
    c = copy.deepcopy(m)
    assert c[2].weight is c[0].weight and c[0].weight is not m[0].weight
    assert isinstance(c[0].weight, nn.Parameter)
    x = gpuad.randn(3, 4, device=device)
    np.testing.assert_array_equal(c(x).detach().numpy(), m(x).detach().numpy())
    opt = gpuad.optim.SGD(c.parameters(), lr=0.5)
    c(x).sum().backward()
    opt.step()
    assert m[0].weight.grad is None
    assert not np.array_equal(c[0].weight.detach().numpy(), m[0].weight.detach().numpy())


def test_a_pickled_model_and_optimizer_come_back_equal(device):
    gpuad.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2)).to(device)
    opt = gpuad.optim.Adam(m.parameters(), lr=0.1)
    x = gpuad.randn(4, 3, device=device)
    m(x).sum().backward()
    opt.step()
    m2, opt2 = pickle.loads(pickle.dumps((m, opt)))
    assert [p.device for p in m2.parameters()] == [p.device for p in m.parameters()]
    np.testing.assert_array_equal(m2(x).detach().numpy(), m(x).detach().numpy())
    for o in (opt, opt2):  # the same next step from the same state
        o.zero_grad()
    m(x).sum().backward()
    m2(x).sum().backward()
    opt.step()
    opt2.step()
    for a, b in zip(m.parameters(), m2.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_pickle_keeps_dtype_requires_grad_and_one_tensor_reached_twice(device):
    t = gpuad.arange(6, device=device).reshape(2, 3).to(gpuad.float16).requires_grad_()
    a, b = pickle.loads(pickle.dumps([t, t]))
    assert a is b and a.dtype == gpuad.float16 and a.requires_grad and a.is_leaf
    assert a.tolist() == t.tolist()


def test_a_tensor_with_hooks_refuses_to_be_copied_rather_than_drop_them(device):
    t = gpuad.ones(2, device=device, requires_grad=True)
    t.register_hook(lambda g: g * 2)
    for copier in (copy.deepcopy, pickle.dumps):
        with pytest.raises(RuntimeError, match="hooks"):
            copier(t)
