"""The backend surface is declared once, in ``Backend``: every device backend implements
its device methods and adds none of its own; kernels load from the imported gpuad's own
``kernels/``; memory/ and backends/ import neither Tensor nor autograd."""
import importlib
import sys
import types
import warnings
from pathlib import Path

import pytest

import gpuad
from gpuad import kernels_loader
from gpuad.backends.base import Backend
from gpuad.backends.cpu import CPUBackend
from gpuad.backends.cuda import CUDABackend

BACKENDS = [CPUBackend, CUDABackend]


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_a_backend_implements_every_device_method(backend):
    missing = [m for m in Backend.DEVICE_METHODS
               if getattr(backend, m) is getattr(Backend, m)]
    assert not missing


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_a_backend_offers_nothing_the_base_does_not_declare(backend):
    own = {name for klass in backend.__mro__ if klass not in Backend.__mro__
           for name, v in vars(klass).items() if callable(v) and not name.startswith("_")}
    assert own - set(dir(Backend)) == set()


def test_a_device_method_left_out_names_itself():
    class Half(Backend):
        name = "half"
    with pytest.raises(NotImplementedError, match=r"Half does not implement Backend\.rand"):
        Half().rand((2,), gpuad.float32)


def test_out_of_range_targets_are_checked_by_the_backend():
    with pytest.raises(IndexError, match="target 3 is out of range for 3 classes"):
        gpuad.nn.functional.cross_entropy(gpuad.zeros(2, 3), gpuad.tensor([0, 3]))


def test_kernels_come_from_the_imported_gpuad_not_another_installed_copy(monkeypatch, tmp_path):
    """An installed ``gpuad.kernels`` (imported first, from elsewhere) is not used: edits
    in this checkout's kernels/ are what runs."""
    other = tmp_path / "kernels"
    other.mkdir()
    (other / "__init__.py").write_text("")
    stale = types.ModuleType("gpuad.kernels")
    stale.__file__ = str(other / "__init__.py")
    stale.__path__ = [str(other)]
    saved = {n: m for n, m in sys.modules.items() if n.startswith("gpuad.kernels")}
    try:
        for name in saved:
            del sys.modules[name]
        sys.modules["gpuad.kernels"] = stale
        mine = Path(gpuad.__file__).resolve().parent.parent / "kernels"
        assert kernels_loader.kernels_dir() == mine
        assert Path(kernels_loader.load("activation").__file__).parent == mine
    finally:
        for name in [n for n in sys.modules if n.startswith("gpuad.kernels")]:
            del sys.modules[name]
        sys.modules.update(saved)
    importlib.invalidate_caches()


def test_memory_and_backends_sit_below_tensor_and_autograd():
    """Neither package imports Tensor, autograd or anything built on them."""
    for package in ("memory", "backends"):
        for path in (Path(gpuad.__file__).parent / package).glob("*.py"):
            text = path.read_text()
            for above in ("tensor", "autograd", "ops", "nn", "capture", "factories"):
                assert f"from ..{above}" not in text, f"{package}/{path.name} imports {above}"


def test_scatter_add_takes_cupys_add_at_not_the_deprecated_scatter_add(device):
    x = gpuad.zeros(4, device=device, requires_grad=True)
    idx = gpuad.tensor([0, 2, 2], device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # cupyx.scatter_add warns
        x[idx].sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 2.0, 0.0]
