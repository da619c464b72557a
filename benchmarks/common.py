"""What every benchmark shares: timing (in one process, or each contender in its own),
machine facts."""
import json
import os
import platform
import statistics
import subprocess
import sys
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


def measure_in_processes(script, contenders, row, steps=40, rounds=5, settle_s=0.3):
    """Time each contender of a row in a process of its own (``script --serve who *row``).

    The processes are started one after the other (each builds its step and times its
    first call alone), then run in ``rounds`` blocks of ``steps / rounds`` timed steps,
    one process at a time, the order rotating each round; each block starts with
    ``settle_s`` of untimed steps (a library's worker threads keep spinning for a while
    after its last call: OpenBLAS ~0.1 s; a PyTorch M step measured 65 ms alone and 125 ms
    right after a NumPy one). Contenders that cannot start (a library not installed) are
    reported in ``skipped``.

    Returns ``{"contenders": {who: stats}, "skipped": {who: why}, "load": [...]}``; stats
    are the median, min and max over all timed steps, each round's block median
    (``rounds_ms``), the first call, the peak memory and the process's libraries."""
    procs, stats, skipped = {}, {}, {}
    for who in contenders:
        proc = subprocess.Popen([sys.executable, script, "--serve", who, *row],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                cwd=os.path.dirname(os.path.abspath(script)))
        ready = _read(proc)
        if ready is None:
            err = proc.stderr.read().strip().splitlines()
            skipped[who] = err[-1] if err else f"exited with {proc.wait()}"
            continue
        procs[who] = proc
        stats[who] = {"first_call_ms": ready["first_call_ms"],
                      "libraries": ready["libraries"], "rounds_ms": [], "times": []}
    names = list(procs)
    block = -(-steps // rounds)
    load = [os.getloadavg()]
    for k in range(rounds):
        for who in names[k % len(names):] + names[:k % len(names)]:
            _send(procs[who], {"block": block, "settle_s": settle_s})
            times = _read(procs[who])["times_ms"]
            stats[who]["times"] += times
            stats[who]["rounds_ms"].append(statistics.median(times))
        load.append(os.getloadavg())
    for who in names:
        _send(procs[who], {"peak": True})
        stats[who]["peak_mib"] = _read(procs[who])["peak_mib"]
        _send(procs[who], {"quit": True})
        procs[who].wait()
        t = stats[who].pop("times")
        stats[who].update(median_ms=statistics.median(t), min_ms=min(t), max_ms=max(t),
                          steps=len(t))
    return {"contenders": stats, "skipped": skipped, "load": load}


def _send(proc, cmd):
    proc.stdin.write(json.dumps(cmd) + "\n")
    proc.stdin.flush()


def _read(proc):
    line = proc.stdout.readline()
    return json.loads(line) if line else None


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
    """The machine, without importing any contender's library: CPU model, cores, memory,
    the GPU (nvidia-smi's name, or None), Python, OS, and the load average now."""
    gpu = None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        gpu = out.stdout.strip().splitlines()[0] if out.returncode == 0 else None
    except (OSError, IndexError, subprocess.TimeoutExpired):
        pass
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gib": _memory_gib(),
            "gpu": gpu, "python": platform.python_version(), "os": platform.platform(),
            "load_average": os.getloadavg()}


def _memory_gib():
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        return None


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
