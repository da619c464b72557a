"""``detect_anomaly()``: find the op whose forward or backward first made NaN or Inf.

Anomaly mode is a mode of the calling thread, like grad mode (PyTorch's is process-wide;
here a thread that wants the checks turns them on itself, and never pays for another's).
"""
import contextlib
import os
import traceback

from ..thread_state import local as _tls

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def is_anomaly_enabled():
    """True inside ``detect_anomaly()`` in the calling thread."""
    return _tls.state.anomaly


class detect_anomaly:
    """Context manager: every op checks its outputs, and its gradients in backward, for
    NaN/Inf, and raises naming the op and the line of user code that created it.

    >>> with gpuad.autograd.detect_anomaly():
    ...     loss = model(x).log().sum()
    ...     loss.backward()           # RuntimeError: Log ... created at train.py:12
    """

    def __enter__(self):
        state = _tls.state
        self._prev, state.anomaly = state.anomaly, True
        return self

    def __exit__(self, *exc):
        _tls.state.anomaly = self._prev
        return False


def creation_site():
    """``file:line (code)`` of the innermost frame outside gpuad: where the user made the op."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR + os.sep):
            return f"{frame.filename}:{frame.lineno} ({(frame.line or '').strip()})"
    return "unknown"


def check_forward(op, outs, modes):
    """The forward check of ``op``: outside a backward, its creation site is noted first
    (on its node, for the backward's checks too)."""
    site = None
    if modes.backward_of is None:
        site = creation_site()
        if op.node is not None:
            op.node.creation_site = site
    check(op, outs, "forward", site)


def check(op, arrays, phase, site=None):
    """Raise if any of ``arrays`` holds NaN or Inf, naming the op responsible."""
    # a forward's results are on its target device (a move), a backward's on the inputs'
    backend = (phase == "forward" and op.target_backend) or op.backend
    for i, a in enumerate(arrays):
        if a is None or a.dtype.kind != "f":
            continue
        with backend.device_scope or contextlib.nullcontext():
            if bool(backend.xp.isfinite(a).all()):
                continue
            what = "NaN" if bool(backend.xp.isnan(a).any()) else "Inf"
        owner = _tls.state.backward_of
        if phase == "forward" and owner is None:
            culprit = f"{op.name} produced {what} in its forward (output {i})"
        else:
            owner = owner or op
            culprit = f"the backward of {owner.name} produced {what}" + (
                f" (in its {op.name} step)" if owner is not op else
                f" (gradient for input {i})")
            site = owner.node.creation_site if owner.node is not None else None
        raise RuntimeError(f"anomaly: {culprit}; the op was created at {site or 'unknown'}")


class running_backward_of:
    """Marks ``op`` as the one whose backward is running, for error messages."""

    def __init__(self, op):
        self.op = op

    def __enter__(self):
        state = _tls.state
        self._prev, state.backward_of = state.backward_of, self.op

    def __exit__(self, *exc):
        _tls.state.backward_of = self._prev
        return False
