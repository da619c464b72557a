"""A replay is never silently stale: Python values and tensors the step reads (a loss
weight in a dict, a rebound module attribute, a global, grad mode, the default dtype)
are guarded and the step records again when one changes; arrays made outside gpuad's
ops, and constants a custom op rebuilds, are either traced or refused with a warning."""
import warnings

import numpy as np
import pytest

import gpuad
from gpuad import nn
from gpuad.autograd import Function
from gpuad.nn import functional as F
from gpuad.tensor import Tensor

WEIGHT = 1.0   # a global loss weight the steps below read
K = 3.0        # a global the custom ops' backward reads


def _model(seed=0):
    gpuad.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    return [(gpuad.tensor(rng.standard_normal((5, 4)).astype(np.float32)),
             gpuad.tensor(rng.integers(0, 3, 5))) for _ in range(n)]


def _twins(body):
    """The same step, eager and compiled, each with its own model and optimizer."""
    steps = []
    for compiled in (False, True):
        model = _model()
        opt = gpuad.optim.SGD(model.parameters(), lr=0.1)

        def step(x, y, model=model, opt=opt):
            opt.zero_grad()
            loss = body(model, x, y)
            loss.backward()
            opt.step()
            return loss.detach()
        steps.append((model, gpuad.compile(step) if compiled else step))
    return steps


def _run(steps, data, change=None, at=4):
    (m_eager, eager), (m_comp, comp) = steps
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback: each change records again
        for i, (x, y) in enumerate(data):
            if i == at and change is not None:
                change()
            assert comp(x, y).item() == pytest.approx(eager(x, y).item(), rel=1e-6, abs=1e-7)
    for p, q in zip(m_eager.parameters(), m_comp.parameters()):
        np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), rtol=1e-6)
    return comp


def test_a_loss_weight_read_from_a_dict_is_followed():
    """The issue's case: with the weight set to 0 the eager loss drops to 0; a replay
    frozen at the recording kept training."""
    weights = {"ce": 1.0}
    steps = _twins(lambda m, x, y: weights["ce"] * F.cross_entropy(m(x), y))
    comp = _run(steps, _data(8), lambda: weights.update(ce=0.0))
    assert comp.stats == {"recorded": 4, "replayed": 4, "eager": 0}
    assert comp(*_data(1)[0]).item() == 0.0


def test_a_global_read_by_the_step_is_followed():
    global WEIGHT

    def change():
        global WEIGHT
        WEIGHT = 0.25
    try:
        comp = _run(_twins(lambda m, x, y: F.cross_entropy(m(x), y) * WEIGHT), _data(8),
                    change)
    finally:
        WEIGHT = 1.0
    assert comp.stats["recorded"] == 4


class Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.scale = gpuad.tensor(2.0)  # a plain tensor attribute, not a parameter
        self.shift = 0.5

    def forward(self, x):
        return self.lin(x) * self.scale + self.shift


def test_a_module_attribute_rebound_to_a_new_tensor_is_followed():
    models = [Scaled(), Scaled()]
    models[1].load_state_dict(models[0].state_dict())

    def eager(x):
        return models[0](x).sum().detach()
    comp = gpuad.compile(lambda x: models[1](x).sum().detach())
    x = _data(1)[0][0]
    for i in range(8):
        if i == 4:
            for m in models:
                m.scale = gpuad.tensor(-1.0)
        if i == 6:
            for m in models:
                m.shift = 3.0  # a plain value too
        assert comp(x).item() == pytest.approx(eager(x).item(), rel=1e-6)
    assert comp.stats["recorded"] == 6


def test_grad_mode_is_part_of_the_signature():
    model = _model()
    step = gpuad.compile(lambda x: model(x).sum().detach())
    x = _data(1)[0][0]
    for _ in range(3):
        step(x)
    with gpuad.no_grad():
        for _ in range(3):
            out = step(x)
        np.testing.assert_allclose(out.numpy(), model(x).sum().numpy(), rtol=1e-6)
    assert step.stats == {"recorded": 4, "replayed": 2, "eager": 0}


