"""``TensorDataset``: samples are rows of tensors sharing their first dimension."""
from ..tensor import Tensor


class TensorDataset:
    """Sample ``i`` is ``tuple(t[i] for t in tensors)``.

    >>> ds = gpuad.data.TensorDataset(x, y)      # x: (N, 64), y: (N,)
    >>> len(ds), ds[0][0].shape
    (N, (64,))
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        for t in tensors:
            if not isinstance(t, Tensor) or t.ndim == 0:
                got = "a 0-d tensor" if isinstance(t, Tensor) else type(t).__name__
                raise TypeError("TensorDataset takes tensors with a first (sample) dimension, "
                                f"got {got}; convert with gpuad.tensor(...)")
        sizes = [len(t) for t in tensors]
        if len(set(sizes)) != 1:
            raise ValueError(f"TensorDataset: the tensors hold different numbers of samples "
                             f"{sizes}; their first dimensions must match")
        self.tensors = tensors

    def __len__(self):
        return len(self.tensors[0])

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)
