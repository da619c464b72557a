"""Optimizers and schedulers against PyTorch on the same parameters and gradients."""
import numpy as np
import pytest

import gpuad
from gpuad import optim

torch = pytest.importorskip("torch")

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, betas=(0.85, 0.995), weight_decay=0.3)),
]
SHAPES = [(4, 3), (3,), (2, 2, 2)]


def _grads(steps, dtype):
    rng = np.random.default_rng(1)
    return [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]


def _run_gpuad(name, kw, init, grads, device, groups=None):
    params = [gpuad.tensor(a, device=device, requires_grad=True) for a in init]
    spec = params if groups is None else [{"params": [params[i] for i in idx], **extra}
                                          for idx, extra in groups]
    opt = getattr(optim, name)(spec, **kw)
    for step in grads:
        for p, g in zip(params, step):
            p.grad = gpuad.tensor(g, device=device)
        opt.step()
    return [p.detach().cpu().numpy() for p in params]


def _run_torch(name, kw, init, grads, groups=None):
    params = [torch.tensor(a, requires_grad=True) for a in init]
    spec = params if groups is None else [{"params": [params[i] for i in idx], **extra}
                                          for idx, extra in groups]
    opt = getattr(torch.optim, name)(spec, **kw)
    for step in grads:
        for p, g in zip(params, step):
            p.grad = torch.tensor(g)
        opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize("name,kw", CONFIGS, ids=[f"{n}-{sorted(k.items())}" for n, k in CONFIGS])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_torch(name, kw, dtype, device):
    init = [a * 0.5 for a in _grads(1, dtype)[0]]
    grads = _grads(6, dtype)
    ours = _run_gpuad(name, kw, init, grads, device)
    ref = _run_torch(name, kw, init, grads)
    for a, b in zip(ours, ref):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.1, momentum=0.9)), ("AdamW", {})])
def test_param_groups_match_torch(name, kw, device):
    init = [a * 0.5 for a in _grads(1, np.float64)[0]]
    grads = _grads(4, np.float64)
    groups = [([0, 2], {"lr": 0.3}), ([1], {"weight_decay": 0.05})]
    ours = _run_gpuad(name, kw, init, grads, device, groups)
    for a, b in zip(ours, _run_torch(name, kw, init, grads, groups)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_defaults_match_torch():
    p = [gpuad.zeros(1, requires_grad=True)]
    tp = [torch.zeros(1, requires_grad=True)]
    for name in ("SGD", "Adam", "AdamW"):
        ours, ref = getattr(optim, name)(p).defaults, getattr(torch.optim, name)(tp).defaults
        assert {k: ref[k] for k in ours} == ours


def test_step_skips_params_without_grad_and_bumps_version():
    a, b = gpuad.ones(2, requires_grad=True), gpuad.ones(2, requires_grad=True)
    opt = optim.SGD([a, b], lr=1.0)
    a.grad = gpuad.ones(2)
    v = a._version
    opt.step()
    assert a.tolist() == [0.0, 0.0] and b.tolist() == [1.0, 1.0]
    assert a._version == v + 1 and opt.state.get(b) is None


def test_zero_grad():
    p = gpuad.ones(2, requires_grad=True)
    opt = optim.Adam([p])
    p.grad = gpuad.ones(2)
    opt.zero_grad(set_to_none=False)
    assert p.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert p.grad is None


def test_state_dict_resume_is_identical():
    init = [a * 0.5 for a in _grads(1, np.float64)[0]]
    grads = _grads(6, np.float64)
    full = _run_gpuad("Adam", dict(lr=0.01), init, grads, "cpu")

    params = [gpuad.tensor(a, requires_grad=True) for a in init]
    opt = optim.Adam(params, lr=0.01)
    for step in grads[:3]:
        for p, g in zip(params, step):
            p.grad = gpuad.tensor(g)
        opt.step()
    saved = opt.state_dict()
    resumed = [gpuad.tensor(p.detach().numpy(), requires_grad=True) for p in params]
    opt2 = optim.Adam(resumed, lr=0.5)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == 0.01
    for step in grads[3:]:
        for p, g in zip(resumed, step):
            p.grad = gpuad.tensor(g)
        opt2.step()
    for a, b in zip(resumed, full):
        np.testing.assert_array_equal(a.detach().numpy(), b)


def test_load_state_dict_mismatch_changes_nothing():
    a, b = gpuad.ones(2, requires_grad=True), gpuad.ones(3, requires_grad=True)
    opt = optim.SGD([a, b], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="sizes"):
        opt.load_state_dict(optim.SGD([a], lr=0.1).state_dict())
    other = optim.SGD([gpuad.ones(5, requires_grad=True), b], lr=0.7, momentum=0.9)
    other.param_groups[0]["params"][0].grad = gpuad.ones(5)
    other.step()
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict(other.state_dict())
    assert opt.param_groups[0]["lr"] == 0.1 and opt.state == {}
    with pytest.raises(ValueError, match="param_groups"):
        opt.load_state_dict({"weight": gpuad.ones(2)})


@pytest.mark.parametrize("make,match", [
    (lambda p: optim.SGD(p, lr=-1), "learning rate"),
    (lambda p: optim.SGD(p, nesterov=True), "Nesterov"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.0)), "betas"),
    (lambda p: optim.Adam(p, weight_decay=-0.1), "weight_decay"),
    (lambda p: optim.SGD([{"params": p, "momentun": 0.9}]), "momentun"),
    (lambda p: optim.SGD(p + p), "more than one"),
    (lambda p: optim.SGD([]), "empty"),
    (lambda p: optim.SGD(p[0]), "single Tensor"),
    (lambda p: optim.SGD([p[0] * 2]), "leaf"),
])
def test_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make([gpuad.ones(2, requires_grad=True)])


