"""``gpuad.checkpoint``: same gradients as without it, fewer saved activations."""
import gc

import numpy as np
import pytest

import gpuad
from gpuad import nn
from gpuad.nn import functional as F

WIDTH, DEPTH, BATCH, CLASSES = 32, 8, 16, 5


def deep_mlp(device):
    blocks = [nn.Linear(WIDTH, WIDTH, device=device) for _ in range(DEPTH)]
    head = nn.Linear(WIDTH, CLASSES, device=device)
    return blocks, head


def segment(blocks, p):
    """Linear + ReLU + dropout for each block: a function of the input tensor only."""
    def run(h):
        for lin in blocks:
            h = F.dropout(F.linear(h, lin.weight, lin.bias).relu(), p)
        return h
    return run


def loss_of(blocks, head, x, t, segments, p=0.2):
    """Cross-entropy of the MLP, its blocks in ``segments`` checkpointed chunks (0: none)."""
    if segments:
        size = len(blocks) // segments
        h = x
        for i in range(0, len(blocks), size):
            h = gpuad.checkpoint(segment(blocks[i:i + size], p), h)
    else:
        h = segment(blocks, p)(x)
    return F.cross_entropy(F.linear(h, head.weight, head.bias), t)


def params(blocks, head):
    return [p for m in blocks + [head] for p in m.parameters()]


def run(device, segments, x_requires_grad=False):
    gpuad.manual_seed(0)
    blocks, head = deep_mlp(device)
    x = gpuad.randn(BATCH, WIDTH, device=device, requires_grad=x_requires_grad)
    t = gpuad.randint(0, CLASSES, (BATCH,), device=device)
    loss = loss_of(blocks, head, x, t, segments)
    loss.backward()
    after = gpuad.rand(3, device=device)   # the outer generator goes on undisturbed
    grads = [p.grad.cpu().numpy() for p in params(blocks, head)]
    return loss.item(), grads, x.grad, after.cpu().numpy()


@pytest.mark.parametrize("segments", [1, 2, 8])
def test_same_gradients_with_dropout_inside(device, segments):
    loss0, grads0, _, after0 = run(device, 0)
    loss1, grads1, _, after1 = run(device, segments)
    assert loss1 == loss0
    for g0, g1 in zip(grads0, grads1):
        np.testing.assert_allclose(g1, g0, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(after1, after0)


def test_gradient_reaches_an_input_that_requires_grad(device):
    _, _, gx0, _ = run(device, 0, x_requires_grad=True)
    _, _, gx1, _ = run(device, 2, x_requires_grad=True)
    np.testing.assert_allclose(gx1.cpu().numpy(), gx0.cpu().numpy(), rtol=1e-5, atol=1e-6)


def test_saved_activations_drop(device):
    gpuad.manual_seed(0)
    blocks, head = deep_mlp(device)
    x = gpuad.randn(BATCH, WIDTH, device=device)
    t = gpuad.randint(0, CLASSES, (BATCH,), device=device)
    gc.collect()
    base = gpuad.memory.stats(device)["saved_activation_bytes"]
    saved = {}
    for segments in (0, 2):
        with gpuad.memory.saved_tensors_report() as report:
            loss = loss_of(blocks, head, x, t, segments, p=0.0)
        saved[segments] = gpuad.memory.stats(device)["saved_activation_bytes"] - base
        assert report.activation_bytes == saved[segments]
        loss.backward()
        del loss
    act, tail = 4 * BATCH * WIDTH, 4 * (BATCH * CLASSES + 2 * BATCH)  # logits, row stats
    assert saved[0] == DEPTH * act + tail     # every block's ReLU output
    assert saved[2] == 2 * act + tail         # the second segment's input, the head's input


def test_non_tensor_args_and_tuple_outputs(device):
    w = gpuad.randn(4, 4, device=device, requires_grad=True)

    def fn(a, scale, b):
        return (a @ w) * scale, b.sum()

    a = gpuad.randn(3, 4, device=device, requires_grad=True)
    b = gpuad.randn(2, device=device, requires_grad=True)
    y, s = gpuad.checkpoint(fn, a, 2.0, b)
    (y.sum() + s).backward()
    row = 2 * w.detach().cpu().numpy().sum(1)     # d sum(a @ w * 2) / da
    np.testing.assert_allclose(a.grad.cpu().numpy(), np.tile(row, (3, 1)), rtol=1e-5)
    np.testing.assert_allclose(b.grad.cpu().numpy(), np.ones(2))
    assert w.grad is not None


def test_under_no_grad_it_just_calls_fn(device):
    x = gpuad.randn(2, 2, device=device, requires_grad=True)
    with gpuad.no_grad():
        y = gpuad.checkpoint(lambda t: t * 2, x)
    assert y.grad_fn is None and not y.requires_grad


def test_clear_errors():
    x = gpuad.randn(2, 2, requires_grad=True)
    with pytest.raises(TypeError, match="must be callable"):
        gpuad.checkpoint(3, x)
    with pytest.raises(TypeError, match="at least one Tensor"):
        gpuad.checkpoint(lambda s: s, 2.0)
    with pytest.raises(TypeError, match="must return a Tensor"):
        gpuad.checkpoint(lambda t: t.sum().item(), x)
    y = gpuad.checkpoint(lambda t: t * t, x)
    with pytest.raises(RuntimeError, match="create_graph"):
        gpuad.autograd.grad(y.sum(), x, create_graph=True)


def test_checkpoint_keeps_only_its_inputs_until_backward(device):
    x = gpuad.randn(BATCH, WIDTH, device=device, requires_grad=True)
    lin = nn.Linear(WIDTH, WIDTH, device=device)
    h = lin(x)
    y = gpuad.checkpoint(lambda t: (t.relu() * 3).tanh(), h)
    node = y.grad_fn
    assert [a is h.data for a in node.saved_arrays()] == [True]
    y.sum().backward()
    assert node.saved_arrays() == [] and x.grad is not None


def test_rng_state_round_trip(device):
    backend = gpuad.backends.backend_for(device)
    state = backend.get_rng_state()
    a, n = gpuad.rand(5, device=device), gpuad.randn(3, device=device)
    backend.set_rng_state(state)
    b, m = gpuad.rand(5, device=device), gpuad.randn(3, device=device)
    np.testing.assert_array_equal(b.cpu().numpy(), a.cpu().numpy())
    np.testing.assert_array_equal(m.cpu().numpy(), n.cpu().numpy())
    assert not np.array_equal(gpuad.rand(5, device=device).cpu().numpy(), b.cpu().numpy())


def test_fn_changing_its_input_in_place_is_refused():
    h = gpuad.randn(3, requires_grad=True) * 1

    def fn(t):
        t.mul_(2)
        return t * t
    with pytest.raises(RuntimeError, match="in place"):
        gpuad.checkpoint(fn, h)