def test_the_default_dtype_is_followed():
    step = gpuad.compile(lambda x: (x * gpuad.tensor(0.5) + 1).sum(dtype=None).detach())
    x = gpuad.ones(3, dtype=gpuad.float64)
    for _ in range(3):
        assert step(x).dtype == gpuad.float64
    gpuad.set_default_dtype(gpuad.float64)
    try:
        step(x)
        assert step.stats["recorded"] == 3  # recorded again in the new state
    finally:
        gpuad.set_default_dtype(gpuad.float32)


def test_a_value_changed_before_every_call_makes_the_step_eager_with_one_warning():
    """The loop changes a value the step reads at every call: each change records again,
    so after a few the step runs eagerly and says which value it is."""
    state = {"step": 0}

    @gpuad.compile
    def step(x):
        if state["step"] < 0:  # read, not changing what the step computes
            raise ValueError
        return (x * 2).sum().detach()
    x = gpuad.ones(3)
    with pytest.warns(RuntimeWarning, match=r"state\['step'\] changed") as caught:
        for i in range(12):
            state["step"] = i
            assert step(x).item() == 6.0
    assert len([w for w in caught if "gpuad.compile" in str(w.message)]) == 1
    assert step.eager_reason is not None


def test_an_array_made_outside_the_ops_each_call_is_refused_naming_the_op():
    """Equal values are no proof: the replay would keep the first array whatever the step
    computes next (here the same values each call, so no comparison could tell)."""
    model = _model()

    @gpuad.compile
    def step(x):
        mask = gpuad.from_numpy(np.ones((5, 3), np.float32))  # new each call, not traced
        return (model(x) * mask).sum().detach()
    x = _data(1)[0][0]
    with pytest.warns(RuntimeWarning, match="op Mul reads an array of shape"):
        for _ in range(3):
            step(x)
    assert step.stats["replayed"] == 0


class RawScale(Function):
    """``x * K``, whose backward rebuilds K as a raw array (not through the backend)."""

    def forward(self, x):
        return x * x.dtype.type(K)

    def backward(self, gy):
        k = Tensor._make(self.xp.asarray(K, dtype=gy.dtype), self.backend)
        return gy * k


class TracedScale(RawScale):
    """The same with ``backend.constant``: the value is recorded, and guarded."""

    def forward(self, x):
        self.k = K  # a setting: compared between recordings
        return x * x.dtype.type(K)

    def backward(self, gy):
        return gy * Tensor._make(self.backend.constant(K, gy.dtype), self.backend)


def _custom_op_step(op):
    w = gpuad.ones(3, requires_grad=True)

    def step(x):
        w.grad = None
        (op().apply(w) * x).sum().backward()
        return w.grad
    return step


def test_a_custom_op_rebuilding_a_raw_constant_in_backward_is_refused():
    step = gpuad.compile(_custom_op_step(RawScale))
    x = gpuad.tensor([1.0, 2.0, 3.0])
    with pytest.warns(RuntimeWarning, match=r"in the backward of RawScale"):
        for _ in range(3):
            step(x)
    assert step.stats["replayed"] == 0


def test_a_custom_op_constant_made_by_the_backend_follows_the_global():
    global K
    step = gpuad.compile(_custom_op_step(TracedScale))
    x = gpuad.tensor([1.0, 2.0, 3.0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for i in range(6):
                if i == 3:
                    K = -2.0
                np.testing.assert_allclose(step(x).numpy(), K * x.numpy())
    finally:
        K = 3.0
    assert step.stats == {"recorded": 4, "replayed": 2, "eager": 0}


def test_guards_stay_quiet_for_a_plain_training_step():
    """What a training step reads (the model, the optimizer, the loss module) holds from
    call to call: the step replays at every call after the first two."""
    model, data = _model(), _data(6)
    opt = gpuad.optim.Adam(model.parameters(), lr=1e-2)
    sched = gpuad.optim.lr_scheduler.StepLR(opt, step_size=2)
    loss_fn = nn.CrossEntropyLoss()

    @gpuad.compile
    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        sched.step()
        return loss.detach()
    for x, y in data:
        step(x, y)
    assert step.stats == {"recorded": 2, "replayed": 4, "eager": 0}
