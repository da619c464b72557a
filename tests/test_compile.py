"""``gpuad.compile``: replays equal eager steps (SGD, Adam, schedulers, dropout, indexing,
in-place updates), new shapes record again, and what cannot be replayed runs eagerly
after one warning that says why."""
import types
import warnings

import numpy as np
import pytest

import gpuad
from gpuad import nn
from gpuad.nn import functional as F
from helpers import manual_sgd_step, train_step

STEPS = 6


def _mlp(device, seed=0, dropout=0.0):
    gpuad.manual_seed(seed)
    layers = [nn.Linear(12, 16), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 4)).to(device)


def _batches(device, n=STEPS, batch=8, seed=1):
    rng = np.random.default_rng(seed)
    return [(gpuad.tensor(rng.standard_normal((batch, 12)).astype(np.float32), device=device),
             gpuad.tensor(rng.integers(0, 4, batch), device=device)) for _ in range(n)]


def _pair(device, make_opt, loss_fn=F.cross_entropy, dropout=0.0, sched=None):
    """The same step twice: eager, and compiled, each with its own model and optimizer."""
    steps = []
    for _ in range(2):
        model = _mlp(device, dropout=dropout)
        opt = make_opt(model.parameters())
        steps.append((model, train_step(model, opt, loss_fn, sched(opt) if sched else None)))
    (m_eager, eager), (m_comp, step) = steps
    return m_eager, eager, m_comp, gpuad.compile(step)


def _check_same(m1, m2):
    """Equal to float32 rounding (bitwise on CPU, where the replay runs the same calls)."""
    tol = dict(rtol=1e-6, atol=1e-7) if next(m1.parameters()).device.type == "cpu" else \
        dict(rtol=1e-5, atol=1e-6)
    for p, q in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), **tol)
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), **tol)


def _run(eager, compiled, batches, seed_each=False):
    for i, (x, y) in enumerate(batches):
        if seed_each:
            gpuad.manual_seed(100 + i)
        a = eager(x, y)
        if seed_each:
            gpuad.manual_seed(100 + i)
        b = compiled(x, y)
        assert not b.requires_grad and b.grad_fn is None
        np.testing.assert_allclose(b.item(), a.item(), rtol=1e-6)


OPTIMIZERS = {
    "sgd": lambda ps: gpuad.optim.SGD(ps, lr=0.1, momentum=0.9),
    "nesterov": lambda ps: gpuad.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True,
                                           weight_decay=1e-3),
    "adam": lambda ps: gpuad.optim.Adam(ps, lr=1e-2),
    "adamw": lambda ps: gpuad.optim.AdamW(ps, lr=1e-2),
}


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_replay_equals_eager(device, opt):
    m1, eager, m2, step = _pair(device, OPTIMIZERS[opt])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing falls back
        _run(eager, step, _batches(device))
    assert step.stats == {"recorded": 2, "replayed": STEPS - 2, "eager": 0}
    _check_same(m1, m2)


def test_scheduler_inside_the_step_is_replayed(device):
    sched = lambda opt: gpuad.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)  # noqa: E731
    m1, eager, m2, step = _pair(device, OPTIMIZERS["adam"], sched=sched)
    _run(eager, step, _batches(device))
    assert step.stats["replayed"] == STEPS - 2
    _check_same(m1, m2)


def test_dropout_draws_new_numbers_each_replay():
    m1, eager, m2, step = _pair("cpu", OPTIMIZERS["sgd"], dropout=0.5)
    _run(eager, step, _batches("cpu"), seed_each=True)
    assert step.stats["replayed"] == STEPS - 2
    _check_same(m1, m2)


def test_nll_loss_indexes_with_this_calls_targets(device):
    loss = lambda out, y: F.nll_loss(F.log_softmax(out, 1), y)  # noqa: E731
    m1, eager, m2, step = _pair(device, OPTIMIZERS["sgd"], loss_fn=loss)
    _run(eager, step, _batches(device))
    assert step.stats["replayed"] == STEPS - 2
    _check_same(m1, m2)


def test_mse_and_manual_in_place_update(device):
    """A hand-written SGD update (in-place ops under no_grad) and the fused MSE backward."""
    models = [_mlp(device), _mlp(device)]
    eager, step = manual_sgd_step(models[0]), gpuad.compile(manual_sgd_step(models[1]))
    rng = np.random.default_rng(3)
    for _ in range(STEPS):
        x = gpuad.tensor(rng.standard_normal((8, 12)).astype(np.float32), device=device)
        t = gpuad.tensor(rng.standard_normal((8, 4)).astype(np.float32), device=device)
        np.testing.assert_allclose(step(x, t).item(), eager(x, t).item(), rtol=1e-6)
    assert step.stats["replayed"] == STEPS - 2
    _check_same(*models)


