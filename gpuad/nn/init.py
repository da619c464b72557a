"""Parameter initialisers (in place, under no_grad), as in ``torch.nn.init``."""
import math

from ..autograd import grad_mode
from ..factories import rand


def uniform_(t, a=0.0, b=1.0):
    """Fill ``t`` with samples uniform in ``[a, b)`` from gpuad's seeded generator.

    >>> gpuad.nn.init.uniform_(gpuad.empty(3), -1, 1)
    """
    with grad_mode.no_grad():
        return t.copy_(rand(t.shape, dtype=t.dtype, device=t.device) * (b - a) + a)


def kaiming_uniform_(t, a=0.0):
    """He-uniform fill for a layer followed by leaky ReLU of slope ``a``: bound
    ``sqrt(6 / ((1 + a²) · fan_in))``, fan_in being ``t.shape[1]`` times the rest.

    >>> gpuad.nn.init.kaiming_uniform_(gpuad.empty(4, 3), a=math.sqrt(5))
    """
    if t.numel() == 0:  # nothing to fill (and no fan-in to divide by), as in PyTorch
        return t
    bound = math.sqrt(6.0 / ((1 + a * a) * fan_in(t)))
    return uniform_(t, -bound, bound)


def fan_in(t):
    """Inputs per output unit of a weight of shape (out, in, *kernel)."""
    if t.ndim < 2:
        raise ValueError(f"fan_in needs a weight with at least 2 dims, got shape {t.shape}")
    return t.shape[1] * math.prod(t.shape[2:])
