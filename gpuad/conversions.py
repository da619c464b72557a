"""The conversion shorthands ``Tensor`` and ``Module`` share: each one is a ``to(...)``."""
from . import dtypes


class Conversions:
    """``cuda()``, ``cpu()``, ``float()``, ``double()`` and ``half()``, each ``self.to``."""

    __slots__ = ()

    def cuda(self, device="cuda"):
        """On a GPU: ``to("cuda")`` (``cuda:0`` unless ``device`` says another)."""
        return self.to(device)

    def cpu(self):
        return self.to("cpu")

    def float(self):
        return self.to(dtypes.float32)

    def double(self):
        return self.to(dtypes.float64)

    def half(self):
        return self.to(dtypes.float16)
