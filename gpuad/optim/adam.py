"""``Adam`` and ``AdamW`` (PyTorch's semantics and defaults)."""
from ..factories import zeros_like
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam, updated by the backend's fused ``adam_step``; ``weight_decay`` is added to
    the gradient (L2), as in ``torch.optim.Adam``.

    >>> opt = gpuad.optim.Adam(model.parameters(), lr=1e-3)
    """

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay))

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        b1, b2 = group["betas"]
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"invalid betas {group['betas']}; each must be in [0, 1)")
        if group["eps"] < 0:
            raise ValueError(f"invalid eps {group['eps']}; it must be >= 0")

    def update(self, group, p, state):
        if not state:
            state.update(step=0, exp_avg=zeros_like(p), exp_avg_sq=zeros_like(p))
        state["step"] += 1
        b1, b2 = group["betas"]
        p._backend.adam_step(p.data, p.grad.data, state["exp_avg"].data,
                             state["exp_avg_sq"].data, state["step"], group["lr"], b1, b2,
                             group["eps"], group["weight_decay"], self.decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay (``p *= 1 - lr * weight_decay``), default 0.01.

    >>> opt = gpuad.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    """

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)
