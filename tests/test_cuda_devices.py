"""``cuda:1``: factories, ops, backward, fused kernels, random draws and compiled steps run
on the tensor's GPU (the emulated CuPy has two devices and refuses an array of one device
in work on the other, as CuPy does without peer access), give what cuda:0 gives, and leave
CuPy's current device as it was."""
import warnings

import numpy as np
import pytest

import gpuad
from gpuad import nn
from gpuad.nn import functional as F
from gpuad.ops.fused import linear_act
from conftest import CUDA

pytestmark = pytest.mark.skipif(not CUDA or gpuad.cuda.device_count() < 2,
                                reason="needs two CUDA devices (real or emulated)")


def _on(t, index):
    assert t.device == gpuad.device(f"cuda:{index}")
    assert t.data.device.id == index, f"{t.device} tensor's array is on GPU {t.data.device.id}"


def _data(device, seed=1, n=4):
    rng = np.random.default_rng(seed)
    return [(gpuad.tensor(rng.standard_normal((8, 12)).astype(np.float32), device=device),
             gpuad.tensor(rng.integers(0, 4, 8), device=device)) for _ in range(n)]


def _model(device):
    gpuad.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 4)).to(device)


def _step(model, opt):
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()
    return step


def _current_device():
    import cupy
    return cupy.cuda.runtime.getDevice()


@pytest.mark.parametrize("make", [
    lambda d: gpuad.zeros(3, 2, device=d), lambda d: gpuad.ones(3, device=d),
    lambda d: gpuad.full((2, 2), 1.5, device=d), lambda d: gpuad.arange(5, device=d),
    lambda d: gpuad.rand(4, device=d), lambda d: gpuad.randn(4, 2, device=d),
    lambda d: gpuad.randint(0, 9, (6,), device=d), lambda d: gpuad.randperm(5, device=d),
    lambda d: gpuad.tensor([[1.0, 2.0]], device=d), lambda d: gpuad.empty(3, device=d),
    lambda d: gpuad.zeros_like(gpuad.zeros(2, device=d)),
    lambda d: gpuad.tensor(np.arange(3.0)).to(d), lambda d: gpuad.ones(2, device="cuda:0").to(d),
], ids=["zeros", "ones", "full", "arange", "rand", "randn", "randint", "randperm", "tensor",
        "empty", "zeros_like", "from_cpu", "from_cuda0"])
def test_factories_on_cuda1(make):
    gpuad.manual_seed(3)
    t = make("cuda:1")
    _on(t, 1)
    gpuad.manual_seed(3)
    np.testing.assert_array_equal(make("cuda:1").numpy(), t.numpy())  # a draw repeats
    assert _current_device() == 0


def test_random_draws_match_cuda0():
    for draw in (gpuad.rand, gpuad.randn):
        gpuad.manual_seed(5)
        a = draw(3, 4, device="cuda:0").numpy()
        gpuad.manual_seed(5)
        np.testing.assert_array_equal(draw(3, 4, device="cuda:1").numpy(), a)


def test_ops_backward_and_fused_kernels_on_cuda1():
    results = {}
    for index in (0, 1):
        dev = f"cuda:{index}"
        model = _model(dev)
        x, y = _data(dev, n=1)[0]
        x.requires_grad_(True)
        h = linear_act(x, model[0].weight, model[0].bias, "gelu")  # fused bias + act
        loss = F.cross_entropy(model[2](h), y) + (x.exp() * 0.1).sum() + \
            F.mse_loss(h, h.detach() * 0.5) + h[:, 1:3].mean() + x.max(1).values.sum()
        loss.backward()
        for t in (loss, x.grad, *[p.grad for p in model.parameters()]):
            _on(t, index)
        results[index] = [loss.item(), x.grad.numpy()] + [p.grad.numpy()
                                                            for p in model.parameters()]
        assert _current_device() == 0
    for a, b in zip(results[0], results[1]):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)


def test_double_backward_and_jvp_on_cuda1():
    x = gpuad.tensor([0.5, -1.0, 2.0], device="cuda:1", requires_grad=True)
    g, = gpuad.autograd.grad((x.tanh() ** 2).sum(), x, create_graph=True)
    gg, = gpuad.autograd.grad(g.sum(), x)
    _on(g, 1)
    _on(gg, 1)
    _, tangent = gpuad.autograd.forward_ad.jvp(lambda t: t.exp() * t, (x.detach(),),
                                               (gpuad.ones(3, device="cuda:1"),))
    _on(tangent, 1)
    w = gpuad.randn(3, 2, device="cuda:1", dtype=gpuad.float64, requires_grad=True)
    assert gpuad.autograd.gradcheck(lambda a, b: (a.tanh() @ b).sum(), (x.double(), w))


def test_in_place_ops_on_cuda1():
    x = gpuad.ones(3, device="cuda:1", requires_grad=True)
    z = gpuad.full((3,), 2.0, device="cuda:1", requires_grad=True)
    y = x * 3
    y.mul_(z)                     # in the graph: the old y is copied for z's gradient
    y.add_(1.0)
    y.sum().backward()
    for t in (y, x.grad, z.grad):
        _on(t, 1)
    np.testing.assert_array_equal(z.grad.numpy(), [3, 3, 3])
    with gpuad.no_grad():
        x.fill_(0.5)
        x[0] = 2.0
        x.add_(1.0)
        np.testing.assert_array_equal(x.detach().numpy(), [3, 1.5, 1.5])
        x.copy_(gpuad.full((3,), 4.0, device="cuda:0"))
    _on(x, 1)
    np.testing.assert_array_equal(x.detach().numpy(), [4, 4, 4])


@pytest.mark.parametrize("opt", ["sgd", "adam"])
@pytest.mark.parametrize("cuda_graphs", [True, False])
def test_compiled_step_on_cuda1_matches_cuda0(opt, cuda_graphs):
    losses, params = {}, {}
    for index in (0, 1):
        dev = f"cuda:{index}"
        model = _model(dev)
        optimizer = gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if opt == "sgd" \
            else gpuad.optim.Adam(model.parameters(), lr=0.01)
        step = gpuad.compile(_step(model, optimizer), cuda_graphs=cuda_graphs)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no fallback to eager or to ungraphed replays
            losses[index] = [step(x, y) for x, y in _data(dev)]
        assert step.stats == {"recorded": 2, "replayed": 2, "eager": 0}
        for t in losses[index] + list(model.parameters()):
            _on(t, index)
        losses[index] = [loss.item() for loss in losses[index]]
        params[index] = [p.detach().numpy() for p in model.parameters()]
        assert _current_device() == 0
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-6)
    for a, b in zip(params[0], params[1]):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)


def test_current_device_one_is_left_alone():
    """gpuad works in the tensor's device whatever is current, and puts it back."""
    import cupy
    with cupy.cuda.Device(1):
        x = gpuad.ones(3, device="cuda:0") * 2
        _on(x, 0)
        assert _current_device() == 1
    assert _current_device() == 0


def test_copies_and_pickles_of_a_cuda1_tensor_stay_on_cuda1():
    import copy
    import pickle
    t = gpuad.arange(4.0, device="cuda:1").requires_grad_()
    (t * t).sum().backward()
    for c in (copy.deepcopy(t), copy.copy(t), pickle.loads(pickle.dumps(t))):
        _on(c, 1)
        np.testing.assert_array_equal(c.detach().numpy(), [0, 1, 2, 3])
    _on(copy.deepcopy(t).grad, 1)
