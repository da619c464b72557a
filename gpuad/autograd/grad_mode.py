"""``no_grad`` and ``enable_grad``: whether ops record the graph, in the calling thread
(as in PyTorch, grad mode is thread-local)."""
import functools

from ..thread_state import local as _tls


def is_grad_enabled():
    """True when ops in this thread record the graph for backward."""
    return _tls.state.grad_enabled


def set_grad_enabled(mode):
    """Turn graph recording on or off for the calling thread."""
    _tls.state.grad_enabled = bool(mode)


class _GradMode:
    mode = True

    def __enter__(self):
        state = _tls.state
        self._prev, state.grad_enabled = state.grad_enabled, self.mode
        return self

    def __exit__(self, *exc):
        _tls.state.grad_enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Context manager and decorator: ops inside record no graph (for evaluation).

    >>> with gpuad.no_grad():
    ...     y = model(x)          # y.requires_grad is False
    """
    mode = False


class enable_grad(_GradMode):
    """Context manager and decorator: turn recording back on inside ``no_grad``."""
    mode = True
