"""What each thread has of its own: grad mode, the open forward-mode level, anomaly mode,
the compiled step being recorded, the default device and the saved-tensor observers.

As in PyTorch, a ``no_grad()`` or ``set_default_device`` in one thread leaves every
other thread as it was, and a new thread starts from the defaults below. Hot paths read
the whole state with one thread-local lookup (``local.state``), then plain attributes.
"""
import threading


class ThreadState:
    """One thread's modes (the defaults are a new thread's)."""

    __slots__ = ("grad_enabled", "dual_level", "anomaly", "backward_of", "tape", "device",
                 "saved_observers")

    def __init__(self):
        self.grad_enabled = True   # ops record the graph (no_grad / enable_grad)
        self.dual_level = None     # the open jvp's tangents (forward_ad._DualLevel)
        self.anomaly = False       # detect_anomaly() checks outputs and gradients
        self.backward_of = None    # under anomaly mode: the node whose backward runs
        self.tape = None           # the capture.tape.Tape of the step being recorded
        self.device = None         # the default device (None: the CPU)
        self.saved_observers = ()  # report callbacks told of each op that records a node


class _Local(threading.local):
    def __init__(self):  # runs once in each thread, at its first look
        self.state = ThreadState()


local = _Local()


def current():
    """The calling thread's ``ThreadState``."""
    return local.state
