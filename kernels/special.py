"""Numba twins of special functions NumPy lacks."""
import math

import numba


@numba.vectorize(["float32(float32)", "float64(float64)"], cache=True)
def erf(x):
    """The error function, elementwise (CUDA has ``erf`` built in)."""
    return math.erf(x)
