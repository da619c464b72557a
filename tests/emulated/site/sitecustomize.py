"""Python runs this at start-up when this folder is on PYTHONPATH: the process then gets the
emulated CUDA device (the CuPy stand-in installed as ``cupy``, with the test suite's strict
argument checks), as the test run does. ``benchmarks/gpu_check.py --dry-run`` puts it on the
path of the processes it starts, so that its orchestration runs here without a GPU."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/: the `emulated` package
from emulated import fake_cupy  # noqa: E402

fake_cupy.install()
fake_cupy._raw.STRICT = True
