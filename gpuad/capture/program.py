"""``Program``: a recorded step as a flat list of array calls, replayed without autograd.

``build`` compares two recordings of the same step. Where they agree event for event,
every array the step read is sorted into one of: a slot (computed by the step, or one of
its inputs), an external tensor (the same Tensor both times, a parameter: its array is
read at each call), an external array (the same array object both times), or a constant
(made by ``Backend.constant`` both times, holding equal Python values). A different
sequence of ops, other settings or constants is a ``Mismatch`` (record again); a new
array each call that none of these explains (made from NumPy or ``.data`` outside the
ops) is a ``Refusal``: the step runs eagerly, as a replay would keep the first array.

A replay runs each op's ``forward`` (and each recorded kernel) on the slots' arrays,
sets ``.grad`` where backward set it, and calls the replayable methods (the optimizer's
``step``, ``zero_grad``) again: no graph, no Tensors, no engine. A slot is dropped right
after its last use, so memory follows the eager step's.
"""
import functools

from ..device import get_default_device
from ..dtypes import get_default_dtype
from ..tensor import Tensor
from .. import tracing
from .tape import OUTSIDE, SLOT, holds_array


class Mismatch(Exception):
    """Two recordings of a step differ: it does not trace to one program."""


class Refusal(Exception):
    """The step reads something a replay could not follow: it must run eagerly."""


class Program:
    """``run(arrays)`` replays the step on its inputs' arrays and returns its result."""

    def __init__(self, steps, template, n_inputs, refresh, result, result_slots,
                 has_random, host_steps, state_version, written_inputs, modules):
        self.steps = steps          # (run, in_slots, out_slots, slots_to_drop)
        self.template = template    # the slot list before a run: constants filled in
        self.n_inputs = n_inputs
        self.refresh = refresh      # (slot, tensor): external tensors, read at each run
        self.result = result        # slots -> the returned structure of Tensors
        self.result_slots = result_slots
        self.has_random = has_random
        #: step index -> "call" (a replayable method) or "grad" (a .grad assignment):
        #: the steps that run on the host, the rest is device work
        self.host_steps = host_steps
        self.state_version = state_version
        self.written_inputs = written_inputs  # inputs that a recorded kernel writes into
        self.requires_grad = tuple([t._requires_grad for _, t in refresh])
        self.modules = modules      # (module, its training flag when recorded)
        self.defaults = get_default_dtype(), get_default_device()
        self.guards = None          # capture.guards.Guards: the Python values it read

    def stale(self):
        """What changed since the recording that the replay depends on, or None: a hook
        (``tracing.state_version``), which parameters require grad, a module's mode, the
        default dtype or device, a Python value the step read (``guards``)."""
        if tracing.state_version != self.state_version:
            return "a hook was added or removed"
        for (_, t), r in zip(self.refresh, self.requires_grad):  # loops: no generator calls
            if t._requires_grad is not r:
                return "a tensor's requires_grad changed"
        for m, mode in self.modules:
            if m.training is not mode:
                return "a module's train/eval mode changed"
        if (get_default_dtype(), get_default_device()) != self.defaults:
            return "the default dtype or device changed"
        changed = self.guards.changed() if self.guards is not None else None
        return None if changed is None else f"{changed} changed"

    def run(self, inputs):
        s = self.template.copy()
        s[:self.n_inputs] = inputs
        for i, t in self.refresh:
            s[i] = t._data
        self.run_steps(s, self.steps)
        return self.result(s)

    @staticmethod
    def run_steps(s, steps):
        """Run ``steps`` on the slot list ``s``, dropping each slot after its last use."""
        for run, ins, outs, drop in steps:
            r = run(*[s[i] for i in ins])
            if len(outs) == 1:
                s[outs[0]] = r
            elif outs:
                for i, a in zip(outs, r):
                    s[i] = a
            for i in drop:
                s[i] = None


