"""gpuad: a GPU-accelerated tensor autograd library with PyTorch's habits.

>>> import gpuad
>>> a = gpuad.tensor(2., requires_grad=True); b = gpuad.tensor(0., requires_grad=True)
>>> c = (a - b) ** 2; c.backward()
>>> a.grad, b.grad
(tensor(4.), tensor(-4.))
"""
from .tensor import Tensor  # first: the autograd and ops modules import it
from . import autograd, cuda, nn  # noqa: F401, E402
from .autograd import enable_grad, no_grad, set_grad_enabled, is_grad_enabled
from .device import device, get_default_device, set_default_device
from .dtypes import (bool_ as bool, float16, float32, float64, int32, int64,  # noqa: A004
                     get_default_dtype, set_default_dtype)
from .factories import (arange, empty, empty_like, from_numpy, full, full_like, ones,
                        ones_like, rand, rand_like, randint, randn, randn_like, randperm,
                        tensor, zeros, zeros_like)
from .ops.activation import *  # noqa: F401, F403  (relu, gelu, ...: one per activation)
from .ops.elementwise import (abs, bitwise_and, bitwise_left_shift, bitwise_not, bitwise_or,
                              bitwise_right_shift, bitwise_xor, clamp, erf, exp, log, logical_and,
                              logical_not, logical_or, logical_xor, maximum, minimum, sign,
                              sqrt, where)
from .ops.linalg import matmul
from .ops.nn import log_softmax, softmax
from .ops.reduce import (all, amax, amin, any, argmax, argmin,  # noqa: A004 (PyTorch's names)
                         logsumexp, max, mean, min, std, sum, var)
from . import return_types  # noqa: F401, E402
from .ops.shape import cat, chunk, flatten, permute, reshape, split, squeeze, stack, \
    transpose, unsqueeze
from .random_state import initial_seed, manual_seed
from . import optim, data  # noqa: F401, E402
from . import memory  # noqa: F401, E402
from .autograd.checkpoint import checkpoint
from .capture import compile  # noqa: A004
from .serialization import save, load

__version__ = "0.1.0"
