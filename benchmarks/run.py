"""The benchmark suite in one command: MLP steps side by side, per-op overhead, a chart.

    python benchmarks/run.py [--device cpu,cuda] [--configs S,M,L] [--compare torch|none]
                             [--optimizers sgd,adam] [--steps 20] [--out benchmarks/results]
                             [--quick]

For each device (cuda only when gpuad.cuda.is_available()) and optimizer it times
bench_mlp's configs (L on cuda only) for gpuad eager and compiled, PyTorch eager (and
captured in CUDA graphs, on cuda) and the NumPy/CuPy floor (sgd), with each one's peak
memory per step; then bench_overhead's per-op table and bench_kernels' races (fused
kernel, unfused chain, copy). The first step of each contender (Numba/NVRTC compilation, allocator
warm-up, gpuad.compile's first recording) is timed on its own and never enters the step
medians; the steps after it are timed in blocks, contender after contender, over several
rounds (see ``common.measure_interleaved``). Writes
results.json, results.md and chart.png under <out>/<YYYY-MM-DD>-<machine>/ (a ``-quick``
suffix for --quick, which is steps=5, configs S: a smoke run, not results to keep).
"""
import argparse
import datetime
import os
import re
import sys
import tracemalloc

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402
from tqdm import tqdm  # noqa: E402

import gpuad  # noqa: E402
from bench_mlp import CONFIGS, floor_step, gpuad_step, init, torch_step  # noqa: E402
from bench_kernels import race_all  # noqa: E402
from bench_overhead import cases, torch_cases  # noqa: E402
from common import (machine_info, measure_interleaved, per_call_us, time_runs,  # noqa: E402
                    write_json)
from gpuad.backends import backend_for  # noqa: E402

CONTENDERS = ("gpuad", "gpuad_compiled", "torch", "torch_graphs", "floor")


def plan(devices, configs, optimizers, compare):
    """(config, device, optimizer, {contender: step builder}) for every MLP row to time."""
    torch = _torch() if compare == "torch" else None
    out = []
    for device in devices:
        for optimizer in optimizers:
            for name in configs:
                if name == "L" and device == "cpu":
                    continue
                b = {"gpuad": lambda a, d=device, o=optimizer: gpuad_step(*a, d, o),
                     "gpuad_compiled":
                         lambda a, d=device, o=optimizer: gpuad_step(*a, d, o, True)}
                if torch and (device == "cpu" or torch.cuda.is_available()):
                    b["torch"] = lambda a, d=device, o=optimizer: torch_step(*a, d, o)
                    if device != "cpu":
                        b["torch_graphs"] = \
                            lambda a, d=device, o=optimizer: torch_step(*a, d, o, True)
                if optimizer == "sgd":
                    xp = gpuad.backends.backend_for(gpuad.device(device)).xp
                    b["floor"] = lambda a, xp=xp: floor_step(*a, xp)
                out.append((name, device, optimizer, b))
    return out


def time_row(name, device, optimizer, builders, steps, bar):
    """One row: each contender's first step on its own, then the steps after it, timed in
    rounds of blocks (``common.measure_interleaved``)."""
    sizes, batch = CONFIGS[name]
    arrays = init(sizes, batch)
    row = {"config": name, "sizes": sizes, "batch": batch, "device": device,
           "optimizer": optimizer}
    fns, syncs, firsts = {}, {}, {}
    for who, build in builders.items():
        bar.set_description(f"{name} {device} {optimizer} {who}")
        syncs[who] = _sync(who, device)
        fns[who] = build(arrays)
        firsts[who] = time_runs(fns[who], 1, syncs[who])[0]
        bar.update()
    for who, stats in measure_interleaved(fns, steps, 3, syncs).items():
        row[who] = {**stats, "first_call_ms": firsts[who],
                    "peak_mib": peak_mib(who, device, fns[who], syncs[who])}
    return row


def peak_mib(who, device, step, sync):
    """MiB a step allocates above what was live when it started (activations, gradients,
    temporaries): NumPy's traced allocations on cpu (PyTorch's are not traced: None),
    the pool's (or PyTorch's) peak on cuda."""
    if device == "cpu":
        if who.startswith("torch"):
            return None
        tracemalloc.start()
        try:
            step()
            return tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
    if who.startswith("torch"):
        torch = _torch()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        sync()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    before = gpuad.memory.memory_allocated(device)
    gpuad.memory.reset_peak_memory_stats(device)
    step()
    sync()
    return (gpuad.memory.max_memory_allocated(device) - before) / 2**20


