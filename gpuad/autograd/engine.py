"""The backward sweep: one iterative topological pass over the graph.

Edges are captured when an op runs: its node's ``next_edges[i]`` is ``(op, output_nr)``
for a non-leaf input and ``(tensor, None)`` for a leaf, whose gradient is accumulated.
The sweep walks ops (a tensor's ``grad_fn``) and reads each one's bookkeeping from its
``node``.
"""
from ..tensor import Tensor
from ..thread_state import local as _tls
from . import anomaly, grad_mode
from .function import Function


def _dependencies(roots):
    """How many edges point at each op reachable from ``roots`` (no recursion)."""
    deps = {}
    stack = list(roots)
    seen = set(roots)
    while stack:
        op = stack.pop()
        for edge in op._node.next_edges:
            if edge is not None and isinstance(edge[0], Function):
                target = edge[0]
                deps[target] = deps.get(target, 0) + 1
                if target not in seen:
                    seen.add(target)
                    stack.append(target)
    return deps


def _add(a, b):
    return b if a is None else a + b


def _zeros(op, i):
    shape, dtype = op._node.output_meta[i]
    return Tensor._make(op.backend.full(shape, 0, dtype), op.backend)


def _key(t):
    """What identifies a tensor in the graph: the leaf itself, or (node, output_nr)."""
    return id(t) if t.grad_fn is None else (t.grad_fn, t._output_nr)


class _Sink:
    """Where gradients that reach leaves, retained or captured tensors go."""

    def __init__(self, inputs, create_graph, root_grads):
        self.create_graph = create_graph
        # arrays a .grad must not be: the caller's own gradient= arrays
        self.foreign = {id(g._data) for g in root_grads}
        # autograd.grad: capture gradients of these tensors instead of touching .grad
        self.capture = None if inputs is None else {_key(t): None for t in inputs}
        self.leaves = {}  # id(leaf) -> [leaf, its gradient summed over this sweep]

    def take(self, key, g):
        if key in self.capture:
            self.capture[key] = _add(self.capture[key], g)

    def node_outputs(self, op, gys):
        """Run hooks, fill retained .grad and captures for an op's output gradients."""
        node = op._node
        for i, g in enumerate(gys):
            if node.hooks:
                for hook in node.hooks.get(i, ()):
                    g = _hooked(hook, g)
                gys[i] = g
            if node.retained and i in node.retained:
                t = node.retained[i]()
                if t is not None:
                    g_kept = g if self.create_graph else g.detach()
                    t.grad = g_kept if t.grad is None else t.grad + g_kept
            if self.capture is not None:
                self.take((op, i), g)
        return gys

    def accumulate(self, leaf, g):
        """Add ``g`` to what reaches ``leaf`` in this sweep (stored by ``finish``)."""
        entry = self.leaves.get(id(leaf))
        if entry is None:
            self.leaves[id(leaf)] = [leaf, g]
        else:
            entry[1] = entry[1] + g

    def finish(self):
        """Once per leaf, on its total gradient: run its hooks, then capture the gradient
        or add it to ``.grad``."""
        owned = set(self.foreign)  # one array must not be two .grads, nor the caller's
        for leaf, g in self.leaves.values():
            if self.capture is not None and id(leaf) not in self.capture:
                continue  # autograd.grad: other leaves are left alone, hooks included
            for hook in leaf._hooks or ():
                g = _hooked(hook, g)
            if self.capture is not None:
                self.take(id(leaf), g)
                continue
            if not self.create_graph:
                g = g.detach()
                arr = g._data
                # a view (of the caller's gradient, or transposed) becomes an array of its
                # own; a Numba kernel's result or a pool block's only array is no view
                if id(arr) in owned or g._backend.is_view(arr) or not arr.flags.c_contiguous:
                    g = g.clone()
                owned.add(id(g._data))
            if g.dtype != leaf.dtype:
                g = g.to(leaf.dtype)
            leaf.grad = g if leaf.grad is None else leaf.grad + g


def _hooked(hook, g):
    out = hook(g)
    if out is None:
        return g
    if out.shape != g.shape:
        raise RuntimeError(f"hook {hook!r} returned a gradient of shape {out.shape}, "
                           f"expected {g.shape}")
    return out


