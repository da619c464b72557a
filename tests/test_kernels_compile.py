"""Every ``kernels/*.cu`` compiles with nvcc for sm_80 and sm_90, warnings as errors, where
nvcc is installed. NVRTC with CuPy's options is checked in test_real_cupy.py, and every
launch's argument types against the kernels' C parameters in the emulated device suite
(test_kernels_emulated.py: strict mode)."""
import shutil
import subprocess

import pytest

from gpuad.backends import cuda_kernels
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


def test_cupy_gets_the_headers_inlined_with_line_directives():
    for name in SOURCES:
        source = cuda_kernels.module_source(name)
        assert '#include "' not in source, f"kernels/{name}.cu: a local include is left"
        assert source.startswith(f'#line 1 "{name}.cu"\n')
    source = cuda_kernels.module_source("mse").splitlines()
    back = next(i for i, line in enumerate(source) if line.startswith('#line ') and
                line.endswith('"mse.cu"') and i > 0)
    original = cuda_kernels.cuda_source("mse").splitlines()
    following = int(source[back].split()[1])
    assert source[back + 1:back + 4] == original[following - 1:following + 2]
