"""``Function``: one op of the graph, its forward and backward side by side.

An op subclasses Function and writes two methods:

* ``forward(self, *arrays)`` takes and returns NumPy/CuPy arrays. It reaches the array
  library only through ``self.xp`` (and ``self.backend`` for fused kernels), and calls
  ``self.save_for_backward(...)`` with exactly the arrays its backward needs.
* ``backward(self, *grads)`` takes and returns Tensors, one gradient per input (``None``
  where there is none), built from Tensor ops so that the backward pass can itself be
  differentiated (``create_graph=True``).
* optionally ``fused_backward(self, *grads)``: the same gradients through fused kernels,
  used when no graph of the backward is wanted.

An op instance holds only its own parameters and data: ``vars(op)`` is what its
``__init__`` and ``forward`` set on ``self`` (what ``gpuad.compile`` compares between
two recordings). What it runs with (``xp``, ``backend``, ``needs_input_grad``) sits in
slots, and what the engine keeps of it in its ``node`` (``node.py``). The engine never
needs to know about an op: adding one touches nothing else.
"""
import copy

from ..errors import cpu_scalars_moved
from ..tensor import Tensor
from .. import tracing
from ..thread_state import local as _tls
from . import anomaly, forward_ad
from .node import Node, pack

#: Callables ``observer(op)`` told of every op, in any thread, whose node saved arrays
#: or that is a view: ``autograd.saved`` subscribes one at import (a weak reference per
#: such op, about 0.5 us, for ``gpuad.memory.stats()['saved_activation_bytes']``). A
#: report adds its own to its thread's ``ThreadState.saved_observers`` while it runs,
#: told of every op that records a node there.
saved_observers = []


