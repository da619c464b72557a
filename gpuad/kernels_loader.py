"""Finds ``kernels/``: the fused CUDA C kernels and their Numba CPU twins.

In a source checkout ``kernels/`` sits beside ``gpuad/``; an installed wheel carries it
as ``gpuad/kernels`` (see pyproject.toml). Either way it is imported as ``gpuad.kernels``.
"""
import importlib
import importlib.util
import sys
from pathlib import Path

_PACKAGE = "gpuad.kernels"


def _package():
    try:
        return importlib.import_module(_PACKAGE)
    except ImportError:
        pass
    root = Path(__file__).resolve().parent.parent / "kernels"
    if not (root / "__init__.py").is_file():
        raise ImportError("gpuad's kernels/ folder is missing; reinstall gpuad")
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
