"""A machine with CuPy and a GPU but a CUDA library missing (a driver without the toolkit's
wheels): making the cuda backend, or compiling a kernel without NVRTC, raises gpuad's
error naming the library and the install line, and ``gpuad.cuda.is_available()`` says
False with that message as ``unavailable_reason()``. The libraries go missing through the
emulated CuPy (``fake_cupy.missing``), which fails as CuPy 14 does."""
import pytest

import gpuad
from conftest import MODE
from gpuad.backends.cuda import CUDABackend
from gpuad.backends.cuda_kernels import THREADS, DeviceKernels

pytestmark = pytest.mark.skipif(MODE != "emulated", reason="GPUAD_TEST_CUDA is not emulated")
if MODE == "emulated":
    import cupy
    from emulated import fake_cupy

INSTALL = r"pip install gpuad\[cuda12\]` or `pip install gpuad\[cuda13\]"


@pytest.mark.parametrize("library,name", [("curand", "cuRAND"), ("cublas", "cuBLAS"),
                                          ("nvrtc", "NVRTC")])
def test_a_missing_library_is_gpuads_error_and_makes_cuda_unavailable(library, name):
    assert gpuad.cuda.is_available() and gpuad.cuda.unavailable_reason() is None
    with fake_cupy.missing(library):
        with pytest.raises(RuntimeError, match=f"could not load {name}, .*{INSTALL}"):
            CUDABackend(gpuad.device("cuda:0"))
        assert not gpuad.cuda.is_available()
        assert f"could not load {name}" in gpuad.cuda.unavailable_reason()
        assert gpuad.cuda.device_count() == 2  # the GPUs are there all the same
    assert gpuad.cuda.is_available()


def test_nvrtc_missing_at_the_first_kernel_compile_is_gpuads_error():
    kernels = DeviceKernels(cupy, cupy.cuda.Device(0))  # nothing compiled yet
    x = cupy.zeros(4, cupy.float32)
    args = (x, x, cupy.asarray(1.0, cupy.float32), cupy.empty_like(x), cupy.int64(4))
    with fake_cupy.missing("nvrtc"):
        with pytest.raises(RuntimeError, match=f"could not load NVRTC, .* compiling "
                                               f"kernels/mse.cu .*{INSTALL}"):
            kernels.launch("mse", "mse_backward", x.dtype, (1,), (THREADS,), args)
    kernels.launch("mse", "mse_backward", x.dtype, (1,), (THREADS,), args)


def test_a_source_error_stays_the_compilers_error(monkeypatch):
    from gpuad.backends import cuda_kernels
    monkeypatch.setattr(cuda_kernels, "module_source", lambda name: "this is not CUDA C")
    kernels = DeviceKernels(cupy, cupy.cuda.Device(0))
    with pytest.raises(cupy.cuda.compiler.CompileException):
        kernels.launch("mse", "mse_backward", cupy.dtype("float32"), (1,), (THREADS,), ())