class Function:
    """Base class of every op; an instance is one op of the graph (a tensor's
    ``grad_fn``), its bookkeeping in ``node``.

    >>> class Square(Function):
    ...     def forward(self, x):
    ...         self.save_for_backward(x)
    ...         return x * x
    ...     def backward(self, gy):
    ...         x, = self.saved_tensors
    ...         return 2 * x * gy
    >>> y = Square().apply(x)
    """

    __slots__ = ("xp", "backend", "needs_input_grad", "_node", "__dict__", "__weakref__")

    #: False for ops whose outputs never carry gradients (comparisons, argmax).
    differentiable = True
    #: True for ops whose output is a view of input 0: they share its version counter.
    is_view = False
    #: The backend of the outputs, when it is not the inputs' (moves between devices).
    target_backend = None
    #: True for ops whose forward draws random numbers (a CUDA graph would freeze them).
    draws_random = False

    def forward(self, *arrays):
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def backward(self, *grads):
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    #: Optional ``fused_backward(self, *grads)``: the same gradients as ``backward``,
    #: computed by fused kernels (through ``self.call_kernel``) and not differentiable
    #: again. The engine calls it when the backward needs no graph of its own, and
    #: ``backward`` under ``create_graph=True`` or an open ``jvp``.
    fused_backward = None

    def jvp(self, *tangents):
        """Forward mode: the outputs' tangents from the inputs' (None means zero).

        Runs right after forward, with ``saved_tensors`` available."""
        raise NotImplementedError(f"{self.name} has no forward-mode (jvp) rule yet")

    # --- what forward and backward use ---------------------------------------------
    def save_for_backward(self, *arrays):
        """Keep these arrays (inputs, outputs or others) for backward."""
        node = self._node
        if node is not None:  # None: nothing will read them (no graph, no jvp)
            node.to_save = arrays

    @property
    def saved_tensors(self):
        """The saved arrays as Tensors: inputs and outputs as graph tensors, others constant."""
        node = self._node
        if node is None or node.saved is None:
            raise RuntimeError(
                f"{self.name}: its saved tensors were freed by an earlier backward; "
                "pass retain_graph=True to the first backward() to backward twice")
        return node.unpack(self)

    def call_kernel(self, kernel, *args):
        """``kernel(*args)`` with Tensors passed as their arrays, its array results as
        Tensors: how a backward calls a fused backend kernel (``gpuad.compile`` records
        it, where a raw call would be invisible to a replay)."""
        out = tracing.kernel(kernel, *[a._data if isinstance(a, Tensor) else a for a in args])
        if isinstance(out, tuple):
            return tuple([Tensor._make(a, self.backend) for a in out])
        return Tensor._make(out, self.backend)

    def zero_tangent(self, i):
        """Zeros shaped like input ``i``: the tangent (or gradient) of an input that has
        none."""
        shape, dtype = self._node.input_meta[i]
        return Tensor._make(self.backend.full(shape, 0, dtype), self.backend)

    @property
    def name(self):
        return type(self).__name__

    @property
    def node(self):
        """The engine's bookkeeping of this op (a ``Node``: edges, saved arrays, hooks),
        or None when it recorded nothing."""
        return self._node

    def saved_arrays(self):
        """The arrays this op holds for backward (empty once freed)."""
        node = self._node
        return [] if node is None else [a for a, _ in node.saved_entries()]

    # --- running the op ------------------------------------------------------------
    def apply(self, *inputs):
        """Run forward on Tensors and, when grad is on, record this op in the graph."""
        # 1. the inputs' arrays, on one backend (loops rather than comprehensions: on
        # Python 3.11 each comprehension is a call)
        backend = inputs[0]._backend
        arrays, needs = [], []
        for t in inputs:
            if t._backend is not backend:  # a 0-d CPU tensor joins a GPU's; else raises
                return self.apply(*cpu_scalars_moved(inputs, self.name))
            arrays.append(t._data)
            needs.append(t._requires_grad)
        if len(arrays) > 1 and (len(arrays) > 2 or arrays[0] is arrays[1]):
            _distinct_arrays(inputs, arrays)
        # 2. what the calling thread's modes ask: a node when grad mode records the op,
        # or a jvp needs its saved values (whatever requires grad)
        modes = _tls.state
        record = modes.grad_enabled and self.differentiable and True in needs
        dual = modes.dual_level is not None
        self.backend, self.xp = backend, backend.xp
        if record or dual:
            node = self._node = Node()
            self.needs_input_grad = tuple(needs) if not dual else tuple(
                [r or a.dtype.kind == "f" for r, a in zip(needs, arrays)])
        else:
            node = self._node = None
            self.needs_input_grad = (False,) * len(inputs)
        # 3. forward, on arrays, in the inputs' device (a GPU's: CuPy works on the
        # current one); the CPU has none to enter
        scope = backend.device_scope
        if scope is None:
            raw = self.forward(*arrays)
        else:
            with scope:
                raw = self.forward(*arrays)
        single = not isinstance(raw, tuple)
        outs = (raw,) if single else raw
        backend = self.target_backend or backend
        for a in outs:
            if type(a) is not backend.xp.ndarray:  # NumPy gives scalars for 0-d results
                outs = self._as_arrays(outs, backend)
                break
        # 4. what listens: anomaly checks, the step gpuad.compile records
        if modes.anomaly:
            anomaly.check_forward(self, outs, modes)
        if modes.tape is not None:
            modes.tape.on_apply(self, inputs, outs, raw, () if node is None else node.to_save)
        # 5. the results: graph tensors of this op when it records, whose node takes the
        # edges to the inputs, the metadata and what forward saved (packed)
        version = inputs[0]._version_counter if self.is_view else None
        if not record:
            if single and not dual:
                return Tensor._make(outs[0], backend, None, 0, version)
            results = tuple([Tensor._make(a, backend, None, 0, version) for a in outs])
        else:
            edges, in_meta, out_meta, results = [], [], [], []
            for t in inputs:
                edges.append(t._edge() if t._requires_grad else None)
                in_meta.append((t._data.shape, t._data.dtype))
            for i, a in enumerate(outs):
                out_meta.append((a.shape, a.dtype))
                results.append(Tensor._make(a, backend, self, i, version, a.dtype.kind == "f"))
            results = tuple(results)
            node.next_edges, node.input_meta = tuple(edges), tuple(in_meta)
            node.output_meta = tuple(out_meta)
            if version is not None:  # a view: backward checks that what it viewed is unchanged
                node.viewed = (version, version[0])
        if node is not None:
            if not record:  # a jvp only: its rule may ask for zeros shaped like an input
                node.input_meta = tuple([(a.shape, a.dtype) for a in arrays])
            if node.to_save:
                node.saved = tuple([pack(a, inputs, arrays, outs, results)
                                    for a in node.to_save])
                node.to_save = ()  # packed: only ``saved`` holds them now
            if record:  # what the graph keeps (a jvp's node goes with the jvp)
                if node.saved or self.is_view:
                    for observer in saved_observers:
                        observer(self)
                for observer in modes.saved_observers:
                    observer(self)
        if dual:
            forward_ad.apply_rule(self, inputs, results)
        return results[0] if single else results

    def _as_arrays(self, outs, backend):
        """``outs`` with scalars made 0-d arrays, and what forward saved following them."""
        arrays = tuple([a if backend.is_array(a) else backend.xp.asarray(a) for a in outs])
        node = self._node
        if node is not None and node.to_save:
            swap = {id(a): b for a, b in zip(outs, arrays) if a is not b}
            node.to_save = tuple([swap.get(id(a), a) for a in node.to_save])
        return arrays

    # --- what gpuad.compile replays --------------------------------------------------
    def for_replay(self):
        """A copy of this op as a compiled step replays it: its own parameters and data,
        the backend it ran on, and no node (a replay records no graph)."""
        op = copy.copy(self)
        op._node = None
        return op

    def collect_saved(self, run, *arrays):
        """``(run(*arrays), what this op's forward asked to save during it)``, outside any
        graph: how a replay runs an op whose saved arrays are read later (a logsumexp, a
        dropout mask)."""
        node = self._node = Node()
        try:
            return run(*arrays), node.to_save
        finally:
            self._node = None

    def __repr__(self):
        return f"<{self.name}Backward>"


def _distinct_arrays(inputs, arrays):
    """Give forward a view where two different tensors hold one array (``x`` and
    ``x.detach()``): what it saves is told apart by identity, so each must be its own."""
    for i in range(1, len(arrays)):
        for j in range(i):
            if arrays[i] is arrays[j] and inputs[i] is not inputs[j]:
                arrays[i] = arrays[i].view()
                break
