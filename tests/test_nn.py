"""gpuad.nn: modules, init, the fused Sequential path, state dicts, hooks, repr."""
import math

import numpy as np
import pytest

import gpuad
from gpuad import nn


def _mlp(act=nn.ReLU):
    return nn.Sequential(nn.Linear(6, 5), act(), nn.Linear(5, 3))


# --- Parameter and Module basics ---------------------------------------------------------
def test_parameter_is_a_tensor_sharing_memory():
    t = gpuad.zeros(3)
    p = nn.Parameter(t)
    assert isinstance(p, gpuad.Tensor) and p.requires_grad and p.is_leaf
    t.add_(1)
    assert p.tolist() == [1.0, 1.0, 1.0]
    assert type(p * 2) is gpuad.Tensor
    assert repr(p).startswith("Parameter containing:\ntensor(")
    with pytest.raises(TypeError, match="wraps a Tensor"):
        nn.Parameter([1.0])


def test_registration_and_walks():
    model = nn.Sequential(_mlp(), nn.Tanh())
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.0.weight", "0.0.bias", "0.2.weight", "0.2.bias"]
    assert len(list(model.parameters())) == 4
    assert [n for n, _ in model.named_modules()] == ["", "0", "0.0", "0.1", "0.2", "1"]
    assert [type(m).__name__ for m in model.children()] == ["Sequential", "Tanh"]
    assert [n for n, _ in model.named_children()] == ["0", "1"]


