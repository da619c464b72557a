"""``Parameter``: a tensor that a ``Module`` registers as learnable."""
from .. import tracing
from ..tensor import Tensor


class Parameter(Tensor):
    """A tensor that requires grad and that modules list in ``parameters()``.

    Shares memory (and the version counter) with the tensor it wraps.

    >>> w = gpuad.nn.Parameter(gpuad.zeros(3, 2))
    >>> w.requires_grad, isinstance(w, gpuad.Tensor)
    (True, True)
    """

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter wraps a Tensor, got {type(data).__name__}; "
                            "use Parameter(gpuad.tensor(...))")
        self._init(data._data, data._backend, data._version_counter)
        self.requires_grad = requires_grad

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


@tracing.replayable
def zero_grads(params, set_to_none=True):
    """Reset ``.grad`` of ``params``: to None, or to zeros kept outside any graph."""
    for p in params:
        if p.grad is None:
            continue
        if set_to_none:
            p.grad = None
        else:
            p.grad = p.grad.detach()
            p.grad.zero_()