def kernels(device, bar, n=1 << 22):
    """bench_kernels' races on ``n`` float32 elements: each fused kernel (Numba twin on
    cpu) against the unfused array code and a copy of the same size."""
    bar.set_description(f"kernels {device}")
    copy_ms, copy_gbs, rows = race_all(backend_for(device), n)
    bar.update()
    return [{**r, "device": device, "copy_gb_per_s": copy_gbs} for r in rows]


def overhead(device, compare, bar):
    """bench_overhead's cases: gpuad, the raw array call and (cpu) PyTorch, in us per call."""
    torch_fns = torch_cases() if compare == "torch" and device == "cpu" else {}
    rows = []
    for op, fn, raw in cases(device):
        bar.set_description(f"overhead {device} {op}")
        rows.append({"op": op, "device": device, "gpuad_us": per_call_us(fn),
                     "raw_us": per_call_us(raw) if raw else None,
                     "torch_us": per_call_us(torch_fns[op]) if op in torch_fns else None})
        bar.update()
    return rows


def _torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count())
    return torch


def _sync(who, device):
    if not device.startswith("cuda"):
        return None
    return _torch().cuda.synchronize if who.startswith("torch") else gpuad.cuda.synchronize


def _ms(stats):
    return f"{stats['median_ms']:.2f} [{stats['min_ms']:.2f}-{stats['max_ms']:.2f}]"


