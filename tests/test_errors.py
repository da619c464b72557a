"""Bad inputs raise errors whose text names the problem and the fix."""
import sys

import numpy as np
import pytest

import gpuad
from gpuad import Tensor, tensor
from gpuad.backends.cpu import CPUBackend
from helpers import leaf

F = gpuad.nn.functional


def _backward_twice(d):
    x = leaf([1.0, 2.0], d)
    y = (x * x).sum()
    y.backward()
    y.backward()


def _change_saved_operand(d):
    x = leaf([1.0, 2.0], d)
    w = tensor([3.0, 4.0], device=d)
    y = (x * w).sum()          # Mul saves w for x's gradient
    w.add_(1)
    y.backward()


def _hook_with_wrong_shape(d):
    x = leaf([1.0, 2.0], d)
    x.register_hook(lambda g: g.sum())
    (x * 2).sum().backward()


def _change_a_view_in_the_graph(d):
    y = leaf([1.0, 2.0], d) * 2
    y[:1].mul_(3)


def _use_a_view_after_its_tensor_changed(d):
    y = leaf([1.0, 2.0], d) * 2
    first = y[:1]
    y.mul_(3)
    first.sum().backward()


ERRORS = [
    pytest.param(lambda d: gpuad.zeros(2, 3, device=d) + gpuad.zeros(4, device=d),
                 ValueError, r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast.*"
                             r"reshape or unsqueeze", id="broadcast"),
    pytest.param(lambda d: gpuad.where(gpuad.zeros(3, device=d) > 0, gpuad.zeros(2, device=d),
                                       0.0),
                 ValueError, r"shapes \(3,\) and \(2,\) cannot be broadcast",
                 id="where_broadcast"),
    pytest.param(lambda d: gpuad.zeros(2, 3, device=d) @ gpuad.zeros(4, 5, device=d),
                 ValueError, r"matmul: shapes \(2, 3\) and \(4, 5\) do not fit: the last dim "
                             r"of the first \(3\) must equal the second-to-last dim of the "
                             r"second \(4\)", id="matmul"),
    pytest.param(lambda d: gpuad.zeros(2, 2, 3, device=d) @ gpuad.zeros(3, 3, 2, device=d),
                 ValueError, r"matmul: shapes \(2, 2, 3\) and \(3, 3, 2\) do not fit: their "
                             r"batch dims", id="matmul_batch"),
    pytest.param(lambda d: gpuad.zeros(3, device=d) @ gpuad.zeros(2, device=d),
                 ValueError, r"shapes \(3,\) and \(2,\) do not fit", id="matmul_vectors"),
    pytest.param(lambda d: gpuad.zeros(2, 3, device=d).reshape(4, 2),
                 ValueError, r"cannot view shape \(2, 3\) \(6 elements\) as \(4, 2\)",
                 id="reshape"),
    pytest.param(lambda d: gpuad.cat([gpuad.zeros(2, 3, device=d), gpuad.zeros(2, 2, device=d)]),
                 ValueError, r"cat: tensor 1 has shape \(2, 2\) but tensor 0 has \(2, 3\)",
                 id="cat"),
    pytest.param(lambda d: gpuad.zeros(3, device=d).expand(-1, 3),
                 ValueError, r"expand: -1 in \(-1, 3\) stands for a new leading dim.*give the "
                             r"new size", id="expand_new_dim"),
    pytest.param(lambda d: gpuad.zeros(3, device=d).expand(2, 4),
                 ValueError, r"cannot expand shape \(3,\) to \(2, 4\)", id="expand"),
    pytest.param(lambda d: gpuad.zeros(2, 3, device=d).sum(2),
                 IndexError, r"dim 2 is out of range for a tensor with 2 dims", id="dim"),
    pytest.param(lambda d: gpuad.zeros(2, device=d, requires_grad=True).backward(),
                 RuntimeError, r"only for a one-element output.*shape \(2,\).*pass gradient=",
                 id="backward_non_scalar"),
    pytest.param(lambda d: (gpuad.ones(1, device=d) * 2).backward(),
                 RuntimeError, r"does not require grad.*set requires_grad=True",
                 id="backward_without_grad"),
    pytest.param(_backward_twice, RuntimeError,
                 r"backward through the graph a second time.*retain_graph=True",
                 id="backward_twice"),
    pytest.param(_change_saved_operand, RuntimeError,
                 r"Mul saved for backward was changed by an in-place operation.*clone\(\)",
                 id="in_place_on_saved"),
    pytest.param(_change_a_view_in_the_graph, RuntimeError,
                 r"mul_: this tensor is a view \(GetItem\) of another tensor in the graph.*"
                 r"clone\(\)", id="in_place_on_view"),
    pytest.param(_use_a_view_after_its_tensor_changed, RuntimeError,
                 r"GetItem made a view of a tensor that an in-place operation then changed "
                 r"\(version 0 -> 1\).*take the view after", id="stale_view"),
    pytest.param(_hook_with_wrong_shape, RuntimeError,
                 r"returned a gradient of shape \(\), expected \(2,\)", id="hook_shape"),
    pytest.param(lambda d: leaf([1.0], d).add_(1),
                 RuntimeError, r"leaf tensor that requires grad cannot be changed in place.*"
                               r"no_grad", id="in_place_on_leaf"),
    pytest.param(lambda d: leaf([1, 2], d),
                 RuntimeError, r"only floating-point tensors can require gradients.*int64.*"
                               r"\.float\(\)", id="int_requires_grad"),
    pytest.param(lambda d: leaf([1.0], d).numpy(),
                 RuntimeError, r"requires grad.*\.detach\(\)\.numpy\(\)", id="numpy_with_grad"),
    pytest.param(lambda d: tensor([1.0, 2.0], device=d).item(),
                 ValueError, r"one element.*shape \(2,\)", id="item"),
    pytest.param(lambda d: F.cross_entropy(gpuad.zeros(2, 3, device=d),
                                           tensor([0.0, 1.0], device=d)),
                 TypeError, r"targets must be integer class indices \(int64\), got float32.*"
                            r"\.long\(\)", id="cross_entropy_float_targets"),
    pytest.param(lambda d: F.cross_entropy(gpuad.zeros(2, 3, device=d), tensor([0], device=d)),
                 ValueError, r"logits of shape \(N, C\) and targets of shape \(N,\), got "
                             r"\(2, 3\) and \(1,\)", id="cross_entropy_shapes"),
    pytest.param(lambda d: F.mse_loss(gpuad.zeros(3, 1, device=d), gpuad.zeros(3, device=d)),
                 ValueError, r"input shape \(3, 1\) and target shape \(3,\) differ",
                 id="mse_loss_shapes"),
    pytest.param(lambda d: gpuad.zeros(2, device=d, dtype="float64").to("tpu"),
                 ValueError, r"unknown device 'tpu'; expected 'cpu', 'cuda' or 'cuda:N'",
                 id="unknown_device_to"),
]


