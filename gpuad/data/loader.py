"""``DataLoader``: batches of a dataset, shuffled reproducibly, moved to a device."""
import math

import numpy as np

from ..factories import randperm, tensor
from ..ops.shape import stack
from ..tensor import Tensor
from .dataset import TensorDataset


class DataLoader:
    """Iterate over ``dataset`` in batches; every sample appears once per epoch.

    ``shuffle`` draws a new order each epoch: from ``seed`` when given (two loaders with
    the same seed give the same sequence of epochs), else from the generator seeded by
    ``gpuad.manual_seed``. ``drop_last`` skips a final short batch. ``device`` moves each
    batch there (the dataset can stay on the CPU).

    >>> loader = gpuad.data.DataLoader(ds, batch_size=64, shuffle=True, seed=0,
    ...                                device="cuda")
    >>> for x, y in loader: ...
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, seed=None, drop_last=False,
                 device=None):
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader needs a dataset with __len__ and __getitem__, got "
                            f"{type(dataset).__name__}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got "
                             f"{batch_size!r}")
        if seed is not None and not shuffle:
            raise ValueError("DataLoader: seed only orders a shuffled loader; pass "
                             "shuffle=True, or drop seed")
        self.dataset, self.batch_size = dataset, batch_size
        self.shuffle, self.drop_last, self.device = shuffle, drop_last, device
        self._rng = None if seed is None else np.random.default_rng(seed)
        if device is not None:
            from ..backends import backend_for
            from ..device import device as _device
            backend_for(_device(device))  # fails now, with its hint, if cuda is unusable

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        if not self.shuffle:
            order = np.arange(n)
        elif self._rng is not None:
            order = self._rng.permutation(n)
        else:
            order = randperm(n).numpy()
        for b in range(len(self)):
            yield self._batch(order[b * self.batch_size:(b + 1) * self.batch_size])

    def _batch(self, idx):
        if isinstance(self.dataset, TensorDataset):  # one gather per tensor, not per sample
            fields = [t[tensor(idx, device=t.device)] for t in self.dataset.tensors]
        else:
            fields = _collate([self.dataset[int(i)] for i in idx])
        if self.device is not None:
            fields = [f.to(self.device) for f in fields]
        return tuple(fields)


def _collate(samples):
    """Stack a list of samples (each a tensor, number or tuple of them) field by field."""
    first = samples[0]
    if not isinstance(first, (tuple, list)):
        samples, first = [(s,) for s in samples], (first,)
    out = []
    for k in range(len(first)):
        column = [s[k] for s in samples]
        out.append(stack(column) if isinstance(column[0], Tensor) else tensor(column))
    return out
