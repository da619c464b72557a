"""Peak memory and step time of an MLP training step, gpuad's memory pool on and off.

    python benchmarks/bench_memory.py [--device cpu|cuda] [--batch 1024] [--json PATH]

The step: 784-1024-1024-10 MLP (Linear/ReLU), cross-entropy, backward, SGD momentum.

CPU: gpuad's ops allocate through NumPy, so "pool on" here routes the largest arrays of
the step, every matmul output (forward activations, input and weight gradients),
through the CPU pool: this measures what wiring the pool into the ops would buy. Peak
memory is NumPy's traced peak during one step (tracemalloc), cached blocks included.
CUDA: every CuPy array comes from the pool; "off" sends each allocation to cudaMalloc
and each free to cudaFree. The peak is ``max_memory_allocated``, next to PyTorch's
``torch.cuda.max_memory_allocated`` for the same model and step.
"""
import argparse
import statistics
import tracemalloc

import numpy as np

import gpuad
from common import machine_info, time_runs, write_json
from gpuad import nn
from gpuad.backends import backend_for

DIMS = (784, 1024, 1024, 10)


class PooledMatmulNumPy:
    """NumPy whose ``matmul`` writes into ``backend.empty``: set as the CPU backend's
    ``xp``, it routes every op's matmul output through the pool."""

    def __init__(self, backend):
        self._backend = backend

    def __getattr__(self, name):
        return getattr(np, name)

    def matmul(self, a, b):
        if a.ndim != 2 or b.ndim != 2:
            return np.matmul(a, b)
        out = self._backend.empty((a.shape[0], b.shape[1]), np.result_type(a, b))
        return np.matmul(a, b, out=out)


def gpuad_step(device, batch):
    gpuad.manual_seed(0)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(DIMS[:-1], DIMS[1:])):
        layers += [nn.Linear(n_in, n_out, device=device)] + ([nn.ReLU()] if i < 2 else [])
    model = nn.Sequential(*layers)
    opt = gpuad.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = gpuad.randn(batch, DIMS[0], device=device)
    y = gpuad.randint(0, DIMS[-1], (batch,), device=device)

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return step


def route_cpu_matmuls(on):
    backend = backend_for("cpu")
    if on:
        backend.xp = PooledMatmulNumPy(backend)
    else:
        backend.__dict__.pop("xp", None)  # back to the class's NumPy


def cpu(args):
    """Pool on/off, interleaved in rounds so both see the same machine load."""
    gpuad.memory.set_caching(True, "cpu")  # serves only what the routed matmuls ask for
    gpuad_step("cpu", 8)()  # compile the kernels first: their objects are not the step's
    steps, times, peaks, stats = {}, {"off": [], "on": []}, {}, {}
    for mode in times:
        route_cpu_matmuls(mode == "on")
        tracemalloc.start()   # from the start: the peak counts the model and cached blocks
        steps[mode] = gpuad_step("cpu", args.batch)
        for _ in range(3):
            steps[mode]()
        tracemalloc.reset_peak()
        steps[mode]()
        peaks[mode] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    for _ in range(args.rounds):
        for mode in times:
            route_cpu_matmuls(mode == "on")
            before = gpuad.memory.stats("cpu")
            times[mode] += time_runs(steps[mode], args.steps)
            after = gpuad.memory.stats("cpu")
            stats[mode] = {k: stats.get(mode, {}).get(k, 0) + after[k] - before[k]
                           for k in ("raw_alloc_calls", "pool_hits")}
    route_cpu_matmuls(False)
    gpuad.memory.set_caching(False, "cpu")
    rows = [{"mode": m, "median_ms": statistics.median(t), "min_ms": min(t),
             "peak_bytes": peaks[m], **stats[m]} for m, t in times.items()]
    print(f"CPU, batch {args.batch}: {args.rounds} rounds x {args.steps} steps per mode")
    print(f"{'pool':6}{'median ms':>11}{'min ms':>9}{'peak MiB':>10}"
          f"{'raw allocs':>12}{'pool hits':>11}")
    for r in rows:
        print(f"{r['mode']:6}{r['median_ms']:11.1f}{r['min_ms']:9.1f}"
              f"{r['peak_bytes'] / 2**20:10.1f}{r['raw_alloc_calls']:12}{r['pool_hits']:11}")
    return rows


def cuda(args):
    sync = gpuad.cuda.synchronize
    rows = []
    for mode in ("on", "off"):
        gpuad.memory.set_caching(mode == "on", "cuda")
        step = gpuad_step("cuda", args.batch)
        for _ in range(3):
            step()
        sync()
        gpuad.memory.reset_peak_memory_stats("cuda")
        before = gpuad.memory.stats("cuda")
        t = time_runs(step, args.steps * args.rounds, sync)
        after = gpuad.memory.stats("cuda")
        rows.append({"impl": f"gpuad, pool {mode}", "median_ms": statistics.median(t),
                     "min_ms": min(t), "peak_bytes": after["peak_allocated_bytes"],
                     "raw_alloc_calls": after["raw_alloc_calls"] - before["raw_alloc_calls"]})
        del step
    gpuad.memory.set_caching(True, "cuda")
    torch_row = torch_cuda(args)
    if torch_row:
        rows.append(torch_row)
    print(f"CUDA, batch {args.batch}")
    print(f"{'':16}{'median ms':>11}{'min ms':>9}{'peak MiB':>10}{'raw allocs':>12}")
    for r in rows:
        print(f"{r['impl']:16}{r['median_ms']:11.2f}{r['min_ms']:9.2f}"
              f"{r['peak_bytes'] / 2**20:10.1f}{r.get('raw_alloc_calls', float('nan')):12}")
    return rows


def torch_cuda(args):
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 1024), torch.nn.ReLU(),
                                torch.nn.Linear(1024, 1024), torch.nn.ReLU(),
                                torch.nn.Linear(1024, 10)).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(args.batch, 784, device="cuda")
    y = torch.randint(0, 10, (args.batch,), device="cuda")

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t = time_runs(step, args.steps * args.rounds, torch.cuda.synchronize)
    return {"impl": "torch", "median_ms": statistics.median(t), "min_ms": min(t),
            "peak_bytes": torch.cuda.max_memory_allocated()}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--steps", type=int, default=5, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--json")
    args = p.parse_args()
    rows = cpu(args) if args.device == "cpu" else cuda(args)
    if args.json:
        write_json(args.json, {"device": args.device, "batch": args.batch,
                               "machine": machine_info(), "rows": rows})


if __name__ == "__main__":
    main()
