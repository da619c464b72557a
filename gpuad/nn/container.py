"""``Sequential``: modules applied in order, a Linear and its activation fused."""
from collections import OrderedDict

from .. import activations
from ..ops.fused import linear_act
from .linear import Linear
from .module import Module


class Sequential(Module):
    """Apply modules one after another; indexable, sliceable, ``len`` and iteration.

    A ``Linear`` directly followed by an activation module (ReLU, LeakyReLU with any slope,
    GELU, Tanh, Sigmoid: any module whose class declares ``fused_name`` for its own
    ``forward``, see ``gpuad.nn.activation``) runs as one fused ``linear_act``; the result
    equals the unfused path. A module with forward hooks or pre-hooks, a subclass that
    overrides ``forward`` without declaring it, and a forward set on an instance run
    unfused.

    >>> model = gpuad.nn.Sequential(gpuad.nn.Linear(64, 32), gpuad.nn.ReLU(),
    ...                             gpuad.nn.Linear(32, 10))
    >>> model(gpuad.randn(8, 64)).shape, len(model), model[0]
    ((8, 10), 3, Linear(in_features=64, out_features=32, bias=True))
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            modules = modules[0].items()
        else:
            modules = ((str(i), m) for i, m in enumerate(modules))
        for name, m in modules:
            if not isinstance(m, Module):
                raise TypeError(f"Sequential takes Modules, got {type(m).__name__} at {name!r}")
            setattr(self, name, m)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        mods = list(self._modules.items())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(mods[idx]))
        try:
            return mods[idx][1]
        except (IndexError, TypeError):
            raise IndexError(f"Sequential index {idx!r} out of range for {len(mods)} "
                             "modules") from None

    def append(self, module):
        """Add ``module`` at the end; returns self."""
        if not isinstance(module, Module):
            raise TypeError(f"Sequential.append takes a Module, got {type(module).__name__}")
        setattr(self, str(len(self)), module)
        return self

    def forward(self, x):
        mods = list(self._modules.values())
        i = 0
        while i < len(mods):
            fused = _fused_activation(mods[i], mods[i + 1]) if i + 1 < len(mods) else None
            if fused is None:
                x = mods[i](x)
                i += 1
            else:
                lin = mods[i]
                lin.check_input(x)
                x = linear_act(x, lin.weight, lin.bias, *fused)
                i += 2
        return x


def _fused_activation(first, second):
    """``(activation, param)`` when ``first, second`` can run as one ``linear_act``: a
    Linear, and a module whose forward is defined by a class declaring ``fused_name``,
    each called as that forward alone."""
    if type(first) is not Linear and _owner(type(first), "forward") is not Linear:
        return None
    owner = _owner(type(second), "forward")
    name = None if owner is None else owner.__dict__.get("fused_name")
    if not isinstance(name, str) or not (_plain_call(first) and _plain_call(second)):
        return None
    try:
        act = activations.get(name)
    except ValueError as e:
        raise ValueError(f"{owner.__name__}.fused_name: {e}") from None
    return name, None if act.param is None else getattr(second, act.param)


def _owner(cls, attr):
    """The class in ``cls``'s MRO that defines ``attr`` (a loop: a generator costs 5x)."""
    for c in cls.__mro__:
        if attr in c.__dict__:
            return c
    return None


def _plain_call(m):
    """Calling ``m`` runs its class's forward and nothing else: Module's ``__call__``, no
    hooks, no forward set on the instance."""
    return (type(m).__call__ is Module.__call__ and not m._forward_hooks
            and not m._forward_pre_hooks and "forward" not in m.__dict__)
