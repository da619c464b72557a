"""benchmarks/bench_kernels.py runs end to end on a small size (it calls every fused
backend method with the backend's current signatures; a stale call lost a whole
benchmark run once). It measures nothing here: the figures are not checked."""
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_kernels.py"
METHODS = {"bias_act", "act_backward", "act_bias_backward", "cross_entropy_forward",
           "cross_entropy_backward", "mse_backward", "sgd_step", "adam_step"}


def test_bench_kernels_calls_every_fused_method(tmp_path):
    out = tmp_path / "kernels.json"
    r = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--sizes", "4096",
                        "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["first_call_ms"]) == METHODS
    assert result["runs"] and all(row["n"] == 4096 for row in result["runs"])