@pytest.mark.parametrize("make", [
    lambda lib, opt: lib.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
    lambda lib, opt: lib.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=7, eta_min=0.01),
    lambda lib, opt: lib.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10),
], ids=["step", "cosine-eta", "cosine"])
def test_schedulers_match_torch(make):
    opt = optim.SGD([{"params": [gpuad.ones(1, requires_grad=True)]},
                     {"params": [gpuad.ones(1, requires_grad=True)], "lr": 0.3}], lr=0.1)
    topt = torch.optim.SGD([{"params": [torch.ones(1, requires_grad=True)]},
                            {"params": [torch.ones(1, requires_grad=True)], "lr": 0.3}], lr=0.1)
    ours, ref = make(gpuad, opt), make(torch, topt)
    for _ in range(25):  # past T_max: the cosine goes back up, as PyTorch's
        np.testing.assert_allclose(ours.get_last_lr(), ref.get_last_lr(), rtol=1e-9, atol=1e-12)
        assert [g["lr"] for g in opt.param_groups] == ours.get_last_lr()
        topt.step()
        ref.step()
        ours.step()


def test_scheduler_state_dict_resumes():
    make = lambda o: optim.lr_scheduler.CosineAnnealingLR(o, T_max=10)  # noqa: E731
    opt = optim.SGD([gpuad.ones(1, requires_grad=True)], lr=0.1)
    sched = make(opt)
    for _ in range(4):
        sched.step()
    state, opt_state = sched.state_dict(), opt.state_dict()
    opt2 = optim.SGD([gpuad.ones(1, requires_grad=True)], lr=0.1)
    opt2.load_state_dict(opt_state)
    sched2 = make(opt2)
    sched2.load_state_dict(state)
    sched.step()
    sched2.step()
    assert sched2.get_last_lr() == sched.get_last_lr()
    with pytest.raises(ValueError, match="unexpected keys"):
        sched2.load_state_dict({"bogus": 1})
