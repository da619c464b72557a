"""Optimizers and learning-rate schedulers.

>>> opt = gpuad.optim.Adam(model.parameters(), lr=1e-3)
>>> sched = gpuad.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20)
>>> loss.backward(); opt.step(); opt.zero_grad(); sched.step()
"""
from . import lr_scheduler  # noqa: F401
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]
