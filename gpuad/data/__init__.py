"""Datasets and loaders.

>>> train_x, train_y, test_x, test_y = gpuad.data.load_digits()
>>> loader = gpuad.data.DataLoader(gpuad.data.TensorDataset(train_x, train_y),
...                                batch_size=64, shuffle=True, seed=0)
"""
from .dataset import TensorDataset
from .datasets import load_digits, load_mnist_npz
from .loader import DataLoader

__all__ = ["TensorDataset", "DataLoader", "load_digits", "load_mnist_npz"]
