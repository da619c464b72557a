"""``Node``: the engine's bookkeeping of one recorded op, kept apart from the op itself.

An op (a ``Function``) holds only its own parameters and data; ``Function.apply`` gives
it a Node when the op must keep something for later: when grad mode records it (the
edges to its inputs' nodes, what backward reads) or while a jvp runs (what its jvp rule
reads). The op points at its node, never the reverse, so a graph has no reference
cycles and is freed as soon as its last tensor goes.

Saved arrays are packed by identity: an input becomes a reference to the input tensor,
an output the op's own output (rebuilt on unpack, so no cycle), any other array a
constant. Inputs and outputs carry the version counter seen at save time.
"""
from ..tensor import Tensor

_INPUT, _OUTPUT, _CONSTANT = 0, 1, 2


class Node:
    """What the engine keeps of one op: edges, metadata, saved arrays, hooks. The class
    attributes are the defaults: apply sets only what differs (it runs for every op)."""

    #: per input: ``(op, output_nr)`` of a non-leaf, ``(tensor, None)`` of a leaf that
    #: requires grad, None otherwise (empty for a node of a jvp only)
    next_edges = ()
    input_meta = output_meta = ()  # (shape, dtype) per input / output
    to_save = ()      # what forward asked to save, until apply packs it
    saved = ()        # the packed entries; None once backward has freed them
    viewed = None     # (version counter, version) of what a view op viewed
    hooks = None      # output_nr -> hooks registered on that output
    retained = None   # output_nr -> weakref of a tensor that called retain_grad()
    creation_site = None  # where the user made the op (under detect_anomaly)

    # --- what backward and tools read ----------------------------------------------
    @property
    def released(self):
        """True once backward has freed what this node saved."""
        return self.saved is None

    def saved_entries(self):
        """``(array, tensor)`` for each array held for backward: ``tensor`` is the input
        tensor the array belongs to, or None for an output or another array (empty once
        freed)."""
        out = []
        for e in self.saved or ():
            if e is not None:
                out.append((e[1]._data, e[1]) if e[0] == _INPUT else
                           (e[2] if e[0] == _OUTPUT else e[1], None))
        return out

    def unpack(self, op):
        """The saved arrays of ``op`` as Tensors: inputs and outputs as graph tensors,
        others constant; an error if an input or output changed in place since."""
        return tuple([_unpack(op, e) for e in self.saved])

    def release(self):
        """Free what was saved: called once this node's backward has run."""
        self.saved = None

    def check_view_unchanged(self, name):
        """A view's values follow in-place changes of the tensor it views, which its graph
        does not record: refuse to backward through it once that tensor has changed."""
        counter, seen = self.viewed
        if counter[0] != seen:
            raise RuntimeError(
                f"{name} made a view of a tensor that an in-place operation then changed "
                f"(version {seen} -> {counter[0]}), so the view's values no "
                "longer match the graph; take the view after the in-place op, or view a "
                "clone() of the tensor")

    # --- what tensors register -------------------------------------------------------
    def add_hook(self, output_nr, hook):
        """Register ``hook`` on output ``output_nr``; returns the list holding it."""
        if self.hooks is None:
            self.hooks = {}
        hooks = self.hooks.setdefault(output_nr, [])
        hooks.append(hook)
        return hooks

    def retain(self, output_nr, ref):
        """Keep the gradient of output ``output_nr`` in ``ref()``'s ``.grad``."""
        if self.retained is None:
            self.retained = {}
        self.retained[output_nr] = ref


def pack(arr, inputs, arrays, outs, results):
    """The saved entry of ``arr``: ``(INPUT, tensor, counter, version)`` for an input,
    ``(OUTPUT, nr, array, counter, version)`` for an output, ``(CONSTANT, array)``."""
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


def _unpack(op, entry):
    if entry is None:
        return None
    kind = entry[0]
    if kind == _CONSTANT:
        return Tensor._make(entry[1], op.backend)
    counter, saved_version = entry[-2], entry[-1]
    if counter[0] != saved_version:
        raise RuntimeError(
            f"one of the tensors {op.name} saved for backward was changed by an "
            f"in-place operation (version {saved_version} -> {counter[0]}); "
            "use the out-of-place op (x = x + y instead of x.add_(y)) or clone() first")
    if kind == _INPUT:
        return entry[1]
    return Tensor._make(entry[2], op.backend, grad_fn=op, output_nr=entry[1],
                        version=counter, requires_grad=True)