def test_shared_parameters_listed_once():
    lin = nn.Linear(3, 3)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(model.parameters())) == 2
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_setattr_errors():
    class Forgot(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(gpuad.ones(1))
    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Forgot()
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="Parameter"):
        lin.weight = gpuad.ones(2, 2)
    lin.bias = None
    assert [n for n, _ in lin.named_parameters()] == ["weight"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lin.nope


def test_train_eval_and_dropout():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    assert all(m.training for m in model.modules())
    x = gpuad.ones(64, 4)
    model.eval()
    assert not any(m.training for m in model.modules())
    assert np.array_equal(model(x).detach().numpy(), model[0](x).detach().numpy())
    model.train()
    dropped = (model(x).detach().numpy() == 0).mean()
    assert 0.3 < dropped < 0.7
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_zero_grad():
    model = _mlp()
    model(gpuad.randn(2, 6)).sum().backward()
    model.zero_grad(set_to_none=False)
    assert all(not p.grad.numpy().any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_to_keeps_identity_and_moves(device):
    model = _mlp()
    params = list(model.parameters())
    model.double()
    assert all(p.dtype == gpuad.float64 for p in model.parameters())
    assert list(model.parameters())[0] is params[0]
    model.to(device).float()
    assert all(p.device == gpuad.device(device) and p.dtype == gpuad.float32 for p in params)
    with pytest.raises(TypeError, match="floating"):
        model.to(gpuad.int64)
    out = model(gpuad.randn(2, 6, device=device))
    out.sum().backward()
    assert params[0].grad.device == gpuad.device(device)


# --- Linear -------------------------------------------------------------------------------
def test_linear_init_bounds_and_statistics():
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    assert w.shape == (300, 400) and b.shape == (300,)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.mean()) < 0.02 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound  # uniform's std
    assert np.abs(b).max() > 0.9 * bound


def test_linear_init_is_seeded():
    gpuad.manual_seed(3)
    a = nn.Linear(5, 4).weight.detach().numpy()
    gpuad.manual_seed(3)
    assert np.array_equal(a, nn.Linear(5, 4).weight.detach().numpy())


def test_linear_forward_and_errors():
    lin = nn.Linear(3, 2, bias=False)
    x = gpuad.randn(4, 3)
    np.testing.assert_allclose(lin(x).detach().numpy(),
                               x.numpy() @ lin.weight.detach().numpy().T, rtol=1e-6)
    with pytest.raises(ValueError, match="last dimension is 3"):
        lin(gpuad.randn(4, 5))
    with pytest.raises(ValueError, match="non-negative int"):  # Linear(0, 3) is allowed
        nn.Linear(-1, 3)


# --- the fused path ---------------------------------------------------------------------------
@pytest.mark.parametrize("act", [nn.ReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU])
def test_fused_sequential_equals_unfused(act, device, monkeypatch):
    from gpuad.nn import container
    calls = []
    real = container.linear_act
    monkeypatch.setattr(container, "linear_act",
                        lambda *a: calls.append(a[3]) or real(*a))
    model = _mlp(act).to(device)
    x = gpuad.randn(8, 6, device=device)
    fused = model(x)
    assert calls == [act().fused_name]
    fused.sum().backward()
    g_fused = [p.grad.cpu().numpy() for p in model.parameters()]
    model.zero_grad()
    unfused = model[2](model[1](model[0](x)))
    unfused.sum().backward()
    np.testing.assert_allclose(fused.detach().cpu().numpy(), unfused.detach().cpu().numpy(),
                               rtol=1e-6, atol=1e-6)
    for a, p in zip(g_fused, model.parameters()):
        np.testing.assert_allclose(a, p.grad.cpu().numpy(), rtol=1e-5, atol=1e-6)


def test_fusion_skipped_for_hooks(monkeypatch):
    from gpuad.nn import container
    calls = []
    monkeypatch.setattr(container, "linear_act", lambda *a: calls.append(a))
    x = gpuad.randn(2, 6)
    model = _mlp()
    seen = []
    model[0].register_forward_hook(lambda m, args, out: seen.append(out.shape))
    model(x)
    assert calls == [] and seen == [(2, 5)]


# --- hooks ----------------------------------------------------------------------------------
def test_forward_hook_replaces_output_and_removes():
    lin = nn.Linear(2, 2)
    handle = lin.register_forward_hook(lambda m, args, out: out * 0)
    assert not lin(gpuad.ones(1, 2)).detach().numpy().any()
    handle.remove()
    assert lin(gpuad.ones(1, 2)).detach().numpy().any()
    with pytest.raises(TypeError, match="callable"):
        lin.register_forward_hook(3)


# --- state dicts ------------------------------------------------------------------------------
def test_state_dict_round_trip():
    a, b = _mlp(), _mlp()
    sd = a.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert not any(t.requires_grad for t in sd.values())
    result = b.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = gpuad.randn(3, 6)
    assert np.array_equal(a(x).detach().numpy(), b(x).detach().numpy())


def _snapshot(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_load_state_dict_strict_names_everything_and_changes_nothing():
    model = _mlp()
    before = _snapshot(model)
    bad = dict(model.state_dict())
    del bad["0.bias"]
    bad["extra.weight"] = gpuad.zeros(1)
    bad["2.weight"] = gpuad.zeros(3, 4)
    bad["0.weight"] = gpuad.zeros(5, 6)  # valid: must not be applied either
    with pytest.raises(RuntimeError) as err:
        model.load_state_dict(bad)
    msg = str(err.value)
    assert "missing keys: 0.bias" in msg and "unexpected keys: extra.weight" in msg
    assert "2.weight: shape (3, 4) in the state dict, (3, 5) in the model" in msg
    assert "nothing was changed" in msg
    for k, v in _snapshot(model).items():
        assert np.array_equal(v, before[k])


def test_load_state_dict_non_strict():
    model = _mlp()
    sd = {"0.weight": gpuad.zeros(5, 6), "junk": gpuad.ones(1)}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert missing == ["0.bias", "2.weight", "2.bias"] and unexpected == ["junk"]
    assert not model[0].weight.detach().numpy().any()
    with pytest.raises(RuntimeError, match="shape"):
        model.load_state_dict({"0.weight": gpuad.zeros(6, 5)}, strict=False)
    with pytest.raises(RuntimeError, match="expected a Tensor"):
        model.load_state_dict({**model.state_dict(), "0.bias": [0.0] * 5})


def test_load_state_dict_converts_dtype():
    model = _mlp()
    sd = {k: v.double() * 0 for k, v in model.state_dict().items()}
    model.load_state_dict(sd)
    assert model[0].weight.dtype == gpuad.float32 and not model[0].weight.detach().numpy().any()


# --- other layers -------------------------------------------------------------------------------
def test_layernorm_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((4, 3, 5)).astype(np.float32)
    ours = nn.LayerNorm((3, 5))
    ref = torch.nn.LayerNorm((3, 5))
    w = np.random.default_rng(1).standard_normal((3, 5)).astype(np.float32)
    with gpuad.no_grad():
        ours.weight.copy_(gpuad.tensor(w))
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(w))
    xg, xt = gpuad.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yg, yt = ours(xg), ref(xt)
    np.testing.assert_allclose(yg.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    (yg * yg).sum().backward()
    (yt * yt).sum().backward()
    np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-4,
                               atol=1e-4)
    plain = nn.LayerNorm(5, elementwise_affine=False)
    assert list(plain.parameters()) == []
    with pytest.raises(ValueError, match="ending in"):
        ours(gpuad.randn(2, 5, 3))


def test_flatten_and_losses():
    x = gpuad.randn(2, 3, 4)
    assert nn.Flatten()(x).shape == (2, 12) and nn.Flatten(0)(x).shape == (24,)
    logits, y = gpuad.randn(4, 3), gpuad.tensor([0, 2, 1, 1])
    assert nn.CrossEntropyLoss()(logits, y).item() == \
        nn.functional.cross_entropy(logits, y).item()
    a, b = gpuad.randn(3), gpuad.randn(3)
    expected = ((a.numpy() - b.numpy()) ** 2)
    assert nn.MSELoss()(a, b).item() == pytest.approx(expected.mean())
    assert nn.MSELoss("sum")(a, b).item() == pytest.approx(expected.sum())
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss("avg")


def test_sequential_container():
    model = _mlp()
    assert len(model) == 3 and isinstance(model[-1], nn.Linear)
    assert [type(m) for m in model] == [nn.Linear, nn.ReLU, nn.Linear]
    head = model[:2]
    assert isinstance(head, nn.Sequential) and head[0] is model[0]
    assert head(gpuad.randn(2, 6)).shape == (2, 5)
    model.append(nn.Sigmoid())
    assert len(model) == 4
    with pytest.raises(IndexError, match="out of range"):
        model[7]
    with pytest.raises(TypeError, match="Modules"):
        nn.Sequential(nn.ReLU(), "relu")


def test_repr_like_pytorch():
    model = nn.Sequential(nn.Linear(64, 32), nn.LeakyReLU(0.2), nn.Dropout(0.1),
                          nn.Sequential(nn.LayerNorm(32), nn.Linear(32, 10, bias=False)))
    assert repr(model) == """Sequential(
  (0): Linear(in_features=64, out_features=32, bias=True)
  (1): LeakyReLU(negative_slope=0.2)
  (2): Dropout(p=0.1)
  (3): Sequential(
    (0): LayerNorm((32,), eps=1e-05, elementwise_affine=True)
    (1): Linear(in_features=32, out_features=10, bias=False)
  )
)"""
