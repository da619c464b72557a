"""Threads: grad mode, jvp, anomaly mode, the default device, compile recordings and
saved-tensor reports are each thread's own (as PyTorch's grad mode is); two threads
training at once give what each gives alone; what stays shared is safe to share."""
import sys
import threading

import numpy as np
import pytest

import gpuad
from gpuad import nn, thread_state
from gpuad.capture.tape import record
from gpuad.memory.pool import CachingAllocator, PrivatePool
from gpuad.nn import functional as F
from helpers import train_step

STEPS = 300
WAIT = 30  # seconds a test waits for another thread before it fails


@pytest.fixture(autouse=True)
def _switch_often():
    """Threads take turns every 10 us, so a race shows up within a few steps."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


class Worker(threading.Thread):
    """``fn()`` in a thread; ``finish()`` joins it and raises what it raised."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.result, self.error = fn, None, None
        self.start()

    def run(self):
        try:
            self.result = self.fn()
        except BaseException as e:  # noqa: B902 (handed to the main thread)
            self.error = e

    def finish(self):
        self.join(WAIT)
        assert not self.is_alive(), "the thread did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def _setup(seed):
    """A model, its optimizer and a fixed batch, all from ``seed`` (built before any thread
    starts: the generator is shared, so drawing in threads would interleave)."""
    gpuad.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 12), nn.ReLU(),
                          nn.Linear(12, 3))
    opt = gpuad.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(seed)
    x = gpuad.tensor(rng.standard_normal((16, 6)).astype(np.float32))
    y = gpuad.tensor(rng.integers(0, 3, 16))
    return model, opt, x, y


def _trainer(model, opt, x, y, compiled, start=None):
    step = train_step(model, opt)
    step = gpuad.compile(step) if compiled else step

    def train():
        if start is not None:
            start.wait(WAIT)
        for i in range(STEPS):
            step(x, y)
            if i % 10 == 0:
                with gpuad.no_grad():  # an evaluation: must not stop the other's recording
                    model(x)
        return step
    return train


def _weights(model):
    return [p.detach().numpy().copy() for p in model.parameters()]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_two_threads_training_give_the_weights_each_gives_alone(compiled):
    alone = []
    for seed in (1, 2):
        model, opt, x, y = _setup(seed)
        _trainer(model, opt, x, y, compiled)()
        alone.append(_weights(model))
    start = threading.Barrier(2)
    setups = [_setup(seed) for seed in (1, 2)]
    workers = [Worker(_trainer(*s, compiled, start)) for s in setups]
    steps = [w.finish() for w in workers]
    for (model, *_), expected in zip(setups, alone):
        for got, want in zip(_weights(model), expected):
            np.testing.assert_array_equal(got, want)  # bitwise, as alone
    if compiled:
        assert all(s.stats == {"recorded": 2, "replayed": STEPS - 2, "eager": 0}
                   for s in steps)


def test_no_grad_in_one_thread_leaves_another_recording():
    inside, leave = threading.Event(), threading.Event()

    def hold_no_grad():
        with gpuad.no_grad():
            inside.set()
            leave.wait(WAIT)
            return gpuad.is_grad_enabled()
    holder = Worker(hold_no_grad)
    assert inside.wait(WAIT)
    x = gpuad.ones(3, requires_grad=True)
    y = (x * 2).sum()
    assert gpuad.is_grad_enabled() and y.requires_grad and y.grad_fn is not None
    leave.set()
    assert holder.finish() is False  # its own no_grad held throughout


def test_a_new_thread_starts_with_grad_on_even_under_no_grad():
    with gpuad.no_grad():
        assert Worker(gpuad.is_grad_enabled).finish() is True  # as in PyTorch


def test_a_backward_in_one_thread_leaves_another_recording():
    """The engine runs a backward with grad mode off in its own thread: another thread
    in the middle of a forward keeps recording its graph and its compiled step."""
    in_backward, leave = threading.Event(), threading.Event()

    def backward_that_pauses():
        a = gpuad.ones(4, requires_grad=True)
        h = a * 3
        h.register_hook(lambda g: (in_backward.set(), leave.wait(WAIT), None)[-1])
        (h * h).sum().backward()
        return a.grad
    worker = Worker(backward_that_pauses)
    assert in_backward.wait(WAIT)
    x = gpuad.ones(3, requires_grad=True)
    y = (x * x).sum()
    assert y.grad_fn is not None
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2, 2, 2])
    leave.set()
    np.testing.assert_array_equal(worker.finish().numpy(), [18] * 4)