def _ratio(row, other, who="gpuad"):
    if other not in row or who not in row:
        return None
    return row[who]["median_ms"] / row[other]["median_ms"]


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def tables(rows, ops, kerns):
    """The MLP, memory, overhead and kernel tables as Markdown (the terminal shows them
    too)."""
    mlp = ["| config | device | optimizer | gpuad ms median [min-max] | gpuad compiled "
           "| torch | torch graphs | floor (NumPy/CuPy) | gpuad/torch | compiled/torch "
           "| compiled/torch graphs | gpuad/floor | compiled/floor "
           "| first step ms (gpuad / compiled / torch / graphs / floor) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [_ms(r[c]) if c in r else "-" for c in CONTENDERS]
        ratios = [_ratio(r, "torch"), _ratio(r, "torch", "gpuad_compiled"),
                  _ratio(r, "torch_graphs", "gpuad_compiled"), _ratio(r, "floor"),
                  _ratio(r, "floor", "gpuad_compiled")]
        firsts = " / ".join(_fmt(r[c]["first_call_ms"] if c in r else None, ".1f")
                            for c in CONTENDERS)
        mlp.append(f"| {r['config']} | {r['device']} | {r['optimizer']} | "
                   + " | ".join(cells + [_fmt(v, ".2f") for v in ratios])
                   + f" | {firsts} |")
    ovh = ["| op (4x4 float32) | device | gpuad us | raw us | overhead us | torch us |",
           "|---|---|---|---|---|---|"]
    for o in ops:
        extra = o["gpuad_us"] - o["raw_us"] if o["raw_us"] is not None else None
        ovh.append(f"| {o['op']} | {o['device']} | {o['gpuad_us']:.2f} | "
                   f"{_fmt(o['raw_us'], '.2f')} | {_fmt(extra, '.2f')} | "
                   f"{_fmt(o['torch_us'], '.2f')} |")
    mem = ["| config | device | optimizer | " + " | ".join(
        f"{c.replace('_', ' ')} MiB" for c in CONTENDERS) + " |", "|---" * 8 + "|"]
    for r in rows:
        mem.append(f"| {r['config']} | {r['device']} | {r['optimizer']} | " + " | ".join(
            _fmt(r[c]["peak_mib"] if c in r else None, ".1f") for c in CONTENDERS) + " |")
    ker = ["| fused op (4M float32) | device | unfused ms | fused ms | speedup | % of copy "
           "bandwidth | used |", "|---|---|---|---|---|---|---|"]
    for k in kerns:
        ker.append(f"| {k['op'].strip()} | {k['device']} | {k['plain_ms']:.3f} | "
                   f"{k['fused_ms']:.3f} | {k['speedup']:.2f}x | {k['pct_copy']:.0f} % | "
                   f"{'yes' if k['used'] else 'no'} |")
    return "\n".join(mlp), "\n".join(mem), "\n".join(ovh), "\n".join(ker)


def chart(rows, title, path):
    """Grouped bars (log scale) of step time per row, min-max whiskers, gpuad/torch above."""
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(rows) + 2), 4.5))
    width = 0.16
    for k, who in enumerate(CONTENDERS):
        xs = [i + (k - 2) * width for i, r in enumerate(rows) if who in r]
        st = [r[who] for r in rows if who in r]
        if not xs:
            continue
        med = [s["median_ms"] for s in st]
        err = [[m - s["min_ms"] for m, s in zip(med, st)],
               [s["max_ms"] - m for m, s in zip(med, st)]]
        ax.bar(xs, med, width, yerr=err, capsize=3, label=who.replace("_", " "))
    for i, r in enumerate(rows):
        ratio, compiled = _ratio(r, "torch"), _ratio(r, "torch", "gpuad_compiled")
        if ratio is not None:
            top = max(r[c]["max_ms"] for c in CONTENDERS if c in r)
            ax.annotate(f"{ratio:.2f}x / {compiled:.2f}x torch\n(eager / compiled)",
                        (i, top * 1.15), ha="center", fontsize=8)
    ax.set_yscale("log")
    low = min(r[c]["min_ms"] for r in rows for c in CONTENDERS if c in r)
    ax.set_ylim(low / 3, ax.get_ylim()[1] * 2)
    ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"{r['config']}\n{r['device']} {r['optimizer']}" for r in rows])
    ax.set_ylabel("training step, ms (median, min-max)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def machine_slug(info, devices):
    if "cuda" in devices and info.get("gpu"):
        return re.sub(r"[^a-z0-9]+", "-", info["gpu"].lower()).strip("-")
    return f"cpu-{info['cores']}core"


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu,cuda")
    p.add_argument("--configs", default="S,M,L")
    p.add_argument("--compare", default="torch", choices=["torch", "none"])
    p.add_argument("--optimizers", default="sgd,adam")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    p.add_argument("--quick", action="store_true", help="smoke run: steps=5, configs S")
    args = p.parse_args()
    if args.quick:
        args.steps, args.configs = 5, "S"
    devices = args.device.split(",")
    if "cuda" in devices and not gpuad.cuda.is_available():
        print("No CUDA device: GPU results are pending, cuda skipped.")
        devices = [d for d in devices if d != "cuda"]
        if not devices:
            return

    work = plan(devices, args.configs.split(","), args.optimizers.split(","), args.compare)
    n_ops = len(cases(devices[0]))
    with tqdm(total=sum(len(b) for *_, b in work) + (n_ops + 1) * len(devices),
              unit="run") as bar:
        rows = [time_row(*w, args.steps, bar) for w in work]
        ops = [o for d in devices for o in overhead(d, args.compare, bar)]
        kerns = [k for d in devices for k in kernels(d, bar)]

    info = machine_info()
    today = datetime.date.today().isoformat()
    slug = machine_slug(info, devices)
    mlp, mem, ovh, ker = tables(rows, ops, kerns)
    print(f"\n{mlp}\n\n{mem}\n\n{ovh}\n\n{ker}")

    folder = os.path.join(args.out, f"{today}-{slug}" + ("-quick" if args.quick else ""))
    write_json(os.path.join(folder, "results.json"),
               {"machine": info, "date": today, "steps": args.steps, "rows": rows,
                "overhead": ops, "kernels": kerns})
    described = info.get("gpu") if "cuda" in devices else f"{info['cpu']}, {info['cores']} cores"
    with open(os.path.join(folder, "results.md"), "w") as f:
        f.write(f"# gpuad benchmarks, {today}, {described}\n\n"
                f"`python benchmarks/run.py {' '.join(sys.argv[1:])}`; {args.steps} timed "
                "steps in 5 rounds of blocks per contender, each block after 0.2 s of untimed "
                "steps, following the first step and 3 warm-up steps. Ratios below 1 mean gpuad is faster.\n\n"
                f"## MLP training step\n\n{mlp}\n\n"
                "## Peak memory of a step\n\nAllocated during one step above what was live "
                "before it (activations, gradients, temporaries): NumPy's traced allocations "
                "on cpu (PyTorch's CPU allocations are not traced), the pool's or PyTorch's "
                f"peak on cuda.\n\n{mem}\n\n"
                f"## Per-op overhead\n\n{ovh}\n\n"
                "## Fused kernels\n\nEach fused kernel (the Numba twin on cpu) against the "
                "unfused array code it replaces, and the bytes it moves against a copy of the "
                f"same size (best of 15).\n\n{ker}\n")
    chart(rows, f"MLP step, {described}, {today}", os.path.join(folder, "chart.png"))
    print(f"\nWrote {folder}/results.json, results.md, chart.png")


if __name__ == "__main__":
    main()
