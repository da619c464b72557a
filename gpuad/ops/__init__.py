"""The ops, by family. Each op is a Function subclass with its forward and backward
together, plus the function that users call."""
from . import activation, elementwise, fused, inplace, linalg, nn, reduce, shape  # noqa: F401
