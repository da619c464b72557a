"""Neural-network building blocks: ``Module``, layers, activations, losses.

>>> model = gpuad.nn.Sequential(gpuad.nn.Linear(64, 128), gpuad.nn.ReLU(),
...                             gpuad.nn.Linear(128, 10))
>>> loss = gpuad.nn.CrossEntropyLoss()(model(x), y)
"""
from . import functional, init  # noqa: F401
from . import activation as _activation
from .activation import *  # noqa: F401, F403  (ReLU, GELU, ...: one per activation)
from .container import Sequential
from .dropout import Dropout
from .flatten import Flatten
from .linear import Linear
from .loss import CrossEntropyLoss, MSELoss
from .module import Module
from .normalization import LayerNorm
from .parameter import Parameter

__all__ = ["Module", "Parameter", "Linear", "Sequential", *_activation.__all__, "Dropout",
           "Flatten", "LayerNorm", "CrossEntropyLoss", "MSELoss", "functional", "init"]
