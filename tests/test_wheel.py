"""The wheel, as a user installs it: tests/wheel_check.py builds it, installs it with its
dependencies into a fresh venv and, from outside the checkout, runs the README's first
example, a compiled step and checks the installed package holds every module and kernel
source. It takes about 20 s (pip), so conftest starts it in the background as soon as this
test is collected and the test only waits for it."""
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("wheel_check.py")
_job = None


def start_in_background():
    global _job
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_PRELOAD")}
    _job = subprocess.Popen([sys.executable, str(SCRIPT)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def test_the_wheel_installs_and_runs_outside_the_checkout():
    if _job is None:
        start_in_background()
    out, _ = _job.communicate(timeout=900)
    assert _job.returncode == 0, out
    assert "wheel check passed" in out
