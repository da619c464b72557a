"""``Dropout``: random zeroing while training, identity in eval mode."""
from . import functional as F
from .module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` in training mode and scale the rest by
    ``1/(1-p)``; identity after ``model.eval()``.

    >>> drop = gpuad.nn.Dropout(0.2); y = drop(x); drop.eval(); drop(x) is x
    True
    """

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be a probability between 0 and 1, got {p}")
        self.p = float(p)

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"