def build(first, second):
    """The Program of ``second`` if it agrees with ``first``, else ``Mismatch``."""
    if not same_state(first, second):
        raise Mismatch("a module's train/eval mode or a hook changed between the calls")
    if len(first.events) != len(second.events) or first.n_inputs != second.n_inputs:
        raise Mismatch(f"it ran {len(first.events)} ops, then {len(second.events)}")
    b = _Builder(second.n_slots, _tensors_read(second), first.constants, second.constants)
    raw = [b.event(e1, e2, owner)
           for e1, e2, owner in zip(first.events, second.events, second.owners)]
    result = b.result_of(first.result, second.result)
    keep = set(b.fixed) | set(b.result_slots)
    last = {}
    for k, (_, ins, outs) in enumerate(raw):
        for i in ins + outs:
            last[i] = k
    drops = [[] for _ in raw]
    for i, k in last.items():
        if i not in keep and i >= second.n_inputs:
            drops[k].append(i)
    steps = tuple([(run, ins, outs, tuple(drop)) for (run, ins, outs), drop in zip(raw, drops)])
    host = {k: e[0] for k, e in enumerate(second.events) if e[0] in ("call", "grad")}
    return Program(steps, b.template, second.n_inputs, tuple(b.refresh), result,
                   tuple(b.result_slots), b.has_random, host, second.state_version,
                   tuple(sorted(i for i in b.written if i < second.n_inputs)),
                   tuple(second.modules.values()))


def same_state(a, b):
    """Whether two recordings ran in the same state: no hook added or removed between
    them, the same modules called, each in the same train/eval mode."""
    return a.state_version == b.state_version and a.modules.keys() == b.modules.keys() \
        and all(a.modules[k][1] == m[1] for k, m in b.modules.items())


def _tensors_read(tape):
    """id(array) -> the tensor the step read it from, for arrays outside the step: a raw
    kernel on such an array (an in-place update of a parameter) follows the tensor."""
    return {id(r[2]): r[1] for e in tape.events if e[0] == "op"
            for r in e[2] if r[0] == OUTSIDE and r[1] is not None}


