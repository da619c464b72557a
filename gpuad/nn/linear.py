"""``Linear``: ``y = x @ W.T + b``."""
import math

from ..factories import empty
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


class Linear(Module):
    """A fully connected layer with weight (out_features, in_features) and PyTorch's
    default init: kaiming_uniform(a=sqrt(5)) weight, bias uniform in ±1/sqrt(in_features).

    >>> gpuad.nn.Linear(64, 10)(gpuad.randn(32, 64)).shape
    (32, 10)
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise ValueError(f"Linear: {name} must be a non-negative int, got {n!r}")
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(empty(out_features, in_features, device=device, dtype=dtype))
        self.bias = Parameter(empty(out_features, device=device, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """Draw fresh weights (and bias) from gpuad's seeded generator."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:  # zeros without inputs, as in PyTorch
            bound = 1 / math.sqrt(self.in_features) if self.in_features else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        self.check_input(x)
        return F.linear(x, self.weight, self.bias)

    def check_input(self, x):
        """Raise a clear error unless ``x``'s last dimension is ``in_features``."""
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(f"Linear({self.in_features}, {self.out_features}) expects inputs "
                             f"whose last dimension is {self.in_features}, got shape "
                             f"{tuple(x.shape)}")

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
