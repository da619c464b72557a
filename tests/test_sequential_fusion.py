"""``nn.Sequential``'s fused Linear + activation against PyTorch: which pairs fuse (the
built-in activation modules, LeakyReLU at any slope, modules that declare ``fused_name``)
and which run unfused (subclasses overriding forward, hooks and pre-hooks, a forward set on
an instance), with the same outputs and gradients as torch either way."""
import numpy as np
import pytest

import gpuad
from gpuad import nn
from gpuad.nn import container

F = nn.functional
BUILT_IN = [pytest.param(lambda m: m.ReLU(), id="ReLU"),
            pytest.param(lambda m: m.GELU(), id="GELU"),
            pytest.param(lambda m: m.Tanh(), id="Tanh"),
            pytest.param(lambda m: m.Sigmoid(), id="Sigmoid"),
            pytest.param(lambda m: m.LeakyReLU(), id="LeakyReLU"),
            pytest.param(lambda m: m.LeakyReLU(0.2), id="LeakyReLU(0.2)"),
            pytest.param(lambda m: m.LeakyReLU(-0.5), id="LeakyReLU(-0.5)")]


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def fused(monkeypatch):
    """The ``(activation, param)`` of every linear_act that Sequential runs."""
    calls = []
    real = container.linear_act

    def spy(x, w, b, activation, param):
        calls.append((activation, param))
        return real(x, w, b, activation, param)
    monkeypatch.setattr(container, "linear_act", spy)
    return calls


def _pair(torch, act, device):
    """The same Linear(4, 3) -> act -> Linear(3, 2) model in gpuad and torch."""
    ours = nn.Sequential(nn.Linear(4, 3), act(nn), nn.Linear(3, 2)).to(device)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 3), act(torch.nn), torch.nn.Linear(3, 2))
    with torch.no_grad():
        for p, tp in zip(ours.parameters(), theirs.parameters()):
            tp.copy_(torch.tensor(p.detach().cpu().numpy()))
    return ours, theirs


def _same_as_torch(torch, ours, theirs, device):
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32) * 2
    y, ty = ours(gpuad.tensor(x, device=device)), theirs(torch.tensor(x))
    np.testing.assert_allclose(y.detach().cpu().numpy(), ty.detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    for p, tp in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.cpu().numpy(), tp.grad.numpy(), rtol=1e-4,
                                   atol=1e-5)


@pytest.mark.parametrize("act", BUILT_IN)
def test_built_in_activations_fuse_with_their_parameter(torch, device, fused, act):
    ours, theirs = _pair(torch, act, device)
    _same_as_torch(torch, ours, theirs, device)
    module = ours[1]
    assert fused == [(module.fused_name, getattr(module, "negative_slope", None))]


@pytest.mark.parametrize("act", BUILT_IN)
def test_a_subclass_overriding_forward_runs_its_own_forward(torch, device, fused, act):
    def halved(lib):
        base = type(act(lib))

        class Halved(base):
            def forward(self, x):
                return super().forward(x) * 0.5
        return Halved(*([act(lib).negative_slope] if base.__name__ == "LeakyReLU" else []))
    ours, theirs = _pair(torch, halved, device)
    _same_as_torch(torch, ours, theirs, device)
    assert fused == []


def test_a_subclass_keeping_forward_fuses_and_one_redeclaring_it_too(torch, device, fused):
    class Quiet(nn.LeakyReLU):
        def extra_repr(self):
            return ""

    class Declared(nn.Module):  # its own forward, declared as the table's leaky_relu
        fused_name = "leaky_relu"

        def __init__(self, negative_slope):
            super().__init__()
            self.negative_slope = negative_slope

        def forward(self, x):
            return F.leaky_relu(x, self.negative_slope)

    for make in (lambda m: Quiet(0.3) if m is nn else m.LeakyReLU(0.3),
                 lambda m: Declared(0.3) if m is nn else m.LeakyReLU(0.3)):
        ours, theirs = _pair(torch, make, device)
        _same_as_torch(torch, ours, theirs, device)
    assert fused == [("leaky_relu", 0.3)] * 2


