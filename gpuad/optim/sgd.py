"""``SGD`` with momentum, dampening, Nesterov and weight decay (PyTorch's semantics)."""
from ..factories import zeros_like
from .optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent, updated by the backend's fused ``sgd_step``.

    >>> opt = gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    >>> loss.backward(); opt.step(); opt.zero_grad()
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False,
                 weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      nesterov=nesterov, weight_decay=weight_decay))

    def check_hyperparameters(self, group):
        super().check_hyperparameters(group)
        if group["momentum"] < 0:
            raise ValueError(f"invalid momentum {group['momentum']}; it must be >= 0")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")

    def update(self, group, p, state):
        momentum, dampening = group["momentum"], group["dampening"]
        buf = None
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                # PyTorch's first step sets buf = grad undamped: a zero buffer updated
                # with dampening 0 gives exactly that
                buf = state["momentum_buffer"] = zeros_like(p)
                dampening = 0.0
        p._backend.sgd_step(p.data, p.grad.data, None if buf is None else buf.data,
                            group["lr"], momentum, dampening, group["nesterov"],
                            group["weight_decay"])