def run_backward(roots, grads, retain_graph=False, create_graph=False, inputs=None):
    """Send ``grads`` back from ``roots`` through the graph.

    Leaves' ``.grad`` is accumulated, unless ``inputs`` is given: then the gradients of
    those tensors are returned instead (``autograd.grad``) and no ``.grad`` changes.
    """
    sink = _Sink(inputs, create_graph, grads)
    buffers = {}
    for t, g in zip(roots, grads):
        if t.grad_fn is None:
            sink.accumulate(t, g)
        else:
            slots = buffers.setdefault(t.grad_fn, [None] * len(t.grad_fn._node.output_meta))
            slots[t._output_nr] = _add(slots[t._output_nr], g)
    root_nodes = list(buffers)
    deps = _dependencies(root_nodes)
    ready = [n for n in root_nodes if deps.get(n, 0) == 0]
    # a backward that is recorded, or carries tangents (an open jvp), must be made of
    # Tensor ops: each op's composite ``backward``; else its ``fused_backward`` if it has one
    modes = _tls.state
    fused = not create_graph and modes.dual_level is None
    checks = modes.anomaly
    tape = modes.tape  # a recording names the op whose backward made what it refuses
    with grad_mode.enable_grad() if create_graph else grad_mode.no_grad():
        while ready:
            op = ready.pop()
            gys = buffers.pop(op, None)
            if gys is None:  # no gradient reached this op: nothing flows further
                for edge in op._node.next_edges:
                    if edge is not None and isinstance(edge[0], Function):
                        _arrive(edge[0], deps, ready)
            else:
                if tape is not None:
                    tape.backward_of = op
                _run_node(op, gys, sink, buffers, deps, ready, fused, checks)
                if tape is not None:
                    tape.backward_of = None
            if not retain_graph:
                op._node.release()
        sink.finish()
    if sink.capture is not None:
        return [sink.capture[_key(t)] for t in inputs]
    return None


def _run_node(op, gys, sink, buffers, deps, ready, fused, checks):
    node = op._node
    if node.saved is None:
        raise RuntimeError(
            f"Trying to backward through the graph a second time ({op.name}): its saved "
            "tensors were freed by the first backward; pass retain_graph=True to the first "
            "backward() (or autograd.grad) if you need to backward twice")
    if node.viewed is not None:
        node.check_view_unchanged(op.name)
    for i, g in enumerate(gys):
        if g is None:
            gys[i] = _zeros(op, i)
    if node.hooks or node.retained or sink.capture is not None:
        gys = sink.node_outputs(op, gys)
    rule = op.fused_backward if fused and op.fused_backward is not None else op.backward
    if checks:
        with anomaly.running_backward_of(op):
            gxs = rule(*gys)
    else:
        gxs = rule(*gys)
    if not isinstance(gxs, tuple):
        gxs = (gxs,)
    if checks:
        anomaly.check(op, [None if g is None else g._data for g in gxs], "backward")
    edges = node.next_edges
    if len(gxs) != len(edges):
        raise RuntimeError(f"{op.name}.backward returned {len(gxs)} gradients for "
                           f"{len(edges)} inputs; return one per input (None allowed)")
    for i, (edge, gx) in enumerate(zip(edges, gxs)):
        if edge is None or gx is None:
            if edge is not None and isinstance(edge[0], Function):
                _arrive(edge[0], deps, ready)
            continue
        shape, dtype = node.input_meta[i]
        if gx._data.shape != shape:
            raise RuntimeError(f"{op.name}.backward returned a gradient of shape "
                               f"{gx.shape} for input {i} of shape {shape}")
        if gx._data.dtype != dtype:
            gx = gx.to(dtype)
        target, nr = edge
        if isinstance(target, Function):
            slots = buffers.setdefault(target, [None] * len(target._node.output_meta))
            slots[nr] = _add(slots[nr], gx)
            _arrive(target, deps, ready)
        else:
            sink.accumulate(target, gx)


def _arrive(op, deps, ready):
    deps[op] -= 1
    if deps[op] == 0:
        ready.append(op)
