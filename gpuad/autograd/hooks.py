"""Gradient hooks on tensors, with removable handles."""
from .. import tracing


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` takes the hook off again."""

    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)
            tracing.state_changed()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def register_tensor_hook(tensor, hook):
    """Call ``hook(grad)`` whenever ``tensor``'s gradient is computed."""
    if not tensor.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that does not require grad")
    if not callable(hook):
        raise TypeError(f"hook must be callable, got {type(hook).__name__}")
    if tensor.grad_fn is None:
        if tensor._hooks is None:
            tensor._hooks = []
        hooks = tensor._hooks
        hooks.append(hook)
    else:
        hooks = tensor.grad_fn.node.add_hook(tensor._output_nr, hook)
    tracing.state_changed()
    return RemovableHandle(hooks, hook)
