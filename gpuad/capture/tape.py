"""``Tape``: what one eager run of a step computed, array by array, in order.

While a step records, ``gpuad.tracing`` forwards every event here. Arrays are named by
identity: a *slot* for each array the step computed (its inputs are the first slots),
and an *outside* reference for any other array it read (a parameter, an optimizer
buffer, a constant made inside the step), which ``program.build`` later sorts into
what changes between calls and what does not, by comparing two recordings.

Events, in the order they ran:

* ``("op", fn, refs, binds, outs, single, scalar, hidden)``: ``fn.forward`` on the
  arrays ``refs``; ``binds`` are the op's own attributes that hold arrays (an index
  array), refreshed before a replay; ``single``: forward returned one array, not a
  tuple; ``scalar``: it returned NumPy scalars; ``hidden``: positions in what it saved
  of arrays that are results too (their slots follow the outputs');
* ``("kernel", fn, args, outs, returns_tuple, writes_in_place, draws_random)``: a raw
  kernel call (``tracing.kernel``, ``tracing.traced``);
* ``("grad", tensor, ref, backend)``: ``tensor.grad`` set to the array ``ref`` (or None);
* ``("call", method, args, kwargs)``: a ``tracing.replayable`` method, called again.

``outs`` is ``(slots, shapes)``: the new slots and their (shape, dtype), compared
between recordings. ``constants`` maps the arrays made by ``Backend.constant`` to the
Python values they hold.
"""
import weakref

from .. import thread_state, tracing
from ..tensor import Tensor

SLOT, OUTSIDE = "slot", "outside"


def is_array(a):
    """A NumPy or CuPy array (without importing CuPy)."""
    t = type(a)
    return t.__name__ == "ndarray" and t.__module__.partition(".")[0] in ("numpy", "cupy")


