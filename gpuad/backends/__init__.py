"""The seam between the engine and the array libraries.

Every op reaches NumPy or CuPy only through a backend object: ``backend.xp`` is the
array module, and the methods of the backend are the few things that differ between
devices (random numbers, scatter-add, erf, fused kernels, host transfers).
"""
import threading

from ..device import device as _device
from .cpu import CPUBackend

_backends = {}
_creating = threading.Lock()  # two threads asking first must get one backend, not two


def backend_for(dev):
    """The backend that runs ops for ``dev`` (created on first use; one per device,
    shared by every thread)."""
    dev = _device(dev)
    b = _backends.get(dev)
    if b is None:
        with _creating:
            b = _backends.get(dev)
            if b is None:
                if dev.type == "cpu":
                    b = CPUBackend(dev)
                else:
                    from .cuda import CUDABackend  # imports CuPy; only when cuda is asked for
                    b = CUDABackend(dev)
                _backends[dev] = b
    return b


def created_backends():
    """Backends made so far (for seeding every generator)."""
    return list(_backends.values())
