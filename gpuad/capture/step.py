"""``gpuad.compile``: a training step recorded once, then replayed.

The first two calls with inputs of one signature (shapes, dtypes, devices and the
non-tensor arguments) run eagerly and are recorded; when the two recordings agree, later
calls replay them: on CPU as a flat list of array calls (``program``), on CUDA as that
list captured in CUDA graphs (``cuda_graph``). A new signature records again (a small
cache keeps the latest few). A step that cannot be replayed runs eagerly from then on,
after one warning that says why.
"""
import collections
import functools
import threading
import warnings

from .. import thread_state
from ..tensor import Tensor
from .cuda_graph import CaptureError, GraphedProgram
from .guards import collect
from .program import Mismatch, Refusal, build, same_state
from .tape import record

#: Signatures whose programs are kept; the least recently used goes first.
CACHE_SIZE = 8
#: Recordings that may disagree with the one before before a signature runs eagerly.
MAX_RECORDINGS = 4
#: Calls in a row that may find their program stale (a value the step reads changed)
#: before the step runs eagerly: each one records it again.
MAX_STALE = 3


def compile(fn=None, *, cuda_graphs=True):
    """Turn ``fn(*args) -> loss`` (forward, backward and optimizer step) into a step that
    replays its recorded work; usable as ``@gpuad.compile`` or ``gpuad.compile(fn)``.

    What a replay repeats: every gpuad op and kernel the step ran, the ``.grad`` that
    backward set, and the calls of ``optimizer.step()``, ``zero_grad()`` and
    ``scheduler.step()``. Other Python side effects of ``fn`` (appending to a list,
    printing) happen during the recorded calls only, as with CUDA graphs. Python values
    the step reads (a loss weight in a dict, a module attribute) are guarded: when one
    changes, the step records again. The result is the returned Tensors, detached.
    ``cuda_graphs=False`` replays CUDA steps without capturing graphs.

    >>> @gpuad.compile
    ... def train_step(x, y):
    ...     opt.zero_grad()
    ...     loss = gpuad.nn.functional.cross_entropy(model(x), y)
    ...     loss.backward()
    ...     opt.step()
    ...     return loss.detach()
    >>> for x, y in loader:
    ...     loss = train_step(x, y)
    """
    if fn is None:
        return functools.partial(compile, cuda_graphs=cuda_graphs)
    if not callable(fn):
        raise TypeError(f"gpuad.compile takes a function, got {type(fn).__name__}")
    return CompiledStep(fn, cuda_graphs)


class _Entry:
    """What is known about one signature: the last recording, or the program."""

    __slots__ = ("tape", "program", "recordings", "stale")

    def __init__(self, stale=0):
        self.tape, self.program, self.recordings = None, None, 0
        self.stale = stale  # calls in a row that found the program stale


