"""Activation modules. ``fused_name`` is the name ``ops.fused.linear_act`` knows the
activation by, so that ``Sequential`` can fuse it with a preceding ``Linear``."""
from . import functional as F
from .module import Module


class ReLU(Module):
    """``max(x, 0)`` elementwise. ``gpuad.nn.ReLU()(gpuad.tensor([-1., 2.]))`` → [0, 2]."""

    fused_name = "relu"

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    """``x`` where positive, ``negative_slope * x`` elsewhere. ``gpuad.nn.LeakyReLU(0.1)``"""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    @property
    def fused_name(self):
        # the fused op knows only the default slope
        return "leaky_relu" if self.negative_slope == 0.01 else None

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class GELU(Module):
    """``x * Phi(x)`` (the exact, erf-based GELU). ``gpuad.nn.GELU()(x)``"""

    fused_name = "gelu"

    def forward(self, x):
        return F.gelu(x)


class Tanh(Module):
    """``tanh(x)`` elementwise. ``gpuad.nn.Tanh()(x)``"""

    fused_name = "tanh"

    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` elementwise. ``gpuad.nn.Sigmoid()(x)``"""

    fused_name = "sigmoid"

    def forward(self, x):
        return F.sigmoid(x)
