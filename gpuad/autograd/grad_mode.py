"""``no_grad`` and ``enable_grad``: whether ops record the graph."""
import functools

_enabled = True


def is_grad_enabled():
    """True when ops record the graph for backward."""
    return _enabled


def set_grad_enabled(mode):
    global _enabled
    _enabled = bool(mode)


class _GradMode:
    mode = True

    def __enter__(self):
        self._prev = _enabled
        set_grad_enabled(self.mode)
        return self

    def __exit__(self, *exc):
        set_grad_enabled(self._prev)
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