def test_the_declaration_of_the_class_defining_forward_counts(device, fused):
    class Mislabelled(nn.ReLU):  # declares another entry than the forward it inherits
        fused_name = "tanh"
    model = nn.Sequential(nn.Linear(4, 3), Mislabelled()).to(device)
    x = gpuad.randn(5, 4, device=device)
    np.testing.assert_allclose(model(x).detach().numpy(),
                               F.relu(model[0](x)).detach().numpy(), rtol=1e-6)
    assert fused == [("relu", None)]


def test_a_linear_subclass_overriding_forward_runs_unfused(torch, device, fused):
    class Shifted(nn.Linear):
        def forward(self, x):
            return super().forward(x) + 1

    ours = nn.Sequential(Shifted(4, 3), nn.ReLU()).to(device)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    with torch.no_grad():
        theirs[0].weight.copy_(torch.tensor(ours[0].weight.detach().cpu().numpy()))
        theirs[0].bias.copy_(torch.tensor(ours[0].bias.detach().cpu().numpy()) + 1)
    _same_as_torch(torch, ours, theirs, device)
    assert fused == []


@pytest.mark.parametrize("where", [0, 1])
@pytest.mark.parametrize("kind", ["forward hook", "forward pre-hook"])
def test_hooks_on_either_module_run_and_stop_fusion(torch, device, fused, where, kind):
    ours, theirs = _pair(torch, lambda m: m.LeakyReLU(0.2), device)
    seen = {"ours": [], "theirs": []}
    for lib, model in (("ours", ours), ("theirs", theirs)):
        def doubling(module, args, out=None, log=seen[lib]):
            log.append(type(module).__name__)
            return (args[0] * 2,) if out is None else out * 2
        if kind == "forward hook":
            model[where].register_forward_hook(doubling)
        else:
            model[where].register_forward_pre_hook(lambda m, args, h=doubling: h(m, args))
    _same_as_torch(torch, ours, theirs, device)
    assert fused == [] and seen["ours"] == seen["theirs"] == [type(ours[where]).__name__]


def test_removing_the_hook_fuses_again(device, fused):
    model = nn.Sequential(nn.Linear(4, 3), nn.GELU()).to(device)
    x = gpuad.randn(2, 4, device=device)
    handle = model[1].register_forward_pre_hook(lambda m, args: None)
    model(x)
    handle.remove()
    model(x)
    assert fused == [("gelu", None)]


def test_a_forward_set_on_an_instance_runs_unfused(device, fused):
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU()).to(device)
    model[1].forward = lambda x: x * 0
    assert not model(gpuad.randn(2, 4, device=device)).detach().numpy().any()
    assert fused == []


def test_an_unknown_declaration_raises(device):
    class Swish(nn.Module):
        fused_name = "swish"

        def forward(self, x):
            return x * F.sigmoid(x)
    model = nn.Sequential(nn.Linear(4, 3), Swish()).to(device)
    with pytest.raises(ValueError, match="Swish.fused_name: unknown activation 'swish'"):
        model(gpuad.randn(2, 4, device=device))


def test_a_compiled_step_replays_a_fused_slope(device):
    model = nn.Sequential(nn.Linear(4, 3), nn.LeakyReLU(-0.5)).to(device)
    x = gpuad.randn(5, 4, device=device)

    def step(x):
        model.zero_grad()
        loss = (model(x) ** 2).sum()
        loss.backward()
        return loss.detach()
    compiled = gpuad.compile(step)
    for _ in range(4):
        want, got = step(x), compiled(x)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


def test_forward_pre_hooks_match_torch(torch):
    lin, tlin = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with torch.no_grad():
        tlin.weight.copy_(torch.tensor(lin.weight.detach().numpy()))
        tlin.bias.copy_(torch.tensor(lin.bias.detach().numpy()))
    x = np.ones((1, 2), np.float32)
    for hook in (lambda m, args: None, lambda m, args: args[0] * 3,
                 lambda m, args: (args[0] + 1,)):
        handles = [lin.register_forward_pre_hook(hook), tlin.register_forward_pre_hook(hook)]
        np.testing.assert_allclose(lin(gpuad.tensor(x)).detach().numpy(),
                                   tlin(torch.tensor(x)).detach().numpy(), rtol=1e-6)
        for h in handles:
            h.remove()
    np.testing.assert_allclose(lin(gpuad.tensor(x)).detach().numpy(),
                               tlin(torch.tensor(x)).detach().numpy(), rtol=1e-6)
    with pytest.raises(TypeError, match="hook must be callable"):
        lin.register_forward_pre_hook("not a hook")
