"""Shared fixtures: every test that takes ``device`` runs on cpu and on cuda.

``GPUAD_TEST_CUDA`` picks what "cuda" is (``./dev test`` sets it for the test run only):

* ``emulated`` (the default without a GPU): gpuad's real CUDA backend on a stand-in for
  CuPy that runs on the CPU (``tests/emulated/fake_cupy``, installed as ``cupy`` for this
  run only), two emulated devices, and gpuad's ``kernels/*.cu`` built with g++ and run on
  host threads (``tests/emulated/cuda_host.h``), with argument checks on;
* ``real`` (the default when ``nvidia-smi`` finds a GPU): the installed CuPy and the GPU;
* ``off``: cpu only.

The run ends by saying how many cuda tests passed.
"""
import os
import shutil
import subprocess

import pytest


def _default_mode():
    smi = shutil.which("nvidia-smi")
    if smi and subprocess.run([smi, "-L"], capture_output=True).returncode == 0:
        return "real"
    return "emulated"


MODE = os.environ.get("GPUAD_TEST_CUDA") or _default_mode()
if MODE not in ("emulated", "real", "off"):
    raise pytest.UsageError(f"GPUAD_TEST_CUDA={MODE!r}: expected emulated, real or off")
if MODE == "emulated":
    from emulated import fake_cupy, kernel_build
    if shutil.which(kernel_build.CXX) is None:
        raise pytest.UsageError(f"GPUAD_TEST_CUDA=emulated builds kernels/*.cu with "
                                f"{kernel_build.CXX}, which is not installed: install g++, or "
                                "run with GPUAD_TEST_CUDA=off")
    fake_cupy.install()
    fake_cupy._raw.STRICT = True

import gpuad  # noqa: E402  (after the stand-in: gpuad imports cupy lazily, but tests may not)

if MODE == "real" and not gpuad.cuda.is_available():
    raise pytest.UsageError(f"GPUAD_TEST_CUDA=real, but cuda is not usable: "
                            f"{gpuad.cuda.unavailable_reason()}; use emulated or off")
CUDA = MODE != "off"
DEVICES = ["cpu"] + (["cuda"] if CUDA else [])


def pytest_sessionstart(session):
    if MODE == "emulated":  # build the kernel sources in the background, in parallel
        from emulated import kernel_build
        from gpuad.backends.cuda_kernels import module_source
        from gpuad.kernels_loader import kernels_dir
        for path in sorted(kernels_dir().glob("*.cu")):
            kernel_build.start(module_source(path.stem), path.name)


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    started = set()  # checks that wait on other processes (the wheel's pip, the GPU check's
    for item in session.items:  # dry run) start now, in the background
        module = getattr(item, "module", None)
        if hasattr(module, "start_in_background") and module not in started:
            started.add(module)
            module.start_in_background()


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    gpuad.manual_seed(0)


_cuda_tests = set()


def pytest_collection_modifyitems(items):
    for item in items:
        spec = getattr(item, "callspec", None)
        if spec is not None and spec.params.get("device") == "cuda":
            _cuda_tests.add(item.nodeid)


def pytest_terminal_summary(terminalreporter):
    if not _cuda_tests:
        return
    counts = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        counts[outcome] = sum(1 for r in terminalreporter.stats.get(outcome, ())
                              if getattr(r, "nodeid", None) in _cuda_tests and
                              (r.when == "call" or outcome != "passed"))
    terminalreporter.write_line(
        f"cuda ({MODE}): {counts['passed']} of {len(_cuda_tests)} device tests passed, "
        f"{counts['failed'] + counts['error']} failed, {counts['skipped']} skipped")
