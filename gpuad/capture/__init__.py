"""``gpuad.compile``: record a training step, replay it without autograd's bookkeeping
(and, on CUDA, as CUDA graphs)."""
from .step import CompiledStep, compile

__all__ = ["compile", "CompiledStep"]
