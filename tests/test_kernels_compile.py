"""Every ``kernels/*.cu`` compiles with nvcc for sm_80 and sm_90, warnings as errors, and
the CUDA backend launches its entry points with arguments of the C types they declare: a
broken kernel or launch fails CI on a machine without a GPU."""
import contextlib
import re
import shutil
import subprocess

import numpy as np
import pytest

from gpuad.activations import ACTIVATION_CODES
from gpuad.backends import cuda_kernels
from gpuad.backends.base import Backend
from gpuad.kernels_loader import kernels_dir

SOURCES = sorted(p.stem for p in kernels_dir().glob("*.cu"))
ARCHS = ["-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90"]
NVCC = shutil.which("nvcc")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """nvcc's (return code, output) for each source, compiled in parallel."""
    if NVCC is None:
        reason = "nvcc is not on PATH: install the CUDA toolkit to compile kernels/*.cu"
        print(reason)
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("fatbin")
    runs = {name: subprocess.Popen(
        [NVCC, "--fatbin", *ARCHS, "-Werror", "all-warnings", str(kernels_dir() / f"{name}.cu"),
         "-o", str(out / f"{name}.fatbin")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True) for name in SOURCES}
    return {name: (run.wait(), run.stdout.read()) for name, run in runs.items()}


@pytest.mark.parametrize("name", SOURCES)
def test_compiles_for_sm80_and_sm90(compiled, name):
    code, output = compiled[name]
    assert code == 0, f"nvcc failed on kernels/{name}.cu:\n{output}"


def _entry_points(name):
    """``{kernel: [C parameter types]}`` of a source's ``extern "C"`` kernels, read after the
    preprocessor (macros expanded; nvcc spells __global__ as __attribute__((global)))."""
    text = subprocess.run([NVCC, "-E", "-x", "cu", str(kernels_dir() / f"{name}.cu")],
                          capture_output=True, text=True, check=True).stdout
    found = re.findall(r'extern "C"\s+(?:__global__|__attribute__\(\(global\)\))\s+'
                       r'void\s+(\w+)\s*\(([^)]*)\)', text)
    return {kernel: [p.strip().rsplit(" ", 1)[0].replace(" *", "*") for p in params.split(",")]
            for kernel, params in found}


class _Recorder(cuda_kernels.DeviceKernels):
    """Records launches instead of running them."""

    def __init__(self):
        self.max_blocks, self.launches = 64, []

    def launch(self, module, kernel, dtype, grid, block, args):
        self.launches.append((module, kernel, dtype, grid, block, args))


class _FakeGPU(cuda_kernels.CUDAKernels, Backend):
    """The CUDA backend's fused methods on NumPy arrays, launching into a _Recorder."""

    xp = np
    name = "cuda"
    _cuda_device = contextlib.nullcontext()

    def __init__(self):
        self.kernels = _Recorder()


def _launch_everything(be, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 40)).astype(dtype)
    scale = np.asarray(0.5, dtype)
    t = np.array([0, 3, 1, 39, 2], np.int32)
    for act in ACTIVATION_CODES:
        _, s = be.bias_act(x.copy(), x[0].copy(), act)
        be.act_backward(x, s, act)
        be.act_bias_backward(x, s, act)
    be.cross_entropy_backward(x, be.cross_entropy_forward(x, t)[0], t, scale)
    be.mse_backward(x, x.copy(), scale)
    for momentum in (0.0, 0.9):
        be.sgd_step(x.copy(), x, x.copy() if momentum else None, 0.1, momentum, 0.0, False,
                    0.1)
    be.adam_step(x.copy(), x, x.copy(), x * x, 2, 1e-3, 0.9, 0.999, 1e-8, 0.1, True)


_C_TYPES = {"long long": np.int64, "int": np.int32}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_launches_match_the_kernels_signatures(compiled, dtype):
    be = _FakeGPU()
    _launch_everything(be, dtype)
    c_type = "float" if dtype == np.float32 else "double"
    entries = {}
    for module, kernel, kernel_dtype, grid, block, args in be.kernels.launches:
        if module not in entries:
            entries[module] = _entry_points(module)
        entry = f"{kernel}_{'f32' if dtype == np.float32 else 'f64'}"
        assert kernel_dtype == dtype and entry in entries[module], \
            f"kernels/{module}.cu has no entry point {entry}"
        params = entries[module][entry]
        assert len(args) == len(params), f"{entry}: {len(args)} arguments for {params}"
        for i, (arg, param) in enumerate(zip(args, params)):
            if param.endswith("*"):
                want = np.int64 if param.rstrip("*").split()[-1] == "long" else dtype
                assert isinstance(arg, np.ndarray) and arg.dtype == want, (entry, i, param)
            else:
                want = dtype if param == c_type else _C_TYPES[param]
                assert type(arg) is want, (entry, i, param, type(arg))
        assert block[0] % 32 == 0 and block[0] <= 1024 and len(block) == 1
        assert all(g >= 1 for g in grid) and grid[1:] <= (65535,)
    assert {k for _, k, *_ in be.kernels.launches} == {
        "bias_act", "act_backward", "act_bias_backward", "xent_forward", "xent_backward",
        "mse_backward", "sgd_step", "adam_step"}


def test_cupy_gets_the_headers_inlined():
    for name in SOURCES:
        source = cuda_kernels.module_source(name)
        assert '#include "' not in source, f"kernels/{name}.cu: a local include is left"