def _ops_elsewhere():
    """Ops of every kind the tape listens to, on tensors of this thread."""
    a = gpuad.randn(5, requires_grad=True)
    model = nn.Linear(5, 2)
    loss = (model(a.exp()) ** 2).sum()
    loss.backward()
    with gpuad.no_grad():
        a.add_(1)
        a[0] = 2.0
    a.grad = None
    gpuad.zeros(3) + gpuad.arange(3)


def _recorded_step(model, x, other_thread=None):
    """One recording of a small training step; ``other_thread`` runs in the middle."""
    def step(x):
        h = model(x).relu()
        if other_thread is not None:
            Worker(other_thread).finish()  # its ops run while this thread records
        loss = (h * h).mean()
        loss.backward()
        return loss.detach()
    model.zero_grad()
    _, tape = record(step, (x,), {}, [x])
    return tape


def _events(tape):
    return [(e[0], type(e[1]).__name__ if e[0] == "op" else None) for e in tape.events]


def test_a_recording_hears_only_its_own_threads_ops():
    gpuad.manual_seed(0)
    model, x = nn.Linear(4, 3), gpuad.randn(2, 4)
    alone = _recorded_step(model, x)
    crossed = _recorded_step(model, x, _ops_elsewhere)
    assert crossed.problem is None and alone.problem is None
    assert _events(crossed) == _events(alone)
    assert list(crossed.modules) == list(alone.modules)  # the other thread's Linear: not here


def test_a_compiled_step_replays_right_while_another_thread_runs_ops():
    model, opt, x, y = _setup(3)
    eager_model, eager_opt, _, _ = _setup(3)

    def make(m, o, noise):
        def step(x, y):
            o.zero_grad()
            loss = F.cross_entropy(m(x), y)
            if noise:
                Worker(_ops_elsewhere).finish()
            loss.backward()
            o.step()
            return loss.detach()
        return step
    compiled = gpuad.compile(make(model, opt, True))
    eager = make(eager_model, eager_opt, False)
    for _ in range(4):
        np.testing.assert_array_equal(compiled(x, y).numpy(), eager(x, y).numpy())
    assert compiled.stats == {"recorded": 2, "replayed": 2, "eager": 0}
    for got, want in zip(_weights(model), _weights(eager_model)):
        np.testing.assert_array_equal(got, want)


