"""Memory stats over training steps, the saved-tensors report, and what backward frees."""
import gc
import weakref

import pytest

import gpuad
from gpuad import nn
from gpuad.autograd import Function
from gpuad.backends import backend_for
from gpuad.nn import functional as F


class PooledMatMul(Function):
    """``a @ b`` written into ``backend.empty``: on CPU, what the pool serves when on."""

    def forward(self, a, b):
        na, nb = self.needs_input_grad
        self.save_for_backward(a if nb else None, b if na else None)
        return self.xp.matmul(a, b, out=self.backend.empty((a.shape[0], b.shape[1]), a.dtype))

    def backward(self, gy):
        a, b = self.saved_tensors
        return (None if b is None else mm(gy, b.mT)), (None if a is None else mm(a.mT, gy))


def mm(a, b):
    return PooledMatMul().apply(a, b)


@pytest.fixture
def pooled(device):
    """The device's pool on, lending even small arrays."""
    pool = backend_for(device).pool
    was = pool.caching, getattr(pool, "min_bytes", None)
    gpuad.memory.set_caching(True, device)
    if was[1] is not None:
        pool.min_bytes = 0
    yield device
    gpuad.memory.set_caching(was[0], device)
    if was[1] is not None:
        pool.min_bytes = was[1]


def mlp_step(device, batch=16, dims=(8, 16, 4)):
    layers = [nn.Linear(i, o, device=device) for i, o in zip(dims[:-1], dims[1:])]
    opt = gpuad.optim.SGD([p for m in layers for p in m.parameters()], lr=0.01, momentum=0.9)
    x = gpuad.randn(batch, dims[0], device=device)
    y = gpuad.randint(0, dims[-1], (batch,), device=device)

    def step():
        opt.zero_grad()
        h = x
        for i, lin in enumerate(layers):
            h = mm(h, lin.weight.mT) + lin.bias
            if i < len(layers) - 1:
                h = h.relu()
        F.cross_entropy(h, y).backward()
        opt.step()
    return step


def test_training_steps_are_served_from_the_cache_without_leaking(pooled):
    step = mlp_step(pooled)
    for _ in range(3):
        step()
    gc.collect()  # earlier tests' cyclic garbage, freed now rather than in mid-count
    start = gpuad.memory.stats(pooled)
    held = gpuad.memory.memory_allocated(pooled)  # what outlives a step (grads, buffers)
    assert start["peak_allocated_bytes"] > held   # the step's activations came from the pool
    for _ in range(1000):
        step()
        assert gpuad.memory.memory_allocated(pooled) == held
    end = gpuad.memory.stats(pooled)
    assert end["raw_alloc_calls"] == start["raw_alloc_calls"]
    assert end["pool_hits"] - start["pool_hits"] >= 1000 * 4
    assert end["peak_allocated_bytes"] == start["peak_allocated_bytes"]


def test_stats_api_shapes(device):
    gpuad.memory.reset_peak_memory_stats(device)
    s = gpuad.memory.stats(device)
    assert set(s) == {"allocated_bytes", "reserved_bytes", "peak_allocated_bytes",
                      "raw_alloc_calls", "raw_free_calls", "pool_hits", "pool_misses",
                      "saved_activation_bytes"}
    assert all(isinstance(v, int) and v >= 0 for v in s.values())
    assert s["reserved_bytes"] >= s["allocated_bytes"]
    assert gpuad.memory.max_memory_allocated(device) == gpuad.memory.memory_allocated(device)
    gpuad.memory.empty_cache(device)
    s = gpuad.memory.stats(device)
    assert s["reserved_bytes"] == s["allocated_bytes"]


def test_stats_name_a_bad_device():
    with pytest.raises(ValueError, match="unknown device"):
        gpuad.memory.stats("tpu")


def two_layer(device, batch=32, hidden=64, classes=10):
    x = gpuad.randn(batch, 784, device=device)
    w1 = gpuad.randn(hidden, 784, device=device, requires_grad=True)
    w2 = gpuad.randn(classes, hidden, device=device, requires_grad=True)
    b1 = gpuad.zeros(hidden, device=device, requires_grad=True)
    t = gpuad.randint(0, classes, (batch,), device=device)
    return x, w1, b1, w2, t


def test_saved_tensors_report_counts_what_ops_save(device):
    batch, hidden, classes = 32, 64, 10
    x, w1, b1, w2, t = two_layer(device, batch, hidden, classes)
    gc.collect()
    before = gpuad.memory.stats(device)["saved_activation_bytes"]
    with gpuad.memory.saved_tensors_report() as report:
        h = (x @ w1.mT + b1).relu()
        loss = F.cross_entropy(h @ w2.mT, t)
    # relu's output (shared with the second matmul), the logits and the per-row stats
    expected = 4 * (batch * hidden + batch * classes + 2 * batch)
    assert report.activation_bytes == expected
    # leaves: x (first matmul), w2 seen through w2.mT (second), the targets (loss)
    assert report.leaf_bytes == 4 * batch * 784 + 4 * classes * hidden + 8 * batch
    assert gpuad.memory.stats(device)["saved_activation_bytes"] - before == expected
    assert [r.op for r in report.rows] == ["MatMul", "Relu", "MatMul", "MatMul",
                                           "CrossEntropy", "CrossEntropy", "CrossEntropy"]
    shared = [r for r in report.rows if r.first is not None]
    assert len(shared) == 1 and report.rows[shared[0].first].op == "Relu"
    text = str(report)
    assert "leaf (input/parameter)" in text and "same memory as #" in text
    assert f"{expected / 1024:.2f} KiB" in text
    loss.backward()
    assert gpuad.memory.stats(device)["saved_activation_bytes"] == before


def test_backward_frees_what_the_graph_saved(device):
    x, w1, b1, w2, t = two_layer(device)
    h = (x @ w1.mT + b1).relu()
    alive = weakref.ref(h.data)
    loss = F.cross_entropy(h @ w2.mT, t)
    del h
    assert alive() is not None        # held by the graph for backward
    loss.backward()
    assert alive() is None            # freed, though loss and its graph are still here
    assert loss.grad_fn is not None


def test_report_outside_its_block_records_nothing(device):
    x, w1, b1, w2, t = two_layer(device)
    with gpuad.memory.saved_tensors_report() as report:
        pass
    (x @ w1.mT).sum()
    assert report.rows == [] and report.total_bytes == 0
    assert "0 op nodes" in report.table()
