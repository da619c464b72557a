"""What ``gpuad.compile`` hears while it records a step; free when nothing records.

A thread's tape (``active()``) is None except while ``gpuad.capture`` records a step in
that thread: other threads' ops never reach it. Every array a step computes must reach
it: ``Function.apply`` reports each op, ``kernel`` each raw kernel call made outside an
op (``Function.call_kernel``: a fused backward), ``traced`` decorates the raw array
makers and writers (factories, in-place writes, ``x[i] = v``), ``Backend.constant``
reports the Python value of each constant it makes, ``grad_set`` each ``.grad``
assignment, ``host_read`` each read of values on the host (which a replay could not
repeat), ``refuse`` what cannot be replayed at all; and ``replayable`` marks the methods
a replay calls again as they are (an optimizer's ``step``, ``zero_grad``) instead of
recording what they do.
"""
import contextlib
import functools
import itertools
import threading

from .thread_state import local as _tls

#: Changed when a hook is added or removed outside a recording (in any thread): what a
#: recorded step ran may have changed, so programs recorded before are stale.
state_version = 0
_versions = itertools.count(1)  # next() is atomic: two threads never take one number
#: How many threads record a step now. While none does, the hooks below cost one global
#: read instead of a thread-local look-up.
recording = 0
_count_lock = threading.Lock()


@contextlib.contextmanager
def recording_into(tape):
    """Make ``tape`` hear what the calling thread runs inside the block."""
    global recording
    state = _tls.state
    with _count_lock:
        recording += 1
    state.tape = tape
    try:
        yield tape
    finally:
        state.tape = None
        with _count_lock:
            recording -= 1


def active():
    """The tape recording a step in the calling thread, or None."""
    return _tls.state.tape if recording else None


def kernel(fn, *args):
    """``fn(*args)`` on arrays (results, or None when it writes into an argument),
    recorded so that a replay runs it again on that call's arrays."""
    out = fn(*args)
    if recording:
        _heard(fn, args, out, False, False)
    return out


def traced(fn=None, *, writes_in_place=False, draws_random=False):
    """Decorator of a raw array maker or writer outside the ops (a factory, an in-place
    write, ``x[i] = v``), whose first argument is the backend it works on: each call runs
    it in that backend's device (``Backend.device_scope``) and, while a step records, is
    recorded so that a replay runs it again (positional arguments only).
    ``writes_in_place``: it writes into an array argument (a replay copies such a change
    back to the step's input); ``draws_random``: it draws from the generator (a CUDA graph
    would freeze the draw)."""
    def wrap(fn):
        @functools.wraps(fn)
        def in_device(backend, *args):  # what a call runs, and a replay again
            scope = backend.device_scope
            if scope is None:
                return fn(backend, *args)
            with scope:
                return fn(backend, *args)

        @functools.wraps(fn)
        def run(*args):
            scope = args[0].device_scope  # in_device, inlined: this is a factory's path
            if scope is None:
                out = fn(*args)
            else:
                with scope:
                    out = fn(*args)
            if recording:
                _heard(in_device, args, out, writes_in_place, draws_random)
            return out
        return run
    return wrap if fn is None else wrap(fn)


def _heard(fn, args, out, writes_in_place, draws_random):
    tape = _tls.state.tape
    if tape is not None:
        tape.on_kernel(fn, args, out, writes_in_place, draws_random)


def grad_set(tensor, grad):
    tape = active()
    if tape is not None:
        tape.on_grad_set(tensor, grad)


def state_changed():
    global state_version
    if active() is None:  # inside a recording the change is part of what is recorded
        state_version = next(_versions)


def refuse(what):
    """Inside a recording: ``what`` cannot be replayed, so the step will run eagerly."""
    tape = active()
    if tape is not None:
        tape.fail(f"{what} cannot be replayed yet")


def host_read(tensor, what):
    tape = active()
    if tape is not None:
        tape.on_host_read(tensor, what)


def replayable(method):
    """Decorator: while a step records, a call of ``method`` is recorded as a call (the
    replay makes it again, host logic included) and what it runs inside is not."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        tape = active()
        if tape is None or tape.paused:
            return method(*args, **kwargs)
        tape.on_call(method, args, kwargs)
        tape.paused += 1
        try:
            return method(*args, **kwargs)
        finally:
            tape.paused -= 1
    return wrapper
