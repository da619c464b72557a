"""Autograd: reverse mode (Function, the engine, grad), forward mode (jvp), higher order
(hvp), grad mode, anomaly detection and gradcheck."""
from .anomaly import detect_anomaly, is_anomaly_enabled
from .api import backward, grad
from .forward_ad import jvp
from .function import Function
from .functional import hvp, vjp
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck
from .saved_report import SavedTensorsReport, saved_tensors_report

__all__ = ["Function", "backward", "grad", "jvp", "vjp", "hvp", "gradcheck",
           "GradcheckError", "no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled",
           "detect_anomaly", "is_anomaly_enabled", "saved_tensors_report",
           "SavedTensorsReport"]