@pytest.mark.parametrize("bad, error, match", ERRORS)
def test_error_names_problem_and_fix(device, bad, error, match):
    with pytest.raises(error, match=match):
        bad(device)


@pytest.mark.parametrize("loss, targets, match", [
    (F.cross_entropy, [0, 3], r"cross_entropy: target 3 is out of range for 3 classes \(0 to 2\)"),
    (F.nll_loss, [-1, 0], r"nll_loss: target -1 is out of range for 3 classes \(0 to 2\)"),
])
def test_out_of_range_targets(loss, targets, match):
    # checked on the CPU only: on a GPU the check would wait for the device
    with pytest.raises(IndexError, match=match):
        loss(gpuad.zeros(2, 3), tensor(targets))


def test_unknown_device_string():
    with pytest.raises(ValueError, match=r"unknown device 'gpu'; expected 'cpu', 'cuda'"):
        gpuad.zeros(2, device="gpu")


def test_cuda_without_cupy_says_what_to_install(monkeypatch):
    from gpuad import backends
    monkeypatch.setattr(backends, "_backends", {})
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    with pytest.raises(RuntimeError, match=r"CuPy is not installed.*pip install "
                                           r"gpuad\[cuda12\].*gpuad\[cuda13\]"):
        gpuad.ones(2, device="cuda")


def test_cuda_without_a_gpu_says_to_use_the_cpu():
    if gpuad.cuda.is_available():
        pytest.skip("cuda is available here (a GPU, or the emulated one)")
    try:
        import cupy  # noqa: F401
    except ImportError:
        pytest.skip("CuPy is not installed")
    with pytest.raises(RuntimeError, match=r"no usable GPU was found.*device='cpu'"):
        gpuad.ones(2, device="cuda")


# --- tensors on two devices: a second backend named cuda:0 stands in for a GPU -------------
@pytest.fixture
def on_two_devices():
    """A tensor on cpu and one whose backend says it is on cuda:0 (NumPy underneath)."""
    fake_gpu = CPUBackend(gpuad.device("cuda:0"))
    return gpuad.ones(2, 2), Tensor._make(np.ones((2, 2), np.float32), fake_gpu)


@pytest.mark.parametrize("op", [
    lambda a, b: a + b,
    lambda a, b: a * 2.0 - b,
    lambda a, b: a @ b,
    lambda a, b: gpuad.maximum(a, b),
    lambda a, b: gpuad.cat([a, b]),
    lambda a, b: gpuad.where(a > 0, a, b),
    lambda a, b: a.add_(b),
    lambda a, b: a[b.long()],
], ids=["add", "scalar_then_sub", "matmul", "maximum", "cat", "where", "add_", "index"])
def test_tensors_on_two_devices(on_two_devices, op):
    a, b = on_two_devices
    with pytest.raises(RuntimeError, match=r"cpu.*cuda:0.*\.to\('cpu'\)"):
        op(a, b)
