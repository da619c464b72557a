"""``gpuad.nn.functional``: activations, softmaxes, losses and dropout as functions."""
from ..ops.elementwise import gelu, leaky_relu, relu, sigmoid, softplus, tanh
from ..ops.fused import linear
from ..ops.nn import cross_entropy, dropout, log_softmax, mse_loss, nll_loss, softmax

__all__ = ["linear", "relu", "leaky_relu", "gelu", "tanh", "sigmoid", "softplus", "softmax",
           "log_softmax", "cross_entropy", "nll_loss", "mse_loss", "dropout"]
