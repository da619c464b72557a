"""Finds ``kernels/``: the fused CUDA C kernels and their Numba CPU twins.

The kernels loaded are always the ones that belong to the imported ``gpuad``: an
installed wheel carries them as ``gpuad/kernels`` inside the package (see
pyproject.toml), a source checkout as ``kernels/`` beside ``gpuad/``. Either way they are
imported as ``gpuad.kernels``; a ``gpuad.kernels`` from another place (an installed
copy, when this ``gpuad`` is a second checkout) is never used.
"""
import functools
import importlib
import importlib.util
import sys
import threading
from pathlib import Path

_PACKAGE = "gpuad.kernels"
_HERE = Path(__file__).resolve().parent
_lock = threading.Lock()


@functools.cache
def _root():
    for root in (_HERE / "kernels", _HERE.parent / "kernels"):  # a wheel, a checkout
        if (root / "__init__.py").is_file():
            return root
    raise ImportError(f"gpuad's kernels/ folder is missing (looked in {_HERE} and "
                      f"{_HERE.parent}); reinstall gpuad")


def _package():
    root = _root()
    with _lock:
        module = sys.modules.get(_PACKAGE)
        if module is not None and Path(module.__file__).resolve().parent == root:
            return module
        for name in [n for n in sys.modules if n.startswith(_PACKAGE + ".")]:
            del sys.modules[name]  # twins of another gpuad.kernels
        spec = importlib.util.spec_from_file_location(
            _PACKAGE, root / "__init__.py", submodule_search_locations=[str(root)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[_PACKAGE] = module
        spec.loader.exec_module(module)
        return module


def kernels_dir():
    """The folder holding the ``.cu`` sources and the Numba twins."""
    return Path(_package().__file__).parent


def load(name):
    """The Numba twin module ``kernels/<name>.py``."""
    _package()
    return importlib.import_module(f"{_PACKAGE}.{name}")


def cuda_source(name):
    """The CUDA C text of ``kernels/<name>.cu``."""
    return (kernels_dir() / f"{name}.cu").read_text()