def test_new_batch_size_records_again_and_old_one_replays():
    m1, eager, m2, step = _pair("cpu", OPTIMIZERS["adam"])
    big, small = _batches("cpu", 3, batch=8), _batches("cpu", 3, batch=5, seed=2)
    _run(eager, step, big + small + big)
    assert step.stats == {"recorded": 4, "replayed": 5, "eager": 0}
    assert len(step.cache) == 2
    _check_same(m1, m2)


def test_results_in_a_dict_and_grads_after_replay():
    model = _mlp("cpu")

    @gpuad.compile
    def step(x, y):
        model.zero_grad()
        out = model(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        return {"loss": loss.detach(), "logits": out.detach()}
    for x, y in _batches("cpu"):
        r = step(x, y)
        with gpuad.no_grad():
            out = model(x)
        np.testing.assert_allclose(r["logits"].numpy(), out.numpy(), rtol=1e-6)
        np.testing.assert_allclose(r["loss"].item(), F.cross_entropy(out, y).item(),
                                   rtol=1e-6)
    assert step.stats["replayed"] == STEPS - 2
    assert all(p.grad is not None and p.grad.grad_fn is None for p in model.parameters())


def _fallback(step_body, match):
    model = _mlp("cpu")
    opt = OPTIMIZERS["sgd"](model.parameters())
    calls = []

    def step(x, y):
        calls.append(1)
        return step_body(model, opt, x, y)
    compiled = gpuad.compile(step)
    batches = _batches("cpu")
    with pytest.warns(RuntimeWarning, match=match) as caught:
        for x, y in batches:
            compiled(x, y)
    assert len([w for w in caught if "gpuad.compile" in str(w.message)]) == 1  # once
    assert len(calls) == STEPS  # every call ran the Python function: eager
    assert compiled.stats["replayed"] == 0
    assert compiled.eager_reason is not None
    return compiled


def _train(model, opt, x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


def test_item_inside_the_step_falls_back():
    def body(model, opt, x, y):
        loss = _train(model, opt, x, y)
        return loss.item() and loss.detach()
    _fallback(body, r"item\(\)")


def test_data_changing_outside_the_ops_is_detected():
    counter = [0]

    def body(model, opt, x, y):
        counter[0] += 1
        scale = gpuad.tensor(float(counter[0]))  # made anew, from Python state
        opt.zero_grad()
        loss = F.cross_entropy(model(x) * scale, y)
        loss.backward()
        opt.step()
        return loss.detach()
    _fallback(body, "disagreed")


def test_returning_a_graph_tensor_falls_back():
    _fallback(lambda model, opt, x, y: model(x).sum(), "not run backward")


def test_an_unhashable_argument_falls_back():
    model = _mlp("cpu")
    step = gpuad.compile(lambda x, extra: model(x).sum().detach())
    x = _batches("cpu", 1)[0][0]
    with pytest.warns(RuntimeWarning, match="hashable"):
        step(x, [[1], {2}])
    assert step.stats["eager"] == 1


def test_compile_checks_its_argument():
    with pytest.raises(TypeError, match="takes a function"):
        gpuad.compile(3)


def test_program_is_cut_at_its_host_calls_for_cuda_graphs():
    """The stretches a CUDA graph captures: device work between the replayable calls,
    with the .grad assignments run after their stretch's launch."""
    from gpuad.capture.cuda_graph import _segments
    m1, eager, m2, step = _pair("cpu", OPTIMIZERS["sgd"])
    _run(eager, step, _batches("cpu", 3))
    program = next(iter(step.cache.values())).program
    segments = _segments(program)
    n_params = len(list(m2.parameters()))
    # zero_grad | forward, backward, one .grad per parameter | opt.step | (nothing)
    assert len(segments) == 3
    (dev0, grads0, call0), (dev1, grads1, call1), (dev2, grads2, call2) = segments
    assert dev0 == () and grads0 == () and call0[0].func.__name__ == "zero_grad"
    assert len(dev1) > 10 and len(grads1) == n_params and call1[0].func.__name__ == "step"
    assert dev2 == () and grads2 == () and call2 is None
    assert sum(len(d) + len(g) + (c is not None) for d, g, c in segments) == \
        len(program.steps)


cuda_only = pytest.mark.skipif(not gpuad.cuda.is_available(), reason="needs a CUDA GPU")


@cuda_only
def test_cuda_step_is_captured_in_graphs_and_recaptured_when_a_parameter_moves():
    from gpuad.capture.cuda_graph import GraphedProgram
    m1, eager, m2, step = _pair("cuda", OPTIMIZERS["adam"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run(eager, step, _batches("cuda"))
    program = next(iter(step.cache.values())).program
    assert isinstance(program, GraphedProgram) and program.graphs is not None
    first_graphs = program.graphs
    _check_same(m1, m2)
    for p, q in zip(m1.parameters(), m2.parameters()):  # new arrays, same values
        p.data = p.data.copy()
        q.data = q.data.copy()
    _run(eager, step, _batches("cuda", 2, seed=5))
    assert program.graphs is not first_graphs
    _check_same(m1, m2)


@cuda_only
def test_cuda_dropout_is_replayed_without_graphs():
    m1, eager, m2, step = _pair("cuda", OPTIMIZERS["sgd"], dropout=0.5)
    with pytest.warns(RuntimeWarning, match="random numbers"):
        _run(eager, step, _batches("cuda"), seed_each=True)
    assert step.stats["replayed"] == STEPS - 2
    _check_same(m1, m2)


def test_every_layer_kind_replays_like_eager(device):
    """LayerNorm, GELU, LeakyReLU, Sigmoid, Flatten and dropout in eval mode, AdamW with a
    cosine schedule: every op and fused kernel of the nn stack, replayed."""
    def model():
        gpuad.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.LayerNorm(16), nn.GELU(),
                             nn.Linear(16, 16), nn.LeakyReLU(0.1), nn.Dropout(0.3),
                             nn.Linear(16, 16), nn.Sigmoid(), nn.Linear(16, 4)).to(device)
    models = [model(), model()]
    steps = []
    for m in models:
        m[6].eval()
        opt = gpuad.optim.AdamW(m.parameters(), lr=1e-2)
        sched = gpuad.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
        steps.append(train_step(m, opt, scheduler=sched))
    batches = [(x.reshape(8, 3, 4), y) for x, y in _batches(device)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run(steps[0], gpuad.compile(steps[1]), batches)
    _check_same(*models)


class _FakeCuda:
    """Just enough of CuPy's stream-capture API for GraphedProgram to run on NumPy: a
    "capture" runs the work at once and a graph's launch does nothing, so a first call's
    results are real and the host side (grads, calls, copies) can be checked on CPU."""

    def __init__(self, fail=False):
        self.launches, self.captures, self.fail = 0, 0, fail
        fake = self

        class Stream:
            def __init__(self, non_blocking=False):
                pass

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def record(self):
                return None

            def wait_event(self, event):
                pass

            def begin_capture(self):
                if fake.fail:
                    raise RuntimeError("cudaErrorStreamCaptureUnsupported")
                fake.captures += 1

            def end_capture(self):
                return Graph()

        class Graph:
            def launch(self, stream):
                fake.launches += 1

        class Device(Stream):
            def __init__(self, index):
                pass

        self.cuda = types.SimpleNamespace(Stream=Stream, Device=Device,
                                          get_current_stream=Stream)
        self.copyto = np.copyto


def _graphed(program, fake):
    from gpuad.capture.cuda_graph import GraphedProgram
    from gpuad.memory import CachingAllocator
    graphed = GraphedProgram(program, "cpu")
    graphed.xp = fake
    graphed.backend = types.SimpleNamespace(
        xp=fake, device=gpuad.device("cpu"), device_scope=fake.cuda.Device(0),
        pool=CachingAllocator("fake", lambda n: bytearray(n)))
    return graphed


def test_graphed_program_host_side_on_a_fake_cuda():
    """The CUDA-graph replay's host side, run on NumPy: one capture per stretch of device
    work, the .grad set and the optimizer called after each launch (the first call's
    results equal eager's), a recapture when a parameter's array is replaced."""
    m1, eager, m2, step = _pair("cpu", OPTIMIZERS["adam"])
    batches = _batches("cpu", 4)
    _run(eager, step, batches[:2])
    program = next(iter(step.cache.values())).program
    fake = _FakeCuda()
    graphed = _graphed(program, fake)
    x, y = batches[2]
    np.testing.assert_allclose(graphed.run([x._data, y._data]).item(), eager(x, y).item(),
                               rtol=1e-6)
    _check_same(m1, m2)
    n_device_stretches = sum(1 for d, _, _ in graphed.segments if d)
    assert fake.captures == n_device_stretches == fake.launches
    graphed.run([x._data, y._data])      # replays: launches only
    assert fake.captures == n_device_stretches and fake.launches == 2 * n_device_stretches
    for p in m2.parameters():
        p.data = p.data.copy()
    graphed.run([x._data, y._data])      # a parameter moved: captured again
    assert fake.captures == 2 * n_device_stretches
    graphed.release()
    assert graphed.graphs is None and graphed.private is None


def test_a_step_that_cannot_be_captured_replays_without_graphs(monkeypatch):
    """When capture fails (a host sync inside the step), nothing has run: the same
    program replays ungraphed, with one warning naming the error."""
    from gpuad.capture import step as step_module
    fake = _FakeCuda(fail=True)
    monkeypatch.setattr(step_module.CompiledStep, "_program",
                        lambda self, program, inputs: _graphed(program, fake))
    m1, eager, m2, step = _pair("cpu", OPTIMIZERS["sgd"])
    with pytest.warns(RuntimeWarning, match="StreamCaptureUnsupported"):
        _run(eager, step, _batches("cpu"))
    assert step.stats["replayed"] == STEPS - 2
    _check_same(m1, m2)