class _Builder:
    def __init__(self, n_slots, tensors, constants1, constants2):
        self.tensors = tensors
        self.constants = constants1, constants2
        self.template = [None] * n_slots
        self.refresh = []      # (slot, tensor)
        self.fixed = {}        # slot -> what fills it (external arrays and constants)
        self.outside = {}      # id(tensor or array) -> its slot
        self.result_slots = []
        self.has_random = False
        self.written = set()   # slots that kernels marked ``writes_in_place`` write into
        self.by_kind = {"op": self.op, "kernel": self.kernel, "grad": self.grad,
                        "call": self.call}

    def event(self, e1, e2, owner):
        kind = e2[0]
        if e1[0] != kind:
            raise Mismatch(f"a {e1[0]} event became a {kind} event")
        try:
            return self.by_kind[kind](e1, e2)
        except Refusal as e:
            where = "" if owner is None else f" (in the backward of {owner.name})"
            raise Refusal(f"{_what(e2)}{where} {e}") from None

    # --- one method per kind of event: (run, in_slots, out_slots) -------------------------
    def op(self, e1, e2):
        _, fn1, refs1, binds1, outs1, _, _, _ = e1
        _, fn, refs, binds, outs, single, scalar, hidden = e2
        if type(fn1) is not type(fn) or len(refs1) != len(refs) or outs1[1] != outs[1]:
            raise Mismatch(f"op {fn1.name} became {fn.name} (or its shapes changed)")
        settings1, settings = _settings(fn1), _settings(fn)  # an exponent, an int index
        if settings1.keys() != settings.keys() or not all(
                _same(settings1[k], v) for k, v in settings.items()):
            raise Mismatch(f"op {fn.name}'s settings changed from {settings1} to {settings}")
        ins = [self.slot_of(r1, r) for r1, r in zip(refs1, refs)]
        bound = []
        for (name1, t1), (name, t) in zip(binds1, binds):
            tpl = self.template_of(t1, t)
            if name1 != name:
                raise Mismatch(f"op {fn.name} holds different arrays")
            if _slots_in(tpl):
                bound.append((name, tpl))
        self.has_random = self.has_random or fn.draws_random
        fn = fn.for_replay()
        run = fn.forward
        if bound:
            run = _with_attributes(fn, tuple(bound), len(ins))
            ins += [i for _, tpl in bound for i in _slots_in(tpl)]
        if scalar:
            run = _as_arrays(run, (fn.target_backend or fn.backend).xp, single)
        if hidden:  # a replay keeps of what forward saves only what is a result too
            run = _with_saved(fn, run, hidden, single)
        elif not single and len(outs[0]) == 1:
            run = _first(run)
        if fn.backend.device_scope is not None:  # in its device, as Function.apply runs it
            run = functools.partial(_in_device, fn.backend.device_scope, run)
        return run, tuple(ins), outs[0]

    def kernel(self, e1, e2):
        _, fn1, args1, outs1 = e1[:4]
        _, fn, args, outs, returns_tuple, writes_in_place, draws_random = e2
        if fn1 != fn or outs1[1] != outs[1]:
            raise Mismatch(f"kernel {getattr(fn1, '__name__', fn1)} became "
                           f"{getattr(fn, '__name__', fn)} (or its shapes changed)")
        tpl = self.template_of(args1, args)
        self.has_random = self.has_random or draws_random
        if writes_in_place:
            self.written.update(_slots_in(tpl))
        run = functools.partial(_call_with, fn, tpl[1])
        if returns_tuple and len(outs[0]) == 1:
            run = _first(run)
        return run, tuple(_slots_in(tpl)), outs[0]

    def grad(self, e1, e2):
        _, t1, ref1, _ = e1
        _, t, ref, backend = e2
        if t1 is not t or (ref1 is None) != (ref is None):
            raise Mismatch("backward set the .grad of other tensors")
        if ref is None:
            return functools.partial(_set_grad, t, None), (), ()
        return functools.partial(_set_grad, t, backend), (self.slot_of(ref1, ref),), ()

    def call(self, e1, e2):
        _, m1, args1, kwargs1 = e1
        _, m, args, kwargs = e2
        if m1 is not m or len(args1) != len(args) or kwargs1.keys() != kwargs.keys() or \
                not all(map(_same, args1 + tuple(kwargs1.values()),
                            args + tuple(kwargs.values()))):
            raise Mismatch(f"{m.__qualname__} was called with other arguments")
        return functools.partial(m, *args, **kwargs), (), ()

    # --- references ------------------------------------------------------------------------
    def slot_of(self, r1, r):
        """The slot holding what ``r`` refers to (refs of the first and second recording)."""
        if r1[0] != r[0]:
            raise Mismatch("an op read a computed array one time and an outside one the next")
        if r[0] == SLOT:
            if r1[1] != r[1]:
                raise Mismatch("an op read a different computed array")
            return r[1]
        (_, t1, a1), (_, t, a) = r1, r
        if t is None and a1 is a:       # a raw array: follow the tensor it belongs to
            t1 = t = self.tensors.get(id(a))
        if t is not None and t1 is t:   # the same Tensor: a parameter, a buffer
            return self._fixed(id(t), t, external=True)
        if a1 is a:                     # the same array object
            return self._fixed(id(a), a)
        c1, c = self.constants[0].get(id(a1)), self.constants[1].get(id(a))
        if c1 is not None and c is not None:  # Backend.constant, both times
            if not _same(c1[0], c[0]) or a1.dtype != a.dtype:
                raise Mismatch(f"a constant changed from {c1[0]!r} to {c[0]!r}")
            return self._fixed(id(a), a)
        raise Refusal(
            f"reads an array of shape {a.shape} ({a.dtype}) made outside gpuad's ops, a "
            "new one at each call (from NumPy, from .data, or made by an op without "
            "backend.constant); a replay would keep the first one's values. Pass it to the "
            "step as a tensor, compute it with gpuad ops, or make it in the op with "
            "self.backend.constant(value, dtype)")

    def _fixed(self, key, what, external=False):
        slot = self.outside.get(key)
        if slot is None:
            slot = self.outside[key] = len(self.template)
            if external:
                self.template.append(None)
                self.refresh.append((slot, what))
            else:
                self.template.append(what)
            self.fixed[slot] = what
        return slot

    def template_of(self, t1, t):
        """Refs (possibly in tuples) as a template: ``("a", slot)``, ``("v", value)``,
        ``("s", items, type)``."""
        if t[0] == "value":
            if t1[0] != "value" or not _same(t1[1], t[1]):
                raise Mismatch(f"a kernel argument changed from {t1[1]!r} to {t[1]!r}")
            return ("v", t[1])
        if t[0] == "seq":
            if t1[0] != "seq" or len(t1[1]) != len(t[1]):
                raise Mismatch("a kernel argument changed its length")
            return ("s", tuple(map(self.template_of, t1[1], t[1])), t[2])
        return ("a", self.slot_of(t1, t))

    def result_of(self, r1, r):
        kind = r[0]
        if r1[0] != kind:
            raise Mismatch("the step returned something else")
        if kind == "none":
            return _none
        if kind == "tensor":
            slot, backend = self.slot_of(r1[1], r[1]), r[2]
            self.result_slots.append(slot)
            return functools.partial(_result_tensor, slot, backend)
        if kind == "seq":
            parts = tuple(map(self.result_of, r1[2], r[2]))
            return functools.partial(_result_seq, r[1], parts)
        keys = tuple(k for k, _ in r[1])
        if keys != tuple(k for k, _ in r1[1]):
            raise Mismatch("the step returned a dict with other keys")
        parts = tuple(self.result_of(v1, v) for (_, v1), (_, v) in zip(r1[1], r[1]))
        return functools.partial(_result_dict, keys, parts)


