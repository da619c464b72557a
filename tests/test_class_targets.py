"""Class targets outside ``[0, C)``: the CPU raises an IndexError; CUDA gives NaN on every
path (the fused kernels, the reference formulas they fall back to, ``nll_loss``, the
differentiable backward, a compiled step): a NaN loss and NaN gradients in the bad target's
row, the other rows untouched; ``gpuad.cuda.set_class_index_checks(True)`` makes CUDA raise
as the CPU does."""
import warnings

import numpy as np
import pytest

import gpuad
from gpuad.autograd import grad

F = gpuad.nn.functional
BAD = [1, 3, 0, -1]  # 3 classes: rows 1 and 3 are out of range
GOOD_ROWS, BAD_ROWS = [0, 2], [1, 3]


@pytest.fixture
def checks():
    yield gpuad.cuda.set_class_index_checks
    gpuad.cuda.set_class_index_checks(False)


def _logits(device, dtype=gpuad.float32):
    values = np.random.default_rng(0).standard_normal((4, 3))
    return gpuad.tensor(values, dtype=dtype, device=device, requires_grad=True)


def _nan_rows(loss, x):
    """The loss is NaN, and so is every gradient of the bad rows; the good rows' gradients
    are those of the good rows alone (their loss, scaled by their share of the batch)."""
    assert np.isnan(loss.item())
    g = x.grad.detach().cpu().numpy()
    assert np.isnan(g[BAD_ROWS]).all() and np.isfinite(g[GOOD_ROWS]).all()


LOSSES = {"cross_entropy": F.cross_entropy,
          "nll_loss": lambda x, t: F.nll_loss(F.log_softmax(x, 1), t)}


@pytest.mark.parametrize("dtype", [gpuad.float32, gpuad.float16], ids=["fused", "fallback"])
@pytest.mark.parametrize("loss", LOSSES)
def test_out_of_range_targets_raise_on_cpu_and_give_nan_on_cuda(device, loss, dtype):
    x, t = _logits(device, dtype), gpuad.tensor(BAD, device=device)
    if device == "cpu":
        with pytest.raises(IndexError, match=f"{loss}: target -1 is out of range"):
            LOSSES[loss](x, t)
        return
    value = LOSSES[loss](x, t)
    value.backward()
    _nan_rows(value, x)
    good = _logits(device, dtype)
    ok = LOSSES[loss](good[GOOD_ROWS], gpuad.tensor([1, 0], device=device))
    ok.backward()
    np.testing.assert_allclose(x.grad.cpu().numpy()[GOOD_ROWS],
                               good.grad.cpu().numpy()[GOOD_ROWS] / 2, rtol=1e-2)


def test_the_differentiable_backward_and_jvp_give_nan_rows_too(device):
    if device == "cpu":
        pytest.skip("the CPU raises before any of it")
    x, t = _logits(device), gpuad.tensor(BAD, device=device)
    g, = grad(F.cross_entropy(x, t), x, create_graph=True)
    assert np.isnan(g.detach().cpu().numpy()[BAD_ROWS]).all()
    _, tangent = gpuad.autograd.jvp(lambda a: F.cross_entropy(a, t), (x.detach(),),
                                    (gpuad.ones(4, 3, device=device),))
    assert np.isnan(tangent.item())


def test_a_compiled_step_gives_nan_or_raises_as_eager(device, checks):
    model = gpuad.nn.Linear(3, 3).to(device)
    opt = gpuad.optim.SGD(model.parameters(), lr=0.1)

    @gpuad.compile
    def step(x, t):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), t)
        loss.backward()
        opt.step()
        return loss.detach()
    x = gpuad.ones(4, 3, device=device)
    for _ in range(3):  # recorded twice, then replayed
        assert np.isfinite(step(x, gpuad.tensor([0, 1, 2, 0], device=device)).item())
    bad = gpuad.tensor(BAD, device=device)
    if device == "cpu":
        with pytest.raises(IndexError):
            step(x, bad)
        return
    assert np.isnan(step(x, bad).item()) and step.eager_reason is None
    assert np.isnan(model.weight.grad.cpu().numpy()).any()
    checks(True)  # compiled steps record again, and replay without graphs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(3):
            step(x, gpuad.tensor([0, 1, 2, 0], device=device))
    with pytest.raises(IndexError, match="cross_entropy: target -1 is out of range"):
        step(x, bad)


@pytest.mark.parametrize("dtype", [gpuad.float32, gpuad.float16], ids=["fused", "fallback"])
@pytest.mark.parametrize("loss", LOSSES)
def test_the_opt_in_check_raises_on_cuda_as_on_cpu(device, checks, loss, dtype):
    assert not gpuad.cuda.class_index_checks()
    checks(True)
    assert gpuad.cuda.class_index_checks()
    with pytest.raises(IndexError, match=f"{loss}: target -1 is out of range for 3 classes"):
        LOSSES[loss](_logits(device, dtype), gpuad.tensor(BAD, device=device))
    with pytest.raises(IndexError, match=f"{loss}: target 3 is out of range"):
        LOSSES[loss](_logits(device, dtype), gpuad.tensor([0, 3, 0, 0], device=device))
    checks(False)
    value = LOSSES[loss](_logits(device, dtype), gpuad.tensor([2, 1, 0, 1], device=device))
    assert np.isfinite(value.item())


def test_the_kernels_and_their_reference_agree_on_nan_rows(device):
    backend = gpuad.backends.backend_for(device)
    x = backend.asarray(np.random.default_rng(1).standard_normal((4, 3)), gpuad.float32)
    t = backend.asarray(np.array(BAD), gpuad.int64)
    fused = [backend.cross_entropy_forward(x, t)[0],
             backend.cross_entropy_backward(x, backend.cross_entropy_forward(x, t)[0], t,
                                            0.25)]
    ref = [gpuad.backends.base.Backend.cross_entropy_forward(backend, x, t)[0],
           gpuad.backends.base.Backend.cross_entropy_backward(backend, x, fused[0], t, 0.25)]
    assert np.isnan(backend.to_host(backend.cross_entropy_forward(x, t)[1]))
    assert np.isnan(backend.to_host(
        gpuad.backends.base.Backend.cross_entropy_forward(backend, x, t)[1]))
    for got, want in zip(fused, ref):
        np.testing.assert_allclose(backend.to_host(got), backend.to_host(want), rtol=1e-6)
    g = backend.to_host(fused[1])
    assert np.isnan(g[BAD_ROWS]).all() and np.isfinite(g[GOOD_ROWS]).all()
