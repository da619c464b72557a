"""``benchmarks/gpu_check.py --dry-run``: the GPU check's orchestration, run here on the
emulated device with a test selection one of whose files is missing (that stage fails),
the tiny MLP row and the overhead and kernel races cut short by their time boxes: every
stage is recorded all the same, with what finished. It takes about 20 s, so conftest
starts it in the background as soon as this module is collected."""
import datetime
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from emulated import kernel_build

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
_job = None


def start_in_background():
    global _job
    if shutil.which(kernel_build.CXX) is None:
        return  # the dry run's emulated device builds kernels/*.cu with g++
    out = tempfile.mkdtemp(prefix="gpu-check-")
    cmd = [sys.executable, str(SCRIPT), "--dry-run", "--out", out, "--workers", "2",
           "--tests", "tests/test_cuda_setup.py", "tests/test_no_such_file.py"]
    _job = (subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True), Path(out))


@pytest.fixture(scope="module")
def dry_run():
    if _job is None:
        start_in_background()
    if _job is None:
        pytest.skip(f"the emulated device needs {kernel_build.CXX}, which is not installed")
    proc, out = _job
    log, _ = proc.communicate(timeout=600)
    folders = list(out.iterdir())
    assert len(folders) == 1, (folders, log)
    return proc.returncode, log, folders[0]


def test_the_dry_run_records_every_stage_in_the_devices_folder(dry_run):
    code, log, folder = dry_run
    assert code == 1, log  # a stage failed: the exit status says so
    assert folder.name == f"{datetime.date.today().isoformat()}-gpuad-emulated-gpu-0-dry-run"
    record = json.loads((folder / "gpu_check.json").read_text())
    assert list(record["stages"]) == ["environment", "tests", "bench"]
    assert record["environment"]["device"]["name"] == "gpuad emulated GPU 0"
    assert record["environment"]["driver_version"] and record["environment"]["gpuad_cuda_available"]
    assert record["stages"]["environment"]["status"] == "ok"
    assert all(s["seconds"] <= s["box_s"] + 5 for s in record["stages"].values())
    summary = (folder / "gpu_check.md").read_text()
    assert "gpuad emulated GPU 0" in summary and "| tests | failed" in summary


def test_a_failed_stage_keeps_what_ran_and_the_next_stage_runs(dry_run):
    _, log, folder = dry_run
    record = json.loads((folder / "gpu_check.json").read_text())
    tests = record["stages"]["tests"]
    assert tests["status"] == "failed" and tests["workers"] == 2
    assert sorted(tests["exit_codes"]) == [0, 4]  # 4: pytest found no such file
    assert tests["counts"] == {"PASSED": 5} and tests["collected"] == 5
    bench = record["stages"]["bench"]
    assert bench["status"] == "partial", log
    row = bench["rows"]["T sgd"]
    assert row.startswith("ok: gpuad ") and "gpuad_compiled" in row and "floor" in row
    assert "torch skipped" in row or "torch " in row  # PyTorch on cuda, where it has CUDA
    assert bench["overhead"].startswith("timed out") and bench["kernels"].startswith("timed out")
    results = json.loads((folder / "results.json").read_text())
    assert [(r["config"], r["device"]) for r in results["rows"]] == [("T", "cuda")]
    assert (folder / "results.md").is_file() and (folder / "tests-0.log").is_file()


def test_the_results_name_no_path_of_this_machine(dry_run):
    _, _, folder = dry_run
    paths = {str(ROOT), sys.prefix, sys.base_prefix, str(Path.home())}
    for f in folder.iterdir():
        if f.suffix in (".log", ".json", ".md"):
            text = f.read_text(errors="replace")
            assert not [p for p in paths if p in text], f"{f.name} names a path of this machine"
    assert "rootdir: <checkout>" in (folder / "tests-0.log").read_text()


def test_test_logs_cut_short_still_count():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_check
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "tests-0.log"
        log.write_text("collecting ... collected 4 items\n\n"
                       "tests/test_a.py::test_x[cuda] PASSED [ 25%]\n"
                       "tests/test_a.py::test_y[cpu-a b] FAILED [ 50%]\n"
                       "tests/test_a.py::test_z[cuda] PASSED [ 75%]\n"
                       "tests/test_a.py::test_z[cuda] ERROR [ 75%]\n"
                       "tests/test_a.py::test_w ")  # killed mid-line
        found = gpu_check.parse_test_logs([log])
    assert found["collected"] == 4
    assert found["counts"] == {"PASSED": 1, "FAILED": 1, "ERROR": 1}
    assert gpu_check.shards(["tests/test_nn.py", "tests/conftest.py", "tests/test_data.py"],
                            2) == [["tests/test_nn.py"], ["tests/test_data.py",
                                                          "tests/conftest.py"]]
