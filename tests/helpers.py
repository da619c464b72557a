"""Helpers shared by the test files (``from helpers import leaf``)."""
import gpuad


def leaf(values, device, dtype=None):
    """A tensor of ``values`` on ``device`` that requires grad: a leaf of the graph."""
    return gpuad.tensor(values, dtype=dtype, device=device, requires_grad=True)
