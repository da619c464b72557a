"""What ``gpuad.compile`` hears while it records a step; free when nothing records.

``tape`` is None except while ``gpuad.capture`` runs a step to record it. Every array a
step computes must reach it: ``Function.apply`` reports each op, ``kernel`` each raw
kernel call made outside an op (a fused backward, an in-place write, a factory),
``grad_set`` each ``.grad`` assignment, ``host_read`` each read of values on the host
(which a replay could not repeat), ``refuse`` what cannot be replayed at all; and
``replayable`` marks the methods a replay calls again as they are (an optimizer's
``step``, ``zero_grad``) instead of recording what they do.
"""
import functools

tape = None
#: Bumped when a hook is added or removed outside a recording: what a recorded step ran
#: may have changed, so programs recorded before are stale.
state_version = 0


def kernel(fn, *args):
    """``fn(*args)`` on arrays (results, or None when it writes into an argument),
    recorded so that a replay runs it again on that call's arrays."""
    out = fn(*args)
    if tape is not None:
        tape.on_kernel(fn, args, out)
    return out


def grad_set(tensor, grad):
    if tape is not None:
        tape.on_grad_set(tensor, grad)


def state_changed():
    global state_version
    if tape is None:  # inside a recording the change is part of what is recorded
        state_version += 1


def refuse(what):
    """Inside a recording: ``what`` cannot be replayed, so the step will run eagerly."""
    if tape is not None:
        tape.fail(f"{what} cannot be replayed yet")


def host_read(tensor, what):
    if tape is not None:
        tape.on_host_read(tensor, what)


def replayable(method):
    """Decorator: while a step records, a call of ``method`` is recorded as a call (the
    replay makes it again, host logic included) and what it runs inside is not."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        if tape is None or tape.paused:
            return method(*args, **kwargs)
        tape.on_call(method, args, kwargs)
        tape.paused += 1
        try:
            return method(*args, **kwargs)
        finally:
            tape.paused -= 1
    return wrapper
