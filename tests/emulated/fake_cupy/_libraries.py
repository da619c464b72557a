"""The CUDA libraries CuPy 14 loads through cuda-pathfinder on first use, and a switch that
makes some missing, as on a machine with a driver but without the toolkit's wheels
(``missing("curand")``): ``cupy.cuda.curand`` and ``cupy.cuda.cublas`` (``cupy/cuda/
__init__.py``: ``__getattr__``), ``cupy.random.RandomState`` and ``matmul`` then raise
CuPy's ImportError, and NVRTC (``_cnvrtc.pxi``: ``_get_softlink``, loaded at the first
NVRTC call: ``getVersion``, every ``RawModule`` compile) pathfinder's
DynamicLibNotFoundError."""
import contextlib

#: the file each library is looked up by (CUDA 13's sonames, as the real wheel asks)
SONAMES = {"curand": "libcurand.so.10", "cublas": "libcublasLt.so.13 or libcublasLt.so.12",
           "nvrtc": "libnvrtc.so.13"}
_missing = set()


class DynamicLibNotFoundError(RuntimeError):
    """``cuda.pathfinder.DynamicLibNotFoundError``."""


DynamicLibNotFoundError.__module__ = "cuda.pathfinder._dynamic_libs.load_dl_common"


def load(name):
    """Load library ``name`` (a key of SONAMES), as CuPy does before its first use."""
    if name in _missing:
        so = SONAMES[name]
        message = f'Failure finding "{so}": No such file: {so}'
        raise DynamicLibNotFoundError(message) if name == "nvrtc" else ImportError(message)


@contextlib.contextmanager
def missing(*names):
    """While open, the libraries ``names`` are not installed."""
    unknown = set(names) - set(SONAMES)
    if unknown:
        raise ValueError(f"unknown libraries {sorted(unknown)}; known: {sorted(SONAMES)}")
    before = set(_missing)
    _missing.update(names)
    try:
        yield
    finally:
        _missing.clear()
        _missing.update(before)
