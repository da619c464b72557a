"""``cupyx``: ``scatter_add`` (deprecated in CuPy 14, as the real one warns) and
``cupyx.scipy.special.erf`` with the real ufunc's type table (float16 in, float64 out)."""
import math

import numpy as np

from ._names import NAMES
from ._ufunc import ufunc

try:
    from scipy.special import erf as _erf
except ImportError:  # the same values, slower
    _erf = np.vectorize(math.erf, otypes=[np.float64])


def scatter_add(a, slices, value):
    a.scatter_add(slices, value)


_info = NAMES["ufuncs"]["cupyx.scipy.special.erf"]
erf = ufunc("cupyx_scipy_special_erf", _erf, _info["nin"], _info["nout"], _info["types"])
