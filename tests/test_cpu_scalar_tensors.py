"""A 0-d CPU tensor combined with tensors of a GPU, as PyTorch takes it: moved to the GPU
(its gradient comes back to the CPU), with PyTorch's promotion of 0-d tensors; any other
mix of devices raises, naming both and the fix."""
import numpy as np
import pytest

import gpuad
from conftest import CUDA

pytestmark = pytest.mark.skipif(not CUDA, reason="needs a CUDA device (real or emulated)")


@pytest.fixture
def gpu():
    return "cuda"


def _pair(gpu):
    x = gpuad.tensor([1.0, -2.0, 3.0], device=gpu, requires_grad=True)
    s = gpuad.tensor(0.5, requires_grad=True)  # on the CPU
    return x, s


@pytest.mark.parametrize("f", [
    lambda x, s: x * s + s, lambda x, s: s - x, lambda x, s: gpuad.maximum(x, s),
    lambda x, s: gpuad.where(x > 0, s, x), lambda x, s: (x * x) ** s + s * s,
], ids=["mul_add", "rsub", "maximum", "where", "pow"])
def test_ops_move_the_cpu_scalar_and_send_its_gradient_back(gpu, f):
    x, s = _pair(gpu)
    y = f(x, s)
    assert y.device == gpuad.device(gpu)
    y.sum().backward()
    assert s.grad.device == gpuad.device("cpu") and x.grad.device == gpuad.device(gpu)
    xc, sc = (gpuad.tensor(t.detach().numpy(), requires_grad=True) for t in (x, s))
    yc = f(xc, sc)
    yc.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), yc.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(s.grad.numpy(), sc.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), xc.grad.numpy(), rtol=1e-6)


def test_a_cpu_scalar_promotes_as_a_0d_tensor(gpu):
    x = gpuad.ones(2, device=gpu)
    assert (x + gpuad.tensor(2.0, dtype=gpuad.float64)).dtype == gpuad.float32
    assert (gpuad.ones(2, dtype=gpuad.int64, device=gpu) + gpuad.tensor(0.5)).dtype == \
        gpuad.float32


def test_in_place_ops_and_assignment_take_a_cpu_scalar(gpu):
    x = gpuad.ones(3, device=gpu)
    x.add_(gpuad.tensor(2.0))
    x.mul_(gpuad.tensor(2.0))
    x[0] = gpuad.tensor(-1.0)
    assert x.tolist() == [-1.0, 6.0, 6.0] and x.device == gpuad.device(gpu)
    w = gpuad.ones(3, device=gpu, requires_grad=True) * 1  # in the graph
    s = gpuad.tensor(3.0, requires_grad=True)
    w.mul_(s)
    w.sum().backward()
    assert s.grad.item() == 3.0


@pytest.mark.parametrize("f, message", [
    (lambda g: g + gpuad.ones(3), r"cpu"),                          # a CPU vector
    (lambda g: gpuad.tensor(1.0, device=g.device) + gpuad.ones(3), r"cpu"),  # GPU scalar
    (lambda g: gpuad.tensor(1.0).add_(g[0]), r"\.to\('cpu'\)"),     # into the CPU scalar
    (lambda g: gpuad.ones(3).__setitem__(0, g[0]), r"\.to\('cpu'\)"),
], ids=["cpu_vector", "gpu_scalar_with_cpu_vector", "add_into_cpu", "assign_into_cpu"])
def test_other_mixes_of_devices_raise_naming_the_fix(gpu, f, message):
    with pytest.raises(RuntimeError, match=message):
        f(gpuad.ones(3, device=gpu))


def test_a_compiled_step_reading_a_cpu_scalar_replays_right(gpu):
    gpuad.manual_seed(0)
    model = gpuad.nn.Linear(4, 2).to(gpu)
    opt = gpuad.optim.SGD(model.parameters(), lr=0.1)
    weight = gpuad.tensor(2.0)  # on the CPU

    def step(x):
        opt.zero_grad()
        loss = (model(x) ** 2).mean() * weight
        loss.backward()
        opt.step()
        return loss.detach()
    compiled = gpuad.compile(step)
    x = gpuad.randn(8, 4, device=gpu)
    losses = [compiled(x).item() for _ in range(4)]
    gpuad.manual_seed(0)
    model2 = gpuad.nn.Linear(4, 2).to(gpu)
    opt2 = gpuad.optim.SGD(model2.parameters(), lr=0.1)
    model, opt = model2, opt2
    eager = [step(x).item() for _ in range(4)]
    np.testing.assert_allclose(losses, eager, rtol=1e-6)
