"""Devices: ``gpuad.device("cpu")``, ``"cuda"``, ``"cuda:1"``, and the default device."""
from .thread_state import local as _tls


class device:
    """A device a tensor lives on, PyTorch-style: ``device("cuda:0").type == "cuda"``."""

    __slots__ = ("type", "index")

    def __init__(self, spec, index=None):
        if isinstance(spec, device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device must be a string like 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, num = spec.strip().lower().partition(":")
        if kind not in ("cpu", "cuda") or (num and not num.isdigit()):
            raise ValueError(f"unknown device {spec!r}; expected 'cpu', 'cuda' or 'cuda:N'")
        if num and index is not None:
            raise ValueError(f"device {spec!r} already names an index; drop index={index}")
        if num:
            index = int(num)
        if kind == "cpu":
            if index not in (None, 0):
                raise ValueError(f"there is one cpu device; got index {index}")
            index = None
        elif index is None:
            index = 0
        self.type, self.index = kind, index

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = device(other)
            except ValueError:
                return False
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type='{self.type}'" + (
            "" if self.index is None else f", index={self.index}") + ")"


_CPU = device("cpu")


def get_default_device():
    """The device factories use in this thread when none is given (cpu unless set)."""
    return _tls.state.device or _CPU


def set_default_device(dev):
    """Choose the device that factories use when none is given, e.g. ``"cuda"``, for the
    calling thread (as ``torch.set_default_device``: other threads keep theirs, and a new
    thread starts on the CPU); ``None`` goes back to the CPU."""
    if dev is not None:
        dev = device(dev)
        from .backends import backend_for
        backend_for(dev)  # fails early, with the install hint, if cuda is not usable
    _tls.state.device = dev


def as_device(dev):
    """``None`` means the default device; strings and devices are parsed."""
    return (_tls.state.device or _CPU) if dev is None else device(dev)
