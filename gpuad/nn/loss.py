"""Loss modules: ``CrossEntropyLoss`` and ``MSELoss``."""
from . import functional as F
from .module import Module


class CrossEntropyLoss(Module):
    """Mean softmax cross-entropy of logits (N, C) against int64 class indices (N,).

    >>> gpuad.nn.CrossEntropyLoss()(logits, labels)
    """

    def forward(self, logits, targets):
        return F.cross_entropy(logits, targets)


class MSELoss(Module):
    """Squared error, averaged (``reduction="mean"``), summed (``"sum"``) or kept
    elementwise (``"none"``). ``gpuad.nn.MSELoss()(pred, target)``"""

    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"MSELoss: reduction must be 'mean', 'sum' or 'none', got "
                             f"{reduction!r}")
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"
