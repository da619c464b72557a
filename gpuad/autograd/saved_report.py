"""``saved_tensors_report()``: what each op of a forward pass keeps for backward."""
import contextlib
from dataclasses import dataclass

from .. import memory, thread_state
from ..memory.pool import format_bytes
from .saved import array_key, leaf_keys, saved_entries


@dataclass
class SavedRow:
    """One array one node saved; ``leaf`` when it is a tensor the user made (an input or
    a parameter), which backward holds but does not add to memory."""

    op: str
    shape: tuple
    dtype: str
    nbytes: int
    device: str
    leaf: bool
    key: tuple
    first: int = None   # the row that first saved the same memory, if not this one


class SavedTensorsReport:
    """The rows recorded by ``saved_tensors_report`` and their totals (distinct memory
    counted once): ``activation_bytes``, ``leaf_bytes``, ``total_bytes``; ``table()``."""

    def __init__(self):
        self.rows = []
        self.nodes = 0
        self.nodes_saving_nothing = 0
        self._leaves = set()

    def _record(self, op):
        self.nodes += 1
        self._leaves |= leaf_keys(op)
        entries = saved_entries(op)
        if not entries:
            self.nodes_saving_nothing += 1
        for arr, is_leaf in entries:
            key = array_key(arr)
            if is_leaf:
                self._leaves.add(key)
            self.rows.append(SavedRow(op.name, tuple(arr.shape), str(arr.dtype), arr.nbytes,
                                      str(op.backend.device), is_leaf, key))

    def _finish(self):
        seen = {}
        for i, row in enumerate(self.rows):
            row.leaf = row.leaf or row.key in self._leaves
            first = seen.setdefault(row.key, i)
            row.first = None if first == i else first

    def _distinct(self, leaf):
        return [r for r in self.rows if r.first is None and r.leaf == leaf]

    @property
    def activation_bytes(self):
        """Bytes of the distinct saved arrays that are not the user's leaf tensors."""
        return sum(r.nbytes for r in self._distinct(False))

    @property
    def leaf_bytes(self):
        return sum(r.nbytes for r in self._distinct(True))

    @property
    def total_bytes(self):
        return self.activation_bytes + self.leaf_bytes

    def table(self):
        """The rows and totals as readable text."""
        lines = [f"saved for backward by {self.nodes} op nodes "
                 f"({self.nodes_saving_nothing} saved nothing)",
                 f"{'#':>4}  {'op':<14}{'shape':<20}{'dtype':<9}{'bytes':>12}  "
                 f"{'device':<8}note"]
        for i, r in enumerate(self.rows):
            note = "leaf (input/parameter)" if r.leaf else ""
            if r.first is not None:
                note = (note + ", " if note else "") + f"same memory as #{r.first}"
            lines.append(f"{i:>4}  {r.op:<14}{str(r.shape):<20}{r.dtype:<9}"
                         f"{format_bytes(r.nbytes):>12}  {r.device:<8}{note}".rstrip())
        act, leaf = self._distinct(False), self._distinct(True)
        lines.append(f"activations: {format_bytes(self.activation_bytes)} in {len(act)} "
                     f"arrays; leaf tensors (held anyway): {format_bytes(self.leaf_bytes)} "
                     f"in {len(leaf)}; total {format_bytes(self.total_bytes)}")
        return "\n".join(lines)

    __str__ = table


@contextlib.contextmanager
def saved_tensors_report():
    """Record what every op node created inside the block (in this thread) saves for
    backward.

    >>> with gpuad.memory.saved_tensors_report() as report:
    ...     loss = gpuad.nn.functional.cross_entropy(model(x), y)
    >>> print(report)            # one row per saved array, then the totals
    >>> report.activation_bytes  # distinct memory, the user's leaf tensors left out
    """
    report = SavedTensorsReport()
    state = thread_state.current()  # this thread's nodes only, as its ops are its own
    before = state.saved_observers
    state.saved_observers = before + (report._record,)
    try:
        yield report
    finally:
        state.saved_observers = before
        report._finish()


# the names users know it by (memory/ sits below autograd: autograd adds them)
memory.saved_tensors_report, memory.SavedTensorsReport = saved_tensors_report, SavedTensorsReport
