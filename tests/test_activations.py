"""Every entry of the activation table against PyTorch: forward, backward (fused kernels and
reference formulas), double backward and forward mode, alone and fused with a Linear
(``linear_act``), in float32 and float64; the names built from the table, their errors, and
an entry without kernel code running every path."""
import dataclasses

import numpy as np
import pytest

import gpuad
from gpuad import activations, nn
from gpuad.autograd import grad, jvp
from gpuad.backends import backend_for, cpu_kernels
from gpuad.ops import activation
from gpuad.ops.fused import linear_act

F = gpuad.nn.functional
CASES = [pytest.param(name, p, id=f"{name}-{p}") for name, act in activations.TABLE.items()
         for p in ([None] + ([0.2, -0.3, 0.0] if act.param else []))]
DTYPES = [gpuad.float32, gpuad.float64]
TOL = {gpuad.float32: dict(rtol=2e-5, atol=1e-5), gpuad.float64: dict(rtol=1e-10, atol=1e-12)}


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(params=["reference", "kernels"])
def path(request, monkeypatch):
    """On cpu, small arrays take NumPy's reference formulas: "kernels" runs the Numba twins
    at every size (on cuda both run the CUDA kernels)."""
    if request.param == "kernels":
        monkeypatch.setattr(cpu_kernels, "MIN_ELEMENTS", 1)
        monkeypatch.setattr(cpu_kernels, "FORWARD_SLOWER", set())
        monkeypatch.setattr(cpu_kernels, "BIAS_FUSION_SLOWER", set())
    return request.param


def _values(shape, seed=0):
    """Normal values times 3 with exact zeros and large magnitudes among them."""
    a = np.random.default_rng(seed).standard_normal(shape) * 3
    a.flat[:3] = [0.0, 40.0, -40.0]
    return a


def _pair(torch, values, dtype, device, requires_grad=True):
    ours = gpuad.tensor(values, dtype=dtype, device=device, requires_grad=requires_grad)
    theirs = torch.tensor(values, dtype=getattr(torch, dtype.name), requires_grad=requires_grad)
    return ours, theirs


def _ours(name, param):
    fn = getattr(F, name)
    return fn if param is None else lambda x: fn(x, param)


def _theirs(torch, name, param):
    fn = getattr(torch.nn.functional, name)
    return fn if param is None else lambda x: fn(x, param)


