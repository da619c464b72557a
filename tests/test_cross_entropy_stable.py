"""cross_entropy on logits with a large common offset, against PyTorch, on every path: the
reference formula (small arrays), the Numba twin (large ones on cpu), the CUDA kernel (the
``device`` fixture on cuda), and the composite backward (create_graph)."""
import numpy as np
import pytest

import gpuad
from gpuad.backends import backend_for, cpu_kernels
from gpuad.backends.base import Backend

torch = pytest.importorskip("torch")
F = gpuad.nn.functional


def _logits(n, c, offset, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, c)) * 2 + offset).astype(dtype), rng.integers(0, c, n)


def _torch(x, t):
    tx = torch.tensor(x, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(tx, torch.tensor(t))
    loss.backward()
    return loss.item(), tx.grad.numpy()


@pytest.mark.parametrize("offset", [0.0, 1e4, 1e6, -1e6])
@pytest.mark.parametrize("path", ["reference", "twin"])
def test_cross_entropy_with_a_large_offset_matches_torch(device, monkeypatch, offset, path):
    if path == "twin":
        monkeypatch.setattr(cpu_kernels, "MIN_ELEMENTS", 1)  # the twin on cpu, the kernel on cuda
    else:
        monkeypatch.setattr(cpu_kernels, "MIN_ELEMENTS", 1 << 62)
    x, t = _logits(64, 10, offset)
    want_loss, want_grad = _torch(x, t)
    gx = gpuad.tensor(x, device=device, requires_grad=True)
    loss = F.cross_entropy(gx, gpuad.tensor(t, device=device))
    loss.backward()
    np.testing.assert_allclose(loss.item(), want_loss, rtol=2e-6)
    np.testing.assert_allclose(gx.grad.cpu().numpy(), want_grad, rtol=1e-4, atol=2e-7)


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_cross_entropy_composite_backward_with_a_large_offset_matches_torch(device, offset):
    x, t = _logits(16, 5, offset)
    _, want_grad = _torch(x, t)
    gx = gpuad.tensor(x, device=device, requires_grad=True)
    g, = gpuad.autograd.grad(F.cross_entropy(gx, gpuad.tensor(t, device=device)), gx,
                             create_graph=True)
    np.testing.assert_allclose(g.detach().cpu().numpy(), want_grad, rtol=1e-4, atol=2e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_kernels_keep_the_offset_out_of_the_rounding(device, monkeypatch, dtype):
    """Twin (or CUDA kernel) and reference both give the float64 answer of the shifted
    logits: the row max is never added back before the subtraction."""
    monkeypatch.setattr(cpu_kernels, "MIN_ELEMENTS", 1)
    be = backend_for(device)
    x, t = _logits(33, 1023, 1e6, dtype)
    exact = x.astype(np.float64)
    m = exact.max(1, keepdims=True)
    lse = np.log(np.exp(exact - m).sum(1, keepdims=True))
    want_loss = (lse[:, 0] - (exact[np.arange(33), t] - m[:, 0])).mean()
    want_grad = np.exp(exact - m - lse)
    want_grad[np.arange(33), t] -= 1
    xs, ts = be.asarray(x), be.asarray(t)
    for fwd, bwd in ((be.cross_entropy_forward, be.cross_entropy_backward),
                     (lambda *a: Backend.cross_entropy_forward(be, *a),
                      lambda *a: Backend.cross_entropy_backward(be, *a))):
        stats, loss = fwd(xs, ts)
        grad = bwd(xs, stats, ts, be.asarray(np.asarray(1.0, dtype)))
        tol = 1e-6 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(float(be.to_host(loss)), want_loss, rtol=tol)
        np.testing.assert_allclose(be.to_host(grad), want_grad, rtol=10 * tol, atol=tol)


def test_float16_cross_entropy_matches_torch(device):
    x, t = _logits(8, 6, 0.0, np.float16)
    want_loss, want_grad = _torch(x, t)
    gx = gpuad.tensor(x, device=device, requires_grad=True)
    loss = F.cross_entropy(gx, gpuad.tensor(t, device=device))
    loss.backward()
    assert loss.dtype == gx.grad.dtype == gpuad.float16
    np.testing.assert_allclose(float(loss.item()), want_loss, rtol=2e-3)
    np.testing.assert_allclose(gx.grad.cpu().numpy().astype(np.float32),
                               want_grad.astype(np.float32), rtol=1e-2, atol=1e-4)