def test_one_compiled_step_called_from_two_threads_runs_one_call_at_a_time():
    """Each call is the same update of the same weights: two threads making 40 calls
    each end where 80 calls in a row end."""
    results = []
    for threads in (1, 2):
        model, opt, x, y = _setup(4)
        step = gpuad.compile(train_step(model, opt))

        def calls(n):
            return lambda: [step(x, y) for _ in range(n)]
        for w in [Worker(calls(80 // threads)) for _ in range(threads)]:
            w.finish()
        results.append(_weights(model))
    for got, want in zip(*results):
        np.testing.assert_array_equal(got, want)


def _hold_in(mode_fn):
    """A thread that enters ``mode_fn()`` and stays inside until released."""
    inside, leave = threading.Event(), threading.Event()

    def hold():
        with mode_fn():
            inside.set()
            leave.wait(WAIT)
    worker = Worker(hold)
    assert inside.wait(WAIT)
    return worker, leave


def test_jvp_in_one_thread_does_not_reach_another():
    opened, leave = threading.Event(), threading.Event()

    def slow_cube(x):
        opened.set()
        leave.wait(WAIT)
        return x ** 3
    worker = Worker(lambda: gpuad.autograd.jvp(slow_cube, (gpuad.tensor(2.),),
                                               (gpuad.tensor(1.),)))
    assert opened.wait(WAIT)
    # this thread has no open level: its own jvp is not a nested one
    _, t = gpuad.autograd.jvp(lambda x: x * x, (gpuad.tensor(3.),), (gpuad.tensor(1.),))
    assert t.item() == 6.0
    leave.set()
    out, tangent = worker.finish()
    assert (out.item(), tangent.item()) == (8.0, 12.0)


def test_anomaly_mode_in_one_thread_does_not_reach_another():
    worker, leave = _hold_in(gpuad.autograd.detect_anomaly)
    try:
        assert not gpuad.autograd.is_anomaly_enabled()
        x = gpuad.tensor([-1.0], requires_grad=True)
        with np.errstate(invalid="ignore"):
            x.log().sum().backward()  # NaN, unchecked here: no error
        model, inp = nn.Linear(3, 2), gpuad.randn(2, 3)
        _, tape = record(lambda t: model(t).sum().detach(), (inp,), {}, [inp])
        assert tape.problem is None  # another thread's anomaly mode does not stop it
    finally:
        leave.set()
        worker.finish()


def test_the_default_device_is_per_thread():
    """As ``torch.set_default_device``: a thread's choice is its own, a new thread starts
    on the CPU (the device object is set directly: this machine may have no GPU)."""
    state = thread_state.current()
    state.device = gpuad.device("cuda")
    try:
        assert gpuad.get_default_device() == "cuda"
        assert Worker(gpuad.get_default_device).finish() == "cpu"
    finally:
        state.device = None
    assert gpuad.get_default_device() == "cpu"


@pytest.mark.skipif(not gpuad.cuda.is_available(), reason="needs a CUDA GPU")
def test_set_default_device_to_cuda_stays_in_its_thread():
    def on_cuda():
        gpuad.set_default_device("cuda")
        return gpuad.zeros(2).device
    assert Worker(on_cuda).finish() == "cuda"
    assert gpuad.zeros(2).device == "cpu"


def test_the_default_dtype_is_process_wide_as_in_pytorch():
    gpuad.set_default_dtype(gpuad.float64)
    try:
        assert Worker(lambda: gpuad.tensor(1.5).dtype).finish() == gpuad.float64
    finally:
        gpuad.set_default_dtype(gpuad.float32)


def test_threads_asking_first_for_a_device_share_one_backend(monkeypatch):
    from gpuad import backends
    from gpuad.backends import cpu
    made = []
    slow_init = cpu.CPUBackend.__init__

    def init(self, dev):
        made.append(self)
        threading.Event().wait(0.01)  # a slow first creation: every thread arrives
        slow_init(self, dev)
    monkeypatch.setattr(backends, "_backends", {})
    monkeypatch.setattr(cpu.CPUBackend, "__init__", init)
    start = threading.Barrier(6)

    def ask():
        start.wait(WAIT)
        return backends.backend_for("cpu")
    got = [w.finish() for w in [Worker(ask) for _ in range(6)]]
    assert len(made) == 1 and all(b is made[0] for b in got)


def test_a_saved_tensors_report_lists_its_own_threads_nodes_only():
    started, leave = threading.Event(), threading.Event()

    def record_elsewhere():
        started.wait(WAIT)
        a = gpuad.ones(7, requires_grad=True)
        (a.exp() * a).sum()
        leave.set()
    worker = Worker(record_elsewhere)
    x = gpuad.ones(3, requires_grad=True)
    with gpuad.memory.saved_tensors_report() as report:
        started.set()
        assert leave.wait(WAIT)
        x.exp()
    worker.finish()
    assert [(r.op, r.shape) for r in report.rows] == [("Exp", (3,))]


def test_a_private_pool_section_serves_only_the_thread_that_opened_it():
    pool = CachingAllocator("fake", bytearray)
    private = PrivatePool()
    inside, leave = threading.Event(), threading.Event()

    def capture():
        with pool.private(private):
            block = pool.malloc(1000)
            inside.set()
            leave.wait(WAIT)
        return block
    worker = Worker(capture)
    assert inside.wait(WAIT)
    other = pool.malloc(1000)  # another thread, while the section is open
    leave.set()
    assert worker.finish().owner is private and other.owner is None
