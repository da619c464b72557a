"""``gpuad.nn.functional``: activations, softmaxes, losses and dropout as functions."""
from ..ops import activation as _activation
from ..ops.activation import *  # noqa: F401, F403  (relu, gelu, ...: one per activation)
from ..ops.fused import linear
from ..ops.nn import cross_entropy, dropout, log_softmax, mse_loss, nll_loss, softmax

__all__ = ["linear", *_activation.__all__, "softmax", "log_softmax", "cross_entropy",
           "nll_loss", "mse_loss", "dropout"]
