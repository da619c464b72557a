"""What the graph holds for backward: the arrays live ops saved, and which are leaves'.

Every recorded op that saved something, or is a view, is tracked through a weak
reference (from ``function.saved_observers``), so the tracking keeps nothing alive; an
op's arrays stop counting once its backward has freed them or the op has died. What is
saved is read through ``Node.saved_entries``; ``gpuad.memory.stats()`` shows the total
as ``saved_activation_bytes``.
"""
import weakref

import numpy as np

from .. import memory
from . import function

#: Weak references to the tracked ops: a dying op's reference discards itself (a C call
#: where a WeakSet runs Python at each add and each death).
_refs = set()


def _track(op):
    _refs.add(weakref.ref(op, _refs.discard))


# told of every op that saved arrays, and of views (a saved weight.mT is the leaf
# weight's memory)
function.saved_observers.append(_track)


def _live_ops():
    """The tracked ops now: a copy taken again when another thread adds one meanwhile
    (no lock on the ops' path)."""
    while True:
        try:
            refs = list(_refs)
        except RuntimeError:  # the set changed size during the copy
            continue
        return [op for op in (r() for r in refs) if op is not None]



def array_key(arr):
    """What identifies an array's memory: two views of the same bytes count once."""
    ptr = arr.__array_interface__["data"][0] if isinstance(arr, np.ndarray) else arr.data.ptr
    return ptr, arr.nbytes


def saved_entries(op):
    """``(array, is_leaf_tensor)`` for each array ``op`` holds for backward."""
    return [(a, t is not None and t.grad_fn is None) for a, t in op.node.saved_entries()]


def leaf_keys(op):
    """Memory keys of the leaf tensors among ``op``'s graph inputs (a parameter seen
    through a view, like ``weight.mT``, shares its key)."""
    return {array_key(edge[0]._data) for edge in op.node.next_edges
            if edge is not None and edge[1] is None}


def saved_activation_bytes(device=None):
    """Bytes of the distinct non-leaf arrays live ops hold (on ``device``, or all)."""
    nodes = [n for n in _live_ops() if device is None or n.backend.device == device]
    leaves, arrays = set(), {}
    for node in nodes:
        leaves |= leaf_keys(node)
        for arr, is_leaf in saved_entries(node):
            key = array_key(arr)
            if is_leaf:
                leaves.add(key)
            else:
                arrays[key] = arr.nbytes
    return sum(n for key, n in arrays.items() if key not in leaves)


# memory/ sits below autograd: what it shows of the graph, autograd adds
memory.extra_stats["saved_activation_bytes"] = saved_activation_bytes
