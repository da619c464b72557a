"""gpuad against the real CuPy wheel (``./dev`` installs it; it imports without a GPU), in a
process of its own since this run's ``cupy`` may be the stand-in: every CuPy attribute
gpuad's source uses exists, every ``kernels/*.cu`` compiles through NVRTC with the options
CuPy's RawModule uses (sm_80 and sm_90), and the names the stand-in may offer
(``tests/emulated/cupy_names.json``) are this CuPy's. See tests/emulated/real_cupy_check.py.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpuad.kernels_loader import kernels_dir

HERE = Path(__file__).parent
SOURCES = sorted(p.stem for p in kernels_dir().glob("*.cu"))


@pytest.fixture(scope="module")
def report():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_PRELOAD")}
    probe = subprocess.run([sys.executable, "-c", "import cupy"], capture_output=True,
                           text=True, cwd="/", env=env)
    if probe.returncode:
        reason = ("the real CuPy is not installed (./dev installs cupy-cuda13x): "
                  + probe.stderr.strip().splitlines()[-1])
        print(reason)
        pytest.skip(reason)
    run = subprocess.run([sys.executable, str(HERE / "emulated" / "real_cupy_check.py")],
                         capture_output=True, text=True, cwd="/", env=env)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_every_cupy_attribute_gpuad_uses_exists(report):
    missing = {k: v for k, v in report["attributes"].items() if not v.startswith("ok")}
    assert not missing, f"CuPy {report['version']} lacks what gpuad uses: {missing}"
    assert "cupy.cuda.curand.setGeneratorOffset" in report["attributes"]  # the scan works


@pytest.mark.parametrize("name", SOURCES)
@pytest.mark.parametrize("arch", ["80", "90"])
def test_kernels_compile_through_nvrtc_with_cupys_options(report, name, arch):
    result = report["compiles"]["results"][f"{name}.cu sm_{arch}"]
    assert result.startswith("ok"), f"NVRTC ({' '.join(report['compiles']['options'])}):\n" \
                                    f"{result}"


def test_the_stand_ins_names_are_this_cupys(report):
    assert not report["names_diff"], (
        f"tests/emulated/cupy_names.json differs from CuPy {report['version']} in "
        f"{sorted(report['names_diff'])}: run tests/emulated/derive_cupy_names.py")
