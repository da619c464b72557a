"""Real datasets as ready tensors: scikit-learn's bundled digits, and MNIST from an
``.npz`` the user already has."""
import os
import zipfile

import numpy as np

from .. import dtypes
from ..factories import tensor

MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_digits(device=None, seed=0, test_fraction=0.2):
    """The 1,797 real 8x8 handwritten digits bundled with scikit-learn (no download).

    Returns ``(train_x, train_y, test_x, test_y)``: float32 (N, 64) pixels standardised
    with the training set's mean and std, int64 labels 0-9. The split is a seeded
    permutation, so a seed gives the same split everywhere.

    >>> train_x, train_y, test_x, test_y = gpuad.data.load_digits()
    >>> train_x.shape, test_x.shape
    ((1438, 64), (359, 64))
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"load_digits: test_fraction must be between 0 and 1, got "
                         f"{test_fraction}")
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise ImportError("load_digits needs scikit-learn (it ships the data); install it "
                          "with: pip install scikit-learn") from None
    bunch = sk_load_digits()
    x, y = bunch.data.astype(np.float32), bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return _as_tensors(x[train], y[train], x[test], y[test], device)


def load_mnist_npz(path, device=None):
    """MNIST (or any images + labels) from an ``.npz`` with arrays ``x_train``,
    ``y_train``, ``x_test``, ``y_test``, like Keras' ``mnist.npz``; never unpickles.

    Images (N, H, W) or (N, D) are flattened to float32 (N, H*W) and standardised with
    the training set's mean and std; labels become int64.

    >>> train_x, train_y, test_x, test_y = gpuad.data.load_mnist_npz("mnist.npz")
    """
    path = os.fspath(path)
    need = f"an .npz with arrays {', '.join(MNIST_KEYS)} (like Keras' mnist.npz)"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_mnist_npz: no file {path!r}; it should be {need}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in MNIST_KEYS if k not in archive.files]
            if missing:
                raise ValueError(f"it lacks {', '.join(missing)} (it has "
                                 f"{', '.join(archive.files) or 'no arrays'})")
            arrays = {k: archive[k] for k in MNIST_KEYS}
    except ValueError as e:
        raise ValueError(f"load_mnist_npz: {path!r} is not {need}: {e}") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as e:  # truncated or foreign
        raise ValueError(f"load_mnist_npz: cannot read {path!r} as {need}: "
                         f"{type(e).__name__}: {e}") from None
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim not in (2, 3) or y.ndim != 1 or len(x) != len(y) or y.dtype.kind not in "iu":
            raise ValueError(f"load_mnist_npz: {path!r}: x_{split} must be (N, H, W) or "
                             f"(N, D) and y_{split} (N,) integer labels; got shapes "
                             f"{x.shape} and {y.shape} ({y.dtype})")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise ValueError(f"load_mnist_npz: {path!r}: train images {arrays['x_train'].shape[1:]}"
                         f" and test images {arrays['x_test'].shape[1:]} differ in shape")
    flat = {k: arrays[k].reshape(len(arrays[k]), -1).astype(np.float32)
            for k in ("x_train", "x_test")}
    return _as_tensors(flat["x_train"], arrays["y_train"], flat["x_test"], arrays["y_test"],
                       device)


def _as_tensors(train_x, train_y, test_x, test_y, device):
    """Standardise with the training pixels' overall mean and std (one pair, not one per
    pixel: a pixel nearly constant in training would blow up in test) and make tensors."""
    mean, std = train_x.mean(), train_x.std()
    std = std if std > 0 else 1.0
    scale = lambda x: ((x - mean) / std).astype(np.float32)  # noqa: E731
    return (tensor(scale(train_x), device=device),
            tensor(train_y.astype(np.int64), device=device, dtype=dtypes.int64),
            tensor(scale(test_x), device=device),
            tensor(test_y.astype(np.int64), device=device, dtype=dtypes.int64))
