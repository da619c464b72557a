"""``Sequential``: modules applied in order, a Linear and its activation fused."""
from collections import OrderedDict

from ..ops.fused import linear_act
from .linear import Linear
from .module import Module


class Sequential(Module):
    """Apply modules one after another; indexable, sliceable, ``len`` and iteration.

    A ``Linear`` directly followed by an activation module that ``linear_act`` knows
    (ReLU, GELU, Tanh, Sigmoid, LeakyReLU(0.01)) runs as that one fused op, unless
    either module has forward hooks; the result equals the unfused path.

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
            act = _fusable_activation(mods[i], mods[i + 1] if i + 1 < len(mods) else None)
            if act is None:
                x = mods[i](x)
                i += 1
            else:
                lin = mods[i]
                lin.check_input(x)
                x = linear_act(x, lin.weight, lin.bias, act)
                i += 2
        return x


def _fusable_activation(first, second):
    """The fused name of ``second`` when ``first, second`` can run as one ``linear_act``."""
    if type(first) is not Linear or second is None or first._forward_hooks or \
            second._forward_hooks:
        return None
    return getattr(second, "fused_name", None)
