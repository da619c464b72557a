"""Edge cases of ``gpuad.compile`` where a replay could compute something other than the
eager step: settings held by ops, state changed after compiling, arrays made or written
inside the step, data-dependent shapes, checkpoint, aliased inputs, slices, target checks,
the memory a recording keeps. Each docstring says what would go wrong without the fix."""
import gc
import tracemalloc
import warnings

import numpy as np
import pytest

import gpuad
from gpuad import nn
from gpuad.nn import functional as F
from helpers import manual_sgd_step, train_step


def _same_or_eager(compiled, eager, calls):
    """Each call's result equals eager's, unless the compiled step said it runs eagerly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for args in calls:
            got, want = compiled(*args), eager(*args)
            if compiled.eager_reason is None:
                np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


def _mlp(seed=0):
    gpuad.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def _data(n=6, batch=5, seed=0):
    rng = np.random.default_rng(seed)
    return [(gpuad.tensor(rng.standard_normal((batch, 4)).astype(np.float32)),
             gpuad.tensor(rng.integers(0, 3, batch))) for _ in range(n)]


def test_python_number_held_by_an_op_is_compared():
    """An op's own settings (an exponent, a slope, an int index) are compared between the
    recordings: an exponent that changes at every call is never frozen into a replay."""
    w = gpuad.tensor([1.5, 2.0, 0.5])
    x = gpuad.tensor([1.0, 2.0, 3.0])
    exponents = iter(range(2, 100))

    def step(x):
        return ((x * w) ** next(exponents)).sum()
    compiled = gpuad.compile(step)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = [compiled(x).item() for _ in range(4)]
    if compiled.eager_reason is None:  # it replayed: the results must still be eager's
        want = [((x * w) ** p).sum().item() for p in range(2, 6)]
        assert got == pytest.approx(want)


def test_eval_mode_after_compiling_is_not_replayed_in_training_mode():
    """A replay holds only while every module it called keeps its train/eval mode: after
    ``model.eval()`` dropout must stop, and back in training the step replays again."""
    gpuad.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 3))
    step = gpuad.compile(lambda x: model(x).detach())
    (x, _), = _data(1)
    for _ in range(3):
        step(x)
    model.eval()
    with gpuad.no_grad():
        want = model(x)
    np.testing.assert_allclose(step(x).numpy(), want.numpy(), rtol=1e-6)
    model.train()
    for _ in range(3):
        step(x)
    assert step.eager_reason is None and step.stats["replayed"] >= 2


def test_freezing_a_parameter_after_compiling_stops_its_updates():
    """A replay holds only while the parameters it read keep their requires_grad: a frozen
    weight gets no .grad and no update, as in eager."""
    models = [_mlp(), _mlp()]
    opts = [gpuad.optim.SGD(m.parameters(), lr=0.1) for m in models]
    eager = train_step(models[0], opts[0])
    compiled = gpuad.compile(train_step(models[1], opts[1]))
    for i, (x, y) in enumerate(_data()):
        if i == 3:
            for m in models:
                m[0].weight.requires_grad = False
            frozen = models[1][0].weight.detach().numpy().copy()
        eager(x, y)
        compiled(x, y)
    np.testing.assert_array_equal(models[1][0].weight.detach().numpy(), frozen)
    assert models[1][0].weight.grad is None


def test_array_made_in_the_step_and_written_in_place_starts_fresh_each_call():
    """``gpuad.zeros`` inside the step is recorded as a kernel: each replay starts from a
    fresh array, not from the one the last call wrote its one-hots into (the first two
    batches have equal labels, so a constant would have looked unchanged)."""
    rng = np.random.default_rng(0)
    logits = gpuad.tensor(rng.standard_normal((4, 3)).astype(np.float32))

    def step(logits, y):
        onehot = gpuad.zeros(4, 3)
        onehot[gpuad.arange(4), y] = 1.0
        return -(onehot * F.log_softmax(logits, 1)).sum(1).mean()
    labels = [gpuad.tensor([0, 0, 0, 0])] * 2 + [gpuad.tensor([1, 2, 1, 2])] * 2
    _same_or_eager(gpuad.compile(step), step, [(logits, y) for y in labels])


def test_boolean_mask_that_selects_another_count_is_not_replayed_stale():
    """``pred[mask]`` has a data-dependent shape: such a step runs eagerly, rather than
    replaying the recorded count of selected elements."""
    pred = gpuad.tensor([1.0, 2.0, 3.0, 4.0])

    def step(pred, t):
        keep = t >= 0
        return ((pred[keep] - t[keep]) ** 2).mean()
    targets = [[1, -1, 0, 0], [2, -1, 1, 0], [1, -1, -1, 0], [1, 1, 1, 0]]
    _same_or_eager(gpuad.compile(step), step,
                   [(pred, gpuad.tensor(np.float32(t))) for t in targets])


def test_checkpoint_with_dropout_uses_one_mask_in_forward_and_backward():
    """``checkpoint`` recomputes its block in backward with the RNG state restored, which a
    replay does not repeat: a step using it runs eagerly (one dropout mask per call)."""
    def make():
        gpuad.manual_seed(0)
        lin1, lin2 = nn.Linear(4, 8), nn.Linear(8, 3)
        opt = gpuad.optim.SGD(list(lin1.parameters()) + list(lin2.parameters()), lr=0.1)

        def step(x, y):
            opt.zero_grad()
            h = gpuad.checkpoint(lambda t: F.dropout(F.relu(lin1(t)), 0.5), x)
            loss = F.cross_entropy(lin2(h), y)
            loss.backward()
            opt.step()
            return loss.detach()
        return step
    eager, compiled = make(), gpuad.compile(make())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, (x, y) in enumerate(_data()):
            gpuad.manual_seed(10 + i)
            want = eager(x, y).item()
            gpuad.manual_seed(10 + i)
            got = compiled(x, y).item()
            assert got == pytest.approx(want, rel=1e-6)


def test_in_place_update_follows_a_parameter_whose_array_was_replaced():
    """An in-place update of a parameter (``p.sub_``) follows the parameter, not its array:
    after ``p.data = ...`` the replay updates the new array."""
    models = [_mlp(), _mlp()]
    eager, compiled = manual_sgd_step(models[0]), gpuad.compile(manual_sgd_step(models[1]))
    rng = np.random.default_rng(3)
    for i in range(6):
        if i == 3:
            for m in models:
                for p in m.parameters():
                    p.data = p.data.copy()
        x = gpuad.tensor(rng.standard_normal((8, 4)).astype(np.float32))
        t = gpuad.tensor(rng.standard_normal((8, 3)).astype(np.float32))
        assert compiled(x, t).item() == pytest.approx(eager(x, t).item(), rel=1e-6)


def test_the_same_tensor_passed_twice_is_part_of_the_signature():
    """Which inputs share an array is part of the signature: a program recorded for
    ``step(a, a)`` is not replayed for ``step(a, b)``."""
    def step(u, v):
        return (u - v).sum()
    a, b = gpuad.tensor([1.0, 2.0]), gpuad.tensor([5.0, 7.0])
    _same_or_eager(gpuad.compile(step), step, [(a, a), (a, a), (a, b)])


def test_index_with_a_slice_and_a_tensor_replays():
    """Slices held by an op (``w[:, idx]``) compare equal between recordings (they are
    unhashable before Python 3.12): the step replays instead of falling back."""
    w = gpuad.tensor(np.arange(20, dtype=np.float32).reshape(4, 5), requires_grad=True)

    def step(idx):
        w.grad = None
        w[:, idx].sum().backward()
        return w.grad
    compiled = gpuad.compile(step)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(5):
            compiled(gpuad.tensor([i % 5, 1]))
    assert compiled.eager_reason is None, compiled.eager_reason


def test_out_of_range_target_still_raises_in_a_replay():
    """The targets' range check is recorded too: a replay raises on a target of -1 as eager
    does (rather than NumPy reading it as the last class)."""
    model = _mlp()
    step = gpuad.compile(lambda x, y: F.cross_entropy(model(x), y).detach())
    (x, y), = _data(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        step(x, y)
        step(x, y)
    bad = gpuad.tensor([0, 1, -1, 2, 0])
    with pytest.raises(IndexError):
        step(x, bad)


def test_recording_does_not_keep_every_array_of_the_step_alive():
    """A recording names arrays by id only while they live: it keeps no more memory than
    the eager step (a step that fits eagerly also fits while recorded)."""
    gpuad.manual_seed(0)
    model = nn.Sequential(*[m for _ in range(6) for m in (nn.Linear(256, 256), nn.Tanh())],
                          nn.Linear(256, 10))
    step = train_step(model, gpuad.optim.SGD(model.parameters(), lr=0.01))
    rng = np.random.default_rng(0)
    x = gpuad.tensor(rng.standard_normal((512, 256)).astype(np.float32))
    y = gpuad.tensor(rng.integers(0, 10, 512))
    step(x, y)
    compiled = gpuad.compile(step)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        step(x, y)
        eager_kept = tracemalloc.get_traced_memory()[0] - base  # the new .grads
        base = tracemalloc.get_traced_memory()[0]
        compiled(x, y)
        compiled_kept = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert compiled_kept <= eager_kept + (1 << 20)


cuda_only = pytest.mark.skipif(not gpuad.cuda.is_available(), reason="needs a CUDA GPU")


@cuda_only
def test_cuda_in_place_change_of_an_input_reaches_the_caller():
    """A CUDA-graph replay copies the inputs into static buffers; an in-place change of an
    input inside the step is copied back to the caller's tensor."""
    w = gpuad.tensor([[1.0, 2.0], [3.0, 4.0]], device="cuda", requires_grad=True)

    def step(x):
        w.grad = None
        with gpuad.no_grad():
            x.mul_(2.0)
        (x @ w).sum().backward()
        return w.grad
    compiled = gpuad.compile(step)
    for _ in range(4):
        x = gpuad.ones(3, 2, device="cuda")
        compiled(x)
        np.testing.assert_array_equal(x.numpy(), np.full((3, 2), 2.0, np.float32))
