"""gpuad.data: datasets, the DataLoader's coverage and seeding, digits and MNIST files."""
import numpy as np
import pytest

import gpuad
from gpuad.data import DataLoader, TensorDataset, load_digits, load_mnist_npz


def _ds(n=10):
    return TensorDataset(gpuad.arange(n).float()[:, None] * gpuad.ones(n, 2), gpuad.arange(n))


def _epoch(loader):
    return [y.tolist() for _, y in loader]


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("n,batch", [(10, 3), (12, 4), (5, 8)])
def test_every_sample_once_per_epoch(n, batch, shuffle):
    loader = DataLoader(_ds(n), batch_size=batch, shuffle=shuffle)
    for _ in range(3):
        batches = _epoch(loader)
        assert sorted(sum(batches, [])) == list(range(n))
        assert len(batches) == len(loader) == -(-n // batch)
        assert all(len(b) == batch for b in batches[:-1])


def test_batches_keep_rows_together():
    for x, y in DataLoader(_ds(), batch_size=4, shuffle=True, seed=1):
        assert x.shape == (len(y), 2) and x[:, 0].tolist() == [float(v) for v in y.tolist()]


def test_drop_last():
    loader = DataLoader(_ds(10), batch_size=3, shuffle=True, seed=0, drop_last=True)
    batches = _epoch(loader)
    assert len(loader) == len(batches) == 3 and all(len(b) == 3 for b in batches)
    assert len(set(sum(batches, []))) == 9


def test_seeded_shuffle_is_reproducible_and_varies_by_epoch():
    a = DataLoader(_ds(20), batch_size=5, shuffle=True, seed=7)
    b = DataLoader(_ds(20), batch_size=5, shuffle=True, seed=7)
    first, second = _epoch(a), _epoch(a)
    assert first == _epoch(b) and second == _epoch(b)
    assert first != second
    assert sum(first, []) != list(range(20))
    assert _epoch(DataLoader(_ds(20), batch_size=5, shuffle=True, seed=8)) != first


def test_unseeded_shuffle_follows_manual_seed():
    gpuad.manual_seed(4)
    a = _epoch(DataLoader(_ds(20), batch_size=5, shuffle=True))
    gpuad.manual_seed(4)
    assert _epoch(DataLoader(_ds(20), batch_size=5, shuffle=True)) == a


def test_generic_dataset_is_collated():
    class Squares:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return gpuad.tensor([float(i)]), i * i

    (x, y), *_ = DataLoader(Squares(), batch_size=3)
    assert x.shape == (3, 1) and y.tolist() == [0, 1, 4]


def test_device_move(device):
    x, y = next(iter(DataLoader(_ds(), batch_size=4, device=device)))
    assert x.device == gpuad.device(device) and y.device == gpuad.device(device)


@pytest.mark.parametrize("kwargs,match", [
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=2.5), "batch_size"),
    (dict(seed=3), "shuffle=True"),
])
def test_loader_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataLoader(_ds(), **kwargs)
    with pytest.raises(TypeError, match="__len__"):
        DataLoader(object())


def test_tensor_dataset_errors():
    with pytest.raises(ValueError, match="different numbers of samples"):
        TensorDataset(gpuad.zeros(3, 2), gpuad.zeros(4))
    with pytest.raises(TypeError, match="first"):
        TensorDataset(np.zeros(3))


def test_load_digits():
    pytest.importorskip("sklearn")
    train_x, train_y, test_x, test_y = load_digits()
    assert train_x.shape == (1438, 64) and test_x.shape == (359, 64)
    assert train_x.dtype == gpuad.float32 and train_y.dtype == gpuad.int64
    assert sorted(set(train_y.tolist())) == list(range(10))
    x = train_x.numpy()
    assert abs(x.mean()) < 1e-5 and abs(x.std() - 1) < 1e-4
    assert abs(test_x.numpy().mean()) < 0.1  # scaled with the train statistics, not its own
    again = load_digits()
    assert np.array_equal(again[2].numpy(), test_x.numpy())
    assert not np.array_equal(load_digits(seed=1)[3].numpy(), test_y.numpy())
    assert load_digits(test_fraction=0.5)[2].shape == (898, 64)
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits(test_fraction=1.0)


def _write_mnist(path, n_train=6, n_test=4, **override):
    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.integers(0, 256, (n_train, 5, 5), dtype=np.uint8),
                  y_train=rng.integers(0, 10, n_train, dtype=np.uint8),
                  x_test=rng.integers(0, 256, (n_test, 5, 5), dtype=np.uint8),
                  y_test=rng.integers(0, 10, n_test, dtype=np.uint8))
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays


def test_load_mnist_npz(tmp_path):
    path = tmp_path / "mnist.npz"
    raw = _write_mnist(path)
    train_x, train_y, test_x, test_y = load_mnist_npz(path)
    assert train_x.shape == (6, 25) and test_x.shape == (4, 25)
    assert train_y.dtype == gpuad.int64 and train_y.tolist() == raw["y_train"].tolist()
    assert abs(train_x.numpy().mean()) < 1e-5 and abs(train_x.numpy().std() - 1) < 1e-4


def test_load_mnist_npz_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.npz.*x_train, y_train, x_test"):
        load_mnist_npz(tmp_path / "nothere.npz")
    path = tmp_path / "partial.npz"
    _write_mnist(path, y_test=None)
    with pytest.raises(ValueError, match="partial.npz.*lacks y_test"):
        load_mnist_npz(path)
    bad = tmp_path / "garbage.npz"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="garbage.npz"):
        load_mnist_npz(bad)
    shapes = tmp_path / "shapes.npz"
    _write_mnist(shapes, y_train=np.zeros(5, np.int64))
    with pytest.raises(ValueError, match="x_train must be"):
        load_mnist_npz(shapes)
    pickled = tmp_path / "pickled.npz"
    _write_mnist(pickled, y_test=np.array([object()] * 4))
    with pytest.raises(ValueError, match="pickled.npz"):
        load_mnist_npz(pickled)