def _same(a, b):
    """Equal plain values (numbers, strings, dtypes, slices, tuples of them), or the same
    object."""
    if a is b:
        return True
    if type(a) is not type(b) or type(a).__name__ == "ndarray" or isinstance(a, Tensor):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, slice):
        return a == b
    try:
        return bool(a == b) and hash(a) == hash(b)
    except TypeError:  # unhashable: only the very same object counts
        return False


def _settings(fn):
    """An op's own attributes (``vars``: its parameters and data) that hold no arrays:
    what its forward depends on besides its inputs (arrays held by an op are compared as
    references)."""
    return {k: v for k, v in vars(fn).items() if not holds_array(v)}


def _slots_in(tpl):
    if tpl[0] == "a":
        return [tpl[1]]
    if tpl[0] == "s":
        return [i for item in tpl[1] for i in _slots_in(item)]
    return []


def _fill(tpl, arrays):
    kind = tpl[0]
    if kind == "a":
        return next(arrays)
    if kind == "v":
        return tpl[1]
    return tpl[2]([_fill(t, arrays) for t in tpl[1]])


def _call_with(fn, tpl_items, *arrays):
    it = iter(arrays)
    return fn(*[_fill(t, it) for t in tpl_items])


def _what(event):
    """The event's op or function, for messages."""
    kind, fn = event[0], event[1]
    if kind == "op":
        return f"op {fn.name}"
    if kind == "kernel":
        return f"kernel {getattr(fn, '__qualname__', fn)}"
    return "a .grad assignment" if kind == "grad" else f"the call of {fn.__qualname__}"


def _with_attributes(fn, bound, n_inputs):
    forward = fn.forward

    def run(*arrays):
        it = iter(arrays[n_inputs:])
        for name, tpl in bound:
            setattr(fn, name, _fill(tpl, it))
        return forward(*arrays[:n_inputs])
    return run


def _as_arrays(run, xp, single):
    def converted(*arrays):
        out = run(*arrays)
        return xp.asarray(out) if single else tuple([xp.asarray(a) for a in out])
    return converted


def _with_saved(op, run, hidden, single):
    """``run``'s results followed by the arrays at ``hidden`` in what forward saved."""
    def run_and_saved(*arrays):
        out, saved = op.collect_saved(run, *arrays)
        return ((out,) if single else tuple(out)) + tuple([saved[k] for k in hidden])
    return run_and_saved


def _in_device(scope, run, *arrays):
    with scope:
        return run(*arrays)


def _first(run):
    return lambda *arrays: run(*arrays)[0]


def _set_grad(t, backend, g=None):
    t.grad = None if backend is None else Tensor._make(g, backend)


def _none(slots):
    return None


def _result_tensor(slot, backend, slots):
    return Tensor._make(slots[slot], backend)


def _result_seq(kind, parts, slots):
    return kind([p(slots) for p in parts])


def _result_dict(keys, parts, slots):
    return {k: p(slots) for k, p in zip(keys, parts)}
