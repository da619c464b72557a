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

The engine never needs to know about an op: adding one touches nothing else.
"""
from ..errors import check_same_device
from ..tensor import Tensor
from .. import tracing
from ..thread_state import local as _tls
from . import anomaly, forward_ad

_INPUT, _OUTPUT, _CONSTANT = 0, 1, 2

#: Callables ``observer(node)`` told of every node that recorded saved tensors, in any
#: thread. ``gpuad.memory`` subscribes one at import (a weak reference per recorded node,
#: about 0.5 us, for ``stats()['saved_activation_bytes']``); a report adds its own to
#: its thread's ``ThreadState.saved_observers`` while it runs.
saved_observers = []


class Function:
    """Base class of every op; an instance is one node of the graph.

    >>> class Square(Function):
    ...     def forward(self, x):
    ...         self.save_for_backward(x)
    ...         return x * x
    ...     def backward(self, gy):
    ...         x, = self.saved_tensors
    ...         return 2 * x * gy
    >>> y = Square().apply(x)
    """

    #: False for ops whose outputs never carry gradients (comparisons, argmax).
    differentiable = True
    #: True for ops whose output is a view of input 0: they share its version counter.
    is_view = False
    #: The backend of the outputs, when it is not the inputs' (moves between devices).
    target_backend = None
    #: True for ops whose forward draws random numbers (a CUDA graph would freeze them).
    draws_random = False

    _to_save = ()      # what forward asked to save, until apply packs it
    _retained = None   # output_nr -> weakref of a tensor that called retain_grad()
    _hooks = None      # output_nr -> hooks registered on that output

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
        if self._recording:
            self._to_save = arrays

    @property
    def saved_tensors(self):
        """The saved arrays as Tensors: inputs and outputs as graph tensors, others constant."""
        if self._saved is None:
            raise RuntimeError(
                f"{self.name}: its saved tensors were freed by an earlier backward; "
                "pass retain_graph=True to the first backward() to backward twice")
        return tuple(map(self._unpack, self._saved))

    @property
    def name(self):
        return type(self).__name__

    # --- running the op ------------------------------------------------------------
    def apply(self, *inputs):
        """Run forward on Tensors and, when grad is on, record this node in the graph."""
        # loops rather than comprehensions: on Python 3.11 each comprehension is a call
        backend = inputs[0]._backend
        arrays, needs = [], []
        for t in inputs:
            if t._backend is not backend:
                check_same_device(inputs, self.name)  # raises, naming both devices
            arrays.append(t._data)
            needs.append(t._requires_grad)
        if len(arrays) > 1 and (len(arrays) > 2 or arrays[0] is arrays[1]):
            _distinct_arrays(inputs, arrays)
        self.backend = backend
        self.xp = backend.xp
        modes = _tls.state  # the calling thread's grad mode, jvp, anomaly mode and tape
        record = modes.grad_enabled and self.differentiable and True in needs
        dual = modes.dual_level is not None
        self._recording = record or dual
        if dual:  # forward mode needs the saved values whatever requires grad
            self.needs_input_grad = tuple([r or a.dtype.kind == "f"
                                           for r, a in zip(needs, arrays)])
        else:
            self.needs_input_grad = tuple(needs) if record else (False,) * len(inputs)
        raw = self.forward(*arrays)
        single = not isinstance(raw, tuple)
        outs = (raw,) if single else raw
        if modes.anomaly:
            if modes.backward_of is None:
                self._creation_site = anomaly.creation_site()
            anomaly.check(self, outs, "forward")
        version = inputs[0]._version_counter if self.is_view else None
        backend = self.target_backend or backend
        for a in outs:
            if type(a) is not backend.xp.ndarray:  # NumPy gives scalars for 0-d results
                outs = self._as_arrays(outs, backend)
                break
        if modes.tape is not None:
            modes.tape.on_apply(self, inputs, outs, raw)
        if not record:
            if single and not dual:
                return Tensor._make(outs[0], backend, None, 0, version)
            results = tuple([Tensor._make(a, backend, None, 0, version) for a in outs])
            if dual:
                self._input_meta = tuple([(t._data.shape, t._data.dtype) for t in inputs])
                self._saved = tuple([self._pack(a, inputs, arrays, outs, results)
                                     for a in self._to_save])
                forward_ad.apply_rule(self, inputs, results)
            return results[0] if single else results
        edges, in_meta = [], []
        for t in inputs:
            edges.append(t._edge() if t._requires_grad else None)
            in_meta.append((t._data.shape, t._data.dtype))
        self.next_edges = tuple(edges)
        self._input_meta = tuple(in_meta)
        if version is not None:  # a view: backward checks that what it viewed is unchanged
            self._viewed = (version, version[0])
        out_meta, results = [], []
        for i, a in enumerate(outs):
            out_meta.append((a.shape, a.dtype))
            results.append(Tensor._make(a, backend, self, i, version, a.dtype.kind == "f"))
        self._output_meta = tuple(out_meta)
        results = tuple(results)
        if self._to_save:
            self._saved = tuple([self._pack(a, inputs, arrays, outs, results) for a in self._to_save])
            self._to_save = ()  # packed: only _saved holds them now, so _release() frees them
        else:
            self._saved = ()
        for observer in saved_observers:
            observer(self)
        if modes.saved_observers:
            for observer in modes.saved_observers:
                observer(self)
        if dual:
            forward_ad.apply_rule(self, inputs, results)
        return results[0] if single else results

    def call_kernel(self, kernel, *args):
        """``kernel(*args)`` with Tensors passed as their arrays, its array results as
        Tensors: how a backward calls a fused backend kernel (``gpuad.compile`` records
        it, where a raw call would be invisible to a replay)."""
        out = tracing.kernel(kernel, *[a._data if isinstance(a, Tensor) else a for a in args])
        if isinstance(out, tuple):
            return tuple([Tensor._make(a, self.backend) for a in out])
        return Tensor._make(out, self.backend)

    def _as_arrays(self, outs, backend):
        """``outs`` with scalars made 0-d arrays, and what forward saved following them."""
        arrays = tuple([a if backend.is_array(a) else backend.xp.asarray(a) for a in outs])
        if self._to_save:
            swap = {id(a): b for a, b in zip(outs, arrays) if a is not b}
            self._to_save = tuple([swap.get(id(a), a) for a in self._to_save])
        return arrays

    def zero_tangent(self, i):
        """Zeros shaped like input ``i``: the tangent of an input that has none."""
        shape, dtype = self._input_meta[i]
        return Tensor._make(self.xp.zeros(shape, dtype), self.backend)

    def _pack(self, arr, inputs, arrays, outs, results):
        if arr is None:
            return None
        for t, a in zip(inputs, arrays):
            if a is arr:
                return (_INPUT, t, t._version_counter, t._version_counter[0])
        for i, a in enumerate(outs):
            if a is arr:
                vc = results[i]._version_counter
                return (_OUTPUT, i, arr, vc, vc[0])
        return (_CONSTANT, arr)

    def _unpack(self, entry):
        if entry is None:
            return None
        kind = entry[0]
        if kind == _CONSTANT:
            return Tensor._make(entry[1], self.backend)
        counter, saved_version = entry[-2], entry[-1]
        if counter[0] != saved_version:
            raise RuntimeError(
                f"one of the tensors {self.name} saved for backward was changed by an "
                f"in-place operation (version {saved_version} -> {counter[0]}); "
                "use the out-of-place op (x = x + y instead of x.add_(y)) or clone() first")
        if kind == _INPUT:
            return entry[1]
        return Tensor._make(entry[2], self.backend, grad_fn=self, output_nr=entry[1],
                            version=counter, requires_grad=True)

    def check_view_unchanged(self):
        """A view's values follow in-place changes of the tensor it views, which its graph
        does not record: refuse to backward through it once that tensor has changed."""
        counter, seen = self._viewed
        if counter[0] != seen:
            raise RuntimeError(
                f"{self.name} made a view of a tensor that an in-place operation then changed "
                f"(version {seen} -> {counter[0]}), so the view's values no "
                "longer match the graph; take the view after the in-place op, or view a "
                "clone() of the tensor")

    def saves_input(self, t):
        """Whether this node saved the input tensor ``t`` itself for backward."""
        return any(e is not None and e[0] == _INPUT and e[1] is t for e in self._saved or ())

    def saved_arrays(self):
        """The arrays this node holds for backward (empty once freed)."""
        if not self._saved:
            return []
        return [e[1]._data if e[0] == _INPUT else e[2] if e[0] == _OUTPUT else e[1]
                for e in self._saved if e is not None]

    def _release(self):
        """Free what was saved: called once this node's backward has run."""
        self._saved = None

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