class Tape:
    """The events of one recorded call; ``problem`` says why it cannot be replayed."""

    def __init__(self, inputs):
        self.events = []
        self.n_slots = 0
        self.slot = {}     # id(array) -> its slot, while that array lives
        self._watch = {}   # slot -> weak reference that forgets the id when it dies
        self.problem = None
        self.paused = 0    # > 0 inside a replayable call: its insides are not recorded
        self.result = None
        self.state_version = tracing.state_version
        self.modules = {}  # id -> (module, its training flag) for each module called
        self.constants = {}  # id(array) -> (value, array) for each Backend.constant
        self.backward_of = None  # the op whose backward runs now (the engine sets it)
        self.owners = []   # per event: the op whose backward ran it, or None
        for t in inputs:
            if id(t._data) in self.slot:  # the same array again: read from its first slot
                self.n_slots += 1
            else:
                self._new_slot(t._data)
        self.n_inputs = self.n_slots

    # --- what tracing reports ----------------------------------------------------------
    def on_apply(self, fn, inputs, outs, raw, to_save):
        if self.paused:
            return
        state = thread_state.current()
        if state.dual_level is not None:
            self.fail("the step runs forward-mode AD (jvp)")
        if state.anomaly:
            self.fail("detect_anomaly() is on; its checks run only in eager mode")
        refs = tuple([self.ref(t._data, t) for t in inputs])
        binds = tuple([(name, self.refs_in(v)) for name, v in vars(fn).items()
                       if holds_array(v)])  # vars: the op's own parameters and data
        single = not isinstance(raw, tuple)
        scalar = (raw is not outs[0]) if single else any(
            r is not o for r, o in zip(raw, outs))
        # arrays forward saved that are neither inputs nor outputs (cross-entropy's
        # logsumexp, dropout's mask): results of the op too, which its backward reads
        known = {id(a) for a in outs} | {id(t._data) for t in inputs}
        hidden = tuple([k for k, a in enumerate(to_save)
                        if a is not None and id(a) not in known])
        outs = tuple(outs) + tuple([to_save[k] for k in hidden])
        self._append(("op", fn, refs, binds, self._outputs(outs), single, scalar, hidden))

    def on_kernel(self, fn, args, out, writes_in_place, draws_random):
        if self.paused:
            return
        outs = () if out is None else out if isinstance(out, tuple) else (out,)
        self._append(("kernel", fn, self.refs_in(args), self._outputs(outs),
                      isinstance(out, tuple), writes_in_place, draws_random))

    def on_constant(self, arr, value):
        if not self.paused:
            self.constants[id(arr)] = (value, arr)  # the entry keeps the id unique

    def on_module(self, module):
        self.modules[id(module)] = (module, module.training)

    def on_grad_set(self, tensor, grad):
        if self.paused:
            return
        ref = None if grad is None else self.ref(grad._data, grad)
        self._append(("grad", tensor, ref, None if grad is None else grad._backend))

    def on_call(self, method, args, kwargs):
        for a in list(args) + list(kwargs.values()):
            if hasattr(a, "__next__"):
                self.fail(f"{method.__qualname__} was called with an iterator, which a "
                          "replay could not call it with again; pass a list")
        self._append(("call", method, args, kwargs))

    def on_host_read(self, tensor, what):
        if not self.paused:
            self.fail(f"the step reads tensor values on the host ({what}), which a replay "
                      "cannot repeat; return the tensor and read it after the call")

    def _append(self, event):
        self.events.append(event)
        self.owners.append(self.backward_of)

    def fail(self, reason):
        if self.problem is None:
            self.problem = reason

    # --- references ----------------------------------------------------------------------
    def ref(self, arr, tensor=None):
        """``(SLOT, i)`` for an array the step computed, else ``(OUTSIDE, tensor, arr)``."""
        s = self.slot.get(id(arr))
        if s is not None:
            return (SLOT, s)
        return (OUTSIDE, tensor, arr)  # the event keeps it alive: its id names only it

    def refs_in(self, value):
        """``value`` with its arrays (in tuples and lists too) replaced by references."""
        if is_array(value):
            return self.ref(value)
        if isinstance(value, (tuple, list)):
            return ("seq", tuple([self.refs_in(v) for v in value]), type(value))
        return ("value", value)

    def _new_slot(self, arr):
        """A slot for ``arr``, named by its id for as long as it lives (not longer: the
        tape does not keep the step's arrays alive, so a recording's memory is eager's)."""
        slot, key = self.n_slots, id(arr)
        self.n_slots += 1
        self.slot[key] = slot

        def forget(_, key=key, slot=slot, names=self.slot):
            if names.get(key) == slot:
                del names[key]
        try:
            self._watch[slot] = weakref.ref(arr, forget)
        except TypeError:  # an array type without weak references: keep it instead
            self._watch[slot] = arr
        return slot

    def _outputs(self, outs):
        return (tuple([self._new_slot(a) for a in outs]),
                tuple([(a.shape, a.dtype) for a in outs]))

    def finish(self, result):
        """Record what the step returned: Tensors (in tuples, lists, dicts) or None."""
        self.result = self._result_ref(result)

    def _result_ref(self, r):
        if r is None:
            return ("none",)
        if isinstance(r, Tensor):
            if r.grad_fn is not None and not r.grad_fn.node.released:
                self.fail("the step returns a tensor whose graph was not run backward; "
                          "call backward() inside the step, or return loss.detach()")
            return ("tensor", self.ref(r._data, r), r._backend)
        if isinstance(r, (tuple, list)):
            return ("seq", type(r), tuple([self._result_ref(v) for v in r]))
        if isinstance(r, dict):
            return ("dict", tuple([(k, self._result_ref(v)) for k, v in r.items()]))
        self.fail(f"the step returns a {type(r).__name__}; a compiled step returns "
                  "Tensors (alone, or in tuples, lists or dicts) or None")
        return ("none",)


def holds_array(v):
    return is_array(v) or isinstance(v, (tuple, list)) and any(map(holds_array, v))


def record(fn, args, kwargs, inputs):
    """Run ``fn(*args, **kwargs)`` eagerly with a tape listening; ``(result, tape)``."""
    tape = Tape(inputs)
    with tracing.recording_into(tape):  # this thread's ops only: other threads' never reach it
        result = fn(*args, **kwargs)
    tape.finish(result)
    return result, tape
