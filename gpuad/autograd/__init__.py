"""Reverse-mode autograd: Function, the engine, grad mode, gradcheck."""
from .api import backward, grad
from .function import Function
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck

__all__ = ["Function", "backward", "grad", "gradcheck", "GradcheckError", "no_grad",
           "enable_grad", "is_grad_enabled", "set_grad_enabled"]