def _close(got, want, dtype):
    """Equal within the dtype's tolerance, absolute errors measured against the largest value
    (float32 gradients are sums that cancel)."""
    want = want.detach().numpy()
    tol = TOL[dtype]
    np.testing.assert_allclose(got.detach().cpu().numpy(), want, rtol=tol["rtol"],
                               atol=tol["atol"] * max(1.0, np.abs(want).max(initial=0)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,param", CASES)
def test_activation_and_its_backward_match_torch(torch, device, path, dtype, name, param):
    x, tx = _pair(torch, _values((4, 6)), dtype, device)
    v, tv = _pair(torch, _values((4, 6), seed=1), dtype, device, requires_grad=False)
    y, ty = _ours(name, param)(x), _theirs(torch, name, param)(tx)
    assert y.dtype == dtype and y.grad_fn.name == activations.TABLE[name].op_name
    _close(y, ty, dtype)
    (y * v).sum().backward()
    (ty * tv).sum().backward()
    _close(x.grad, tx.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,param", CASES)
def test_activation_double_backward_and_jvp_match_torch(torch, device, dtype, name, param):
    x, tx = _pair(torch, _values((3, 5)), dtype, device)
    v, tv = _pair(torch, _values((3, 5), seed=1), dtype, device, requires_grad=False)
    u, tu = _pair(torch, _values((3, 5), seed=2), dtype, device, requires_grad=False)
    f, tf = _ours(name, param), _theirs(torch, name, param)
    # squared: relu's own second derivative is zero
    g, = grad((f(x) ** 2 * v).sum(), x, create_graph=True)
    tg, = torch.autograd.grad((tf(tx) ** 2 * tv).sum(), tx, create_graph=True)
    _close(g, tg, dtype)
    (g * u).sum().backward()
    (tg * tu).sum().backward()
    _close(x.grad, tx.grad, dtype)
    y, tangent = jvp(f, (x.detach(),), (v,))
    ty, ttangent = torch.func.jvp(tf, (tx.detach(),), (tv,))
    _close(y, ty, dtype)
    _close(tangent, ttangent, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,param", CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_act_matches_torch(torch, device, path, dtype, name, param, bias):
    (x, tx), (w, tw) = (_pair(torch, _values(s, k) / 3, dtype, device)
                        for k, s in enumerate([(5, 4), (6, 4)]))
    b, tb = _pair(torch, _values((6,), 2), dtype, device) if bias else (None, None)
    v, tv = _pair(torch, _values((5, 6), 3), dtype, device, requires_grad=False)
    f = _theirs(torch, name, param)
    y, ty = linear_act(x, w, b, name, param), f(torch.nn.functional.linear(tx, tw, tb))
    assert y.grad_fn.name == "LinearAct"
    _close(y, ty, dtype)
    ours, theirs = [t for t in (x, w, b) if t is not None], [t for t in (tx, tw, tb)
                                                             if t is not None]
    gs = grad((y * v).sum(), ours)  # the fused backward
    tgs = torch.autograd.grad((ty * tv).sum(), theirs, retain_graph=True)
    for g, tg in zip(gs, tgs):
        _close(g, tg, dtype)
    gs = grad((linear_act(x, w, b, name, param) ** 2 * v).sum(), ours, create_graph=True)
    tgs = torch.autograd.grad((ty ** 2 * tv).sum(), theirs, create_graph=True)
    sum((g * g).sum() for g in gs).backward()
    sum((tg * tg).sum() for tg in tgs).backward()
    for t, tt in zip(ours, theirs):
        _close(t.grad, tt.grad, dtype)
    tangents = [(t * 0.5).detach() for t in ours]
    _, tangent = jvp(lambda *a: linear_act(a[0], a[1], a[2] if bias else None, name, param),
                     tuple(t.detach() for t in ours), tuple(tangents))
    _, ttangent = torch.func.jvp(
        lambda *a: f(torch.nn.functional.linear(*a)), tuple(t.detach() for t in theirs),
        tuple(torch.tensor(t.cpu().numpy()) for t in tangents))
    _close(tangent, ttangent, dtype)


@pytest.mark.parametrize("name,param", CASES)
def test_linear_act_takes_the_activation_op_for_other_operands(torch, device, name, param):
    x, tx = _pair(torch, _values((3, 4)), gpuad.float64, device)
    w, tw = _pair(torch, _values((5, 4), 1), gpuad.float64, device)
    b, tb = _pair(torch, _values((1, 5), 2), gpuad.float64, device)  # not a (5,) bias
    y = linear_act(x, w, b, name, param)
    assert y.grad_fn.name == activations.TABLE[name].op_name
    ty = _theirs(torch, name, param)(tx @ tw.T + tb)
    _close(y, ty, gpuad.float64)
    y.sum().backward()
    ty.sum().backward()
    for t, tt in ((x, tx), (w, tw), (b, tb)):
        _close(t.grad, tt.grad, gpuad.float64)


def test_the_names_come_from_the_table():
    for name, act in activations.TABLE.items():
        fn = getattr(gpuad, name)
        assert getattr(F, name) is fn and getattr(gpuad.Tensor, name) is fn
        module = getattr(nn, act.module)
        assert module.fused_name == name and module.__module__ == "gpuad.nn.activation"
        assert repr(module()) == (f"{act.module}()" if act.param is None else
                                  f"{act.module}({act.param}={act.default})")
        params = list(__import__("inspect").signature(fn).parameters)
        assert params == ["input"] + ([act.param] if act.param else [])
    x = gpuad.tensor([-2.0, 3.0])
    assert x.leaky_relu(0.5).tolist() == [-1.0, 3.0]
    assert F.leaky_relu(x, negative_slope=0.5).tolist() == [-1.0, 3.0]
    assert nn.LeakyReLU(negative_slope=0.5)(x).tolist() == [-1.0, 3.0]


def test_integer_inputs(torch):
    ints = [-2, 0, 3]
    assert gpuad.relu(gpuad.tensor(ints)).dtype == gpuad.int64  # relu keeps integers
    assert gpuad.relu(gpuad.tensor(ints)).tolist() == torch.relu(torch.tensor(ints)).tolist()
    for name in ("sigmoid", "tanh"):
        y = getattr(gpuad, name)(gpuad.tensor(ints))
        ty = getattr(torch, name)(torch.tensor(ints))
        assert y.dtype == gpuad.float32 and ty.dtype == torch.float32
        np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-6)


def test_bad_parameters_raise():
    x = gpuad.randn(2, 3)
    w = gpuad.randn(4, 3)
    with pytest.raises(TypeError, match=r"relu\(\) takes 1 positional argument but 2"):
        gpuad.relu(x, 0.3)
    with pytest.raises(TypeError, match="negative_slope must be a real number, got str"):
        F.leaky_relu(x, "0.1")
    with pytest.raises(TypeError, match="got Tensor; pass a Python float"):
        F.leaky_relu(x, gpuad.tensor(0.1))
    with pytest.raises(TypeError, match="unexpected arguments slope=0.1; leaky_relu takes one "
                                        "parameter, negative_slope"):
        x.leaky_relu(slope=0.1)
    with pytest.raises(TypeError, match="unexpected arguments 0.1, negative_slope=0.2"):
        F.leaky_relu(x, 0.1, negative_slope=0.2)
    with pytest.raises(TypeError, match="ReLU: unexpected arguments True"):
        nn.ReLU(True)
    with pytest.raises(TypeError, match="real number, got bool"):
        nn.LeakyReLU(True)
    with pytest.raises(TypeError, match="gelu takes no parameter, got 0.5"):
        linear_act(x, w, None, "gelu", 0.5)
    with pytest.raises(ValueError, match="linear_act: unknown activation 'swish'; the table "
                                         "knows relu, leaky_relu"):
        linear_act(x, w, None, "swish")
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        backend_for("cpu").act_backward(x.data, x.data, "swish")


def _silu():
    """A hypothetical new activation: one entry, no kernel code."""
    def backward(m, g, x, p):
        s = m.sigmoid(x)
        return g * s * (1 + x * (1 - s))
    return activations.Activation("silu", "SiLU", "``x * sigmoid(x)``",
                                  forward=lambda m, x, p, out=None: x * m.sigmoid(x),
                                  backward=backward, saves_output=lambda p: False)


def test_an_entry_without_kernel_code_runs_every_path(torch, device, monkeypatch):
    act = _silu()
    monkeypatch.setitem(activations.TABLE, act.name, act)
    monkeypatch.setitem(activation.OPS, act.name, activation.op_class(act))
    x, tx = _pair(torch, _values((5, 4)), gpuad.float64, device)
    w, tw = _pair(torch, _values((3, 4), 1), gpuad.float64, device)
    b, tb = _pair(torch, _values((3,), 2), gpuad.float64, device)
    tF = torch.nn.functional
    for ours, theirs in ((activation.activate(act, x, 0.0), tF.silu(tx)),
                         (linear_act(x, w, b, "silu"), tF.silu(tF.linear(tx, tw, tb)))):
        _close(ours, theirs, gpuad.float64)
        gs = grad(ours.sum(), (x, w, b), allow_unused=True)  # the fused (reference) backward
        tgs = torch.autograd.grad(theirs.sum(), (tx, tw, tb), allow_unused=True,
                                  create_graph=True)
        for g, tg in zip(gs, tgs):
            assert (g is None) == (tg is None)
            if g is not None:
                _close(g, tg, gpuad.float64)
    gg, = grad(grad((linear_act(x, w, b, "silu") ** 2).sum(), x, create_graph=True)[0].sum(),
               x)
    tgg, = torch.autograd.grad(torch.autograd.grad((tF.silu(tF.linear(tx, tw, tb)) ** 2).sum(),
                                                   tx, create_graph=True)[0].sum(), tx)
    _close(gg, tgg, gpuad.float64)


def test_entries_are_frozen_and_complete():
    for name, act in activations.TABLE.items():
        assert act.name == name and act.module and act.doc
        assert act.param is not None or act.default == 0.0
        with pytest.raises(dataclasses.FrozenInstanceError):
            act.code = 99


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_integer_inputs_as_pytorch_takes_them(device, dtype):
    """relu keeps integers (not bool), tanh and sigmoid promote, the others raise."""
    x = gpuad.tensor([-1, 0, 2], device=device).to(getattr(gpuad, dtype))
    if dtype != "bool":
        assert F.relu(x).dtype == x.dtype and F.relu(x).tolist() == [0, 0, 2]
    else:
        with pytest.raises(TypeError, match="float"):
            F.relu(x)
    for f in (F.tanh, F.sigmoid):
        assert f(x).dtype == gpuad.float32
    for f in (F.gelu, F.leaky_relu, F.softplus, lambda t: F.leaky_relu(t, 0.2)):
        with pytest.raises(TypeError, match=r"\.float\(\)"):
            f(x)
