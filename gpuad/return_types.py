"""The named tuples some ops return, as ``torch.return_types``: ``x.max(1)`` gives
``max(values=..., indices=...)``, which unpacks and indexes like a tuple."""
from collections import namedtuple

max = namedtuple("max", ["values", "indices"])  # noqa: A001  (PyTorch's names)
min = namedtuple("min", ["values", "indices"])  # noqa: A001
