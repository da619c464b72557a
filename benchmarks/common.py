"""What every benchmark shares: timing with warm-up and device sync, machine facts."""
import json
import os
import platform
import statistics
import time


def time_runs(fn, steps, sync=None):
    """Wall time in ms of each of ``steps`` runs of ``fn``, synchronised by ``sync``."""
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def measure(fn, steps=20, warmup=3, sync=None):
    """Run ``fn`` ``warmup`` times, then time ``steps`` runs; returns stats in ms."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = time_runs(fn, steps, sync)
    return {"median_ms": statistics.median(times), "min_ms": min(times),
            "max_ms": max(times), "steps": steps}


def measure_interleaved(fns, steps=20, warmup=3, syncs=None, rounds=5, settle_s=0.2):
    """``measure`` for several contenders at once, in ``rounds`` blocks of steps per
    contender (the order rotating), so that a machine's drift over the run hits them all.

    Each block starts with untimed steps for ``settle_s``: a library's worker threads
    keep spinning for a while after its last call (OpenBLAS: ~0.1 s), and a PyTorch M
    step measured 65 ms alone but 125 ms right after a NumPy one. ``fns`` and ``syncs``
    map a contender's name to its step and its sync (or None)."""
    syncs = syncs or {}
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
        if syncs.get(name):
            syncs[name]()
    times = {name: [] for name in names}
    for k in range(rounds):
        for name in names[k % len(names):] + names[:k % len(names)]:
            end = time.perf_counter() + settle_s
            while True:
                time_runs(fns[name], 1, syncs.get(name))
                if time.perf_counter() >= end:
                    break
            times[name] += time_runs(fns[name], -(-steps // rounds), syncs.get(name))
    return {name: {"median_ms": statistics.median(t), "min_ms": min(t), "max_ms": max(t),
                   "steps": len(t)} for name, t in times.items()}


def per_call_us(fn, number=2000, repeat=5):
    """Best-of-``repeat`` mean time of one call, in microseconds (for tiny ops)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best * 1e6


def machine_info():
    """CPU model and cores, GPU name, library versions."""
    import numpy
    import numba
    info = {"python": platform.python_version(), "numpy": numpy.__version__,
            "numba": numba.__version__, "cores": os.cpu_count(), "cpu": _cpu_model()}
    try:
        import torch
        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    import gpuad
    if gpuad.cuda.is_available():
        import cupy
        info["cupy"] = cupy.__version__
        info["gpu"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        info["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
    return info


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_json(path, payload):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
