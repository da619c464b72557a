"""Neural-network building blocks: ``Module``, layers, activations, losses.

>>> model = gpuad.nn.Sequential(gpuad.nn.Linear(64, 128), gpuad.nn.ReLU(),
...                             gpuad.nn.Linear(128, 10))
>>> loss = gpuad.nn.CrossEntropyLoss()(model(x), y)
"""
from . import functional, init  # noqa: F401
from .activation import GELU, LeakyReLU, ReLU, Sigmoid, Tanh
from .container import Sequential
from .dropout import Dropout
from .flatten import Flatten
from .linear import Linear
from .loss import CrossEntropyLoss, MSELoss
from .module import Module
from .normalization import LayerNorm
from .parameter import Parameter

__all__ = ["Module", "Parameter", "Linear", "Sequential", "ReLU", "LeakyReLU", "GELU", "Tanh",
           "Sigmoid", "Dropout", "Flatten", "LayerNorm", "CrossEntropyLoss", "MSELoss",
           "functional", "init"]
