"""gpuad leaves the process as the user set it: environment variables, Numba's and the
BLAS libraries' thread settings, and no worker thread left running between ops.

Each check runs in a fresh interpreter: what a library reads when it loads (libgomp reads
``OMP_WAIT_POLICY`` once) can only be seen from a process that imports gpuad first.
"""
import json
import os
import subprocess
import sys

import pytest

#: What gpuad runs in the child: twins on large arrays (1M+ elements: the row-block path
#: over gpuad's threads) and a compiled training step, each a few times.
WORKLOAD = """
import gpuad
import numpy as np
x = gpuad.randn(1024, 1100, requires_grad=True)
t = gpuad.tensor(np.arange(1024) % 1100)
lin = gpuad.nn.Linear(1100, 1100)
opt = gpuad.optim.SGD(list(lin.parameters()) + [x], lr=0.1, momentum=0.9)
@gpuad.compile
def step():
    opt.zero_grad()
    loss = gpuad.nn.functional.cross_entropy(gpuad.nn.functional.relu(lin(x)), t)
    loss.backward()
    opt.step()
    return loss
for _ in range(4):
    step()
"""

SNAPSHOT = """
import ctypes, json, os, sys, threading
_getenv = ctypes.CDLL(None).getenv
_getenv.restype = ctypes.c_char_p
KEYS = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT", "KMP_BLOCKTIME",
        "MKL_NUM_THREADS", "MKL_THREADING_LAYER", "OPENBLAS_NUM_THREADS",
        "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER")

def snapshot():
    import threadpoolctl
    return {"environ": dict(os.environ),
            "c_environ": {k: _getenv(k.encode()) and _getenv(k.encode()).decode()
                          for k in KEYS},
            "blas": {i["filepath"]: i["num_threads"]
                     for i in threadpoolctl.threadpool_info()}}
"""


def _libraries_mapped(pattern):
    return f"""
import re
mapped = sorted({{l.split("/")[-1] for l in open("/proc/self/maps").read().splitlines()
                 if re.search({pattern!r}, l)}})
"""


def _child(code, env=None):
    """Run ``code`` in a fresh interpreter; its last stdout line, parsed as JSON."""
    full_env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    full_env.update(env or {})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=full_env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("policy", [None, "ACTIVE"])
def test_gpuad_leaves_environment_and_thread_settings_alone(policy):
    pytest.importorskip("threadpoolctl")
    code = SNAPSHOT + """
import numba, numpy
before = snapshot()
""" + WORKLOAD + """
after = snapshot()
from numba.np.ufunc import parallel
layer_started = parallel._is_initialized  # gpuad never starts Numba's threading layer
""" + _libraries_mapped(r"libmkl|libgomp|libiomp|libomp|libtbb") + """
numba.set_num_threads(1)
""" + WORKLOAD + """
print(json.dumps({"before": before, "after": after, "layer_started": layer_started,
                  "numba_threads": numba.get_num_threads(), "mapped": mapped}))
"""
    r = _child(code, None if policy is None else {"OMP_WAIT_POLICY": policy})
    before, after = r["before"], r["after"]
    assert after["environ"] == before["environ"]
    assert after["c_environ"] == before["c_environ"]
    assert after["c_environ"]["OMP_WAIT_POLICY"] == policy
    # libraries loaded before keep their thread counts (gpuad may load its own BLAS)
    assert {k: after["blas"].get(k) for k in before["blas"]} == before["blas"]
    assert not r["layer_started"]
    assert r["mapped"] == []  # no other BLAS (MKL is on request only), no OpenMP runtime
    assert r["numba_threads"] == 1  # the user's setting, after more gpuad work


def test_no_worker_spins_after_an_op():
    """Between ops gpuad's worker threads wait on a queue: a process that ran large twins
    and then sleeps uses next to no CPU time (a spinning team would use the whole sleep
    on each of its threads, whatever the machine's load)."""
    code = """
import json, time
import gpuad
from gpuad.backends import backend_for, cpu_threads
import numpy as np
be = backend_for("cpu")
g = np.ones(1 << 21, np.float32)
s = np.ones(1 << 21, np.float32)
for _ in range(20):
    be.act_backward(g, s, "relu")
t0 = time.process_time()
time.sleep(0.3)
print(json.dumps({"cpu_s": time.process_time() - t0, "workers": len(cpu_threads._workers),
                  "threads": cpu_threads.THREADS}))
"""
    r = _child(code)
    assert r["workers"] == r["threads"] - 1  # the big op did run on the worker threads
    assert r["cpu_s"] < 0.05, f"{r['cpu_s']:.3f} s of CPU time while idle for 0.3 s"


def test_torch_after_gpuad_starts_as_it_does_alone():
    """PyTorch imported after gpuad has run sees the environment and thread settings it
    sees alone: its OpenMP runtime reads them once, when it loads, so anything gpuad
    changed before would stay for the whole process (an OMP_WAIT_POLICY=PASSIVE left by
    gpuad slowed PyTorch's S step 1.2 -> 3.2 ms)."""
    pytest.importorskip("torch")
    report = SNAPSHOT + """
import torch
print(json.dumps({"snapshot": snapshot(), "threads": torch.get_num_threads(),
                  "interop": torch.get_num_interop_threads(),
                  "parallel_info": torch.__config__.parallel_info()}))
"""
    alone = _child(report)
    after = _child(WORKLOAD + report)
    assert after["snapshot"]["environ"] == alone["snapshot"]["environ"]
    assert after["snapshot"]["c_environ"] == alone["snapshot"]["c_environ"]
    assert (after["threads"], after["interop"]) == (alone["threads"], alone["interop"])
    assert after["parallel_info"] == alone["parallel_info"]


def test_mkl_on_request_runs_sequential_and_starts_no_openmp():
    from gpuad.backends import cpu_blas
    if not cpu_blas._mkl_paths():
        pytest.skip("MKL not installed (pip install gpuad[mkl])")
    code = WORKLOAD + _libraries_mapped(r"libgomp|libiomp|libomp|libtbb") + """
from gpuad.backends import cpu_blas
a = np.random.default_rng(0).standard_normal((300, 200)).astype(np.float32)
err = float(abs(cpu_blas.matmul(a, a.T) - a.astype(np.float64) @ a.T).max())
print(json.dumps({"mapped": mapped, "blas": cpu_blas.describe(), "err": err}))
"""
    r = _child("import json\n" + code, {"GPUAD_CPU_BLAS": "mkl"})
    assert r["blas"].startswith("MKL") and "sequential" in r["blas"]
    assert r["mapped"] == [] and r["err"] < 1e-3