class CompiledStep:
    """The callable ``gpuad.compile`` returns; ``stats`` counts how calls ran. Called
    from several threads, it runs one call at a time (a recording and a CUDA graph's
    static buffers belong to one call)."""

    def __init__(self, fn, cuda_graphs=True):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.cuda_graphs = cuda_graphs
        self.cache = collections.OrderedDict()
        self.eager_reason = None  # set once the step cannot be replayed: why
        self.stats = {"recorded": 0, "replayed": 0, "eager": 0}
        self._lock = threading.RLock()  # re-entrant: the step may call itself

    def __call__(self, *args, **kwargs):
        with self._lock:
            return self._call(args, kwargs)

    def _call(self, args, kwargs):
        key, inputs = None, None
        modes = thread_state.current()
        # inside a recording, under detect_anomaly or in a jvp, the call runs eagerly: a
        # replay would skip the checks and the tangents
        if self.eager_reason is None and modes.tape is None and not modes.anomaly and \
                modes.dual_level is None:
            try:
                key, inputs = _signature(args, kwargs, modes.grad_enabled)
            except TypeError:
                self._give_up("an argument is neither a Tensor nor a hashable value (a "
                              "number, a string): compiled steps are keyed by their arguments")
        if key is None:
            self.stats["eager"] += 1
            return self.fn(*args, **kwargs)
        entry = self.cache.get(key)
        if entry is None:
            entry = self.cache[key] = _Entry()
            if len(self.cache) > CACHE_SIZE:
                self.cache.popitem(last=False)
        self.cache.move_to_end(key)
        stale = entry.program.stale() if entry.program is not None else None
        if stale is not None:  # record again, in the state of today
            entry = self.cache[key] = _Entry(entry.stale + 1)
            if entry.stale >= MAX_STALE:
                self._give_up(f"{stale} before each of the last {entry.stale} calls, and "
                              "each change records the step again; pass such a value to "
                              "the step as an argument (each value then records once)")
                self.stats["eager"] += 1
                return self.fn(*args, **kwargs)
        if entry.program is not None:
            entry.stale = 0
            self.stats["replayed"] += 1
            arrays = [t._data for t in inputs]
            try:
                return entry.program.run(arrays)
            except CaptureError as e:  # nothing ran: replay the same program, ungraphed
                entry.program = entry.program.program
                warnings.warn(f"gpuad.compile({self.__name__}): the step could not be "
                              f"captured in a CUDA graph ({e}); it is replayed without "
                              "graphs", RuntimeWarning, stacklevel=3)
                return entry.program.run(arrays)
        return self._record(entry, args, kwargs, inputs)

    def _record(self, entry, args, kwargs, inputs):
        result, tape = record(self.fn, args, kwargs, inputs)
        self.stats["recorded"] += 1
        if tape.problem is not None:
            self._give_up(tape.problem)
            return result
        entry.recordings += 1
        if entry.tape is not None and not same_state(entry.tape, tape):
            entry.tape, entry.recordings = None, 1  # the model changed mode: start over
        if entry.tape is not None:
            try:
                program = build(entry.tape, tape)
                program.guards = collect(self.fn, [m for m, _ in tape.modules.values()])
                entry.program = self._program(program, inputs)
                entry.tape = None
                return result
            except Refusal as e:
                self._give_up(str(e))
                return result
            except Mismatch as e:
                if entry.recordings >= MAX_RECORDINGS:
                    self._give_up(f"{entry.recordings} recordings in a row disagreed: {e}")
                    return result
        entry.tape = tape
        return result

    def _program(self, program, inputs):
        device = _device_of(program)
        if device is not None and device.type == "cuda" and self.cuda_graphs:
            why = None
            if program.has_random:
                why = "draws random numbers (dropout), which a CUDA graph would repeat " \
                    "identically"
            elif any(t.device != device for t in inputs):
                # a graph would copy the host data of its capture, not this call's
                why = f"is given tensors that are not on {device}; move them there before " \
                    "the call to replay it in CUDA graphs"
            if why is not None:
                warnings.warn(f"gpuad.compile({self.__name__}): the step {why}; it is "
                              "replayed without graphs", RuntimeWarning, stacklevel=5)
                return program
            return GraphedProgram(program, device)
        return program

    def _give_up(self, reason):
        self.eager_reason = reason
        self.cache.clear()
        warnings.warn(f"gpuad.compile({self.__name__}) runs eagerly from now on: {reason}",
                      RuntimeWarning, stacklevel=5)

    def __repr__(self):
        return f"<compiled step {self.__name__}: {self.stats}>"


def _signature(args, kwargs, grad_enabled):
    """``(key, input tensors)``; TypeError for an argument that can be neither an input
    nor part of the key. Grad mode is part of the key: under no_grad a step records no
    graph."""
    inputs, first = [], {}

    def walk(v):
        if isinstance(v, Tensor):
            inputs.append(v)
            # which inputs share an array is part of the program: f(a, a) is not f(a, b)
            same = first.setdefault(id(v._data), len(inputs) - 1)
            return ("T", v.shape, v.dtype.str, str(v.device), v.requires_grad, same)
        if isinstance(v, (tuple, list)):
            return (type(v).__name__,) + tuple(map(walk, v))
        if isinstance(v, dict):
            return ("dict",) + tuple((k, walk(x)) for k, x in v.items())
        hash(v)
        return ("V", type(v).__name__, v)

    parts = [walk(a) for a in args] + [(k, walk(v)) for k, v in sorted(kwargs.items())]
    return (grad_enabled,) + tuple(parts), inputs


def _device_of(program):
    """The device of every tensor the program reads besides its inputs (parameters,
    buffers), or None: none, or on two devices (a move between them; no graph)."""
    devices = {t.device for _, t in program.refresh}
    return devices.pop() if len(devices) == 1 else None
