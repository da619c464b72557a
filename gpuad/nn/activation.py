"""Activation modules, one per entry of the activation table (``gpuad.activations``):
``ReLU``, ``LeakyReLU(negative_slope=0.01)``, ``GELU``, ``Tanh``, ``Sigmoid``.

``fused_name`` declares which table entry a module's ``forward`` computes, with the
entry's parameter read from the attribute of that name (``negative_slope``); ``Sequential``
then runs a ``Linear`` followed by the module as one fused op. The declaration holds for
the ``forward`` of the class that makes it: a subclass that overrides ``forward`` is not
fused unless it declares ``fused_name`` itself.
"""
from .. import activations
from ..ops.activation import activate
from .module import Module


def _module_class(act):
    """The ``nn.Module`` class of table entry ``act``."""
    def __init__(self, *args, **kwargs):
        Module.__init__(self)
        param = act.bind(args, kwargs, act.module)
        if act.param is not None:
            setattr(self, act.param, param)

    def forward(self, x):
        param = act.default if act.param is None else act.check(getattr(self, act.param))
        return activate(act, x, param)

    def extra_repr(self):
        return "" if act.param is None else f"{act.param}={getattr(self, act.param)}"

    __init__.__signature__ = act.signature("self")
    cls = type(act.module, (Module,), {
        "__doc__": f"{act.doc}, elementwise: ``gpuad.nn.{act.module}()(x)``.",
        "__module__": __name__, "__init__": __init__, "forward": forward,
        "extra_repr": extra_repr, "fused_name": act.name})
    for method in (__init__, forward, extra_repr):
        method.__qualname__ = f"{act.module}.{method.__name__}"
    return cls


MODULES = {act.module: _module_class(act) for act in activations.TABLE.values()}
globals().update(MODULES)
__all__ = list(MODULES)
