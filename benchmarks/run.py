"""The benchmark suite in one command: MLP steps of every contender, per-op overhead, the
fused kernels, a chart.

    python benchmarks/run.py [--device cpu,cuda] [--configs S,M,L] [--optimizers sgd,adam]
                             [--contenders ...] [--steps 40] [--rounds 5]
                             [--out benchmarks/results] [--quick]

Every contender runs in a process of its own that imports only its library
(``bench_mlp.serve``): gpuad eager and compiled, PyTorch, the NumPy floor, MyGrad and HIPS
autograd on cpu; PyTorch with CUDA graphs and the CuPy floor on cuda (cuda only when a GPU
is there); PyTorch in a process that ran gpuad first. The processes of a row are started
one at a time (each first step, with its compilation or recording, is timed alone), then
timed in rounds of blocks, one process at a time, the order rotating
(``common.measure_in_processes``). Per-op overhead: gpuad and PyTorch, each in a process
of its own (``bench_overhead``); the fused kernels: ``bench_kernels`` in its own process.

Writes results.json (with each process's library versions, BLAS and thread counts, the
machine and the load average through the run), results.md and chart.png under
<out>/<YYYY-MM-DD>-<machine>/ (``-quick`` for --quick: steps 10, rounds 2, config S, a
smoke run, not results to keep), and prints the README's table.
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile

import bench_mlp
import bench_overhead
import report
from common import machine_info, measure_in_processes, write_json

HERE = os.path.dirname(os.path.abspath(__file__))


def mlp_rows(devices, configs, optimizers, contenders, steps, rounds):
    rows = []
    for device in devices:
        for optimizer in optimizers:
            for config in configs:
                who = [w for w in contenders
                       if bench_mlp.available(w, config, device, optimizer)]
                if not who:
                    continue
                print(f"MLP {config} {device} {optimizer}: {', '.join(who)}", flush=True)
                row = measure_in_processes(bench_mlp.__file__, who,
                                           (config, device, optimizer), steps, rounds)
                for w, why in row["skipped"].items():
                    print(f"  {w} skipped: {why}")
                rows.append({"config": config, "sizes": bench_mlp.CONFIGS[config][0],
                             "batch": bench_mlp.CONFIGS[config][1], "device": device,
                             "optimizer": optimizer, **row})
    return rows


def kernels(device, n=1 << 22):
    """bench_kernels' races on ``n`` float32 elements, run in a process of its own."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kernels.json")
        subprocess.run([sys.executable, os.path.join(HERE, "bench_kernels.py"), "--device",
                        device, "--sizes", str(n), "--json", path], check=True,
                       stdout=subprocess.DEVNULL)
        with open(path) as f:
            runs = json.load(f)["runs"]
    return [{**r, "device": device} for r in runs]


def cuda_available():
    out = subprocess.run([sys.executable, "-c", "import gpuad; print(gpuad.cuda.is_available())"],
                         capture_output=True, text=True, cwd=HERE)
    return out.stdout.strip() == "True"


def chart(results, title, path):
    """One panel per row: each contender's best block (bars; whiskers: its round medians'
    min-max), its time and ratio to PyTorch written beside the bar. Lower is better."""
    import matplotlib  # here: gpu_check.py writes the tables where matplotlib is missing
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = results["rows"]
    fig, axes = plt.subplots(len(rows), 1, figsize=(9, 1.0 + 1.9 * len(rows)), squeeze=False)
    for ax, r in zip(axes[:, 0], rows):
        names = list(r["contenders"])
        best = [min(r["contenders"][w]["rounds_ms"]) for w in names]
        high = [max(r["contenders"][w]["rounds_ms"]) - b for w, b in zip(names, best)]
        ys = range(len(names))
        colors = [f"C{list(report.LABELS).index(w)}" for w in names]
        ax.barh(ys, best, xerr=[[0] * len(names), high], color=colors, capsize=2)
        ax.set_yticks(list(ys), [report.LABELS[w] for w in names], fontsize=8)
        ax.invert_yaxis()
        right = max(b + h for b, h in zip(best, high))
        for y, w, b, h in zip(ys, names, best, high):
            ratio = report.best_ratio(r, w)
            text = f"{report.ms(b)} ms" + ("" if ratio is None or w == "torch"
                                           else f"  ({ratio:.2f}x PyTorch)")
            ax.text(b + h + right * 0.01, y, text, va="center", fontsize=8)
        ax.set_xlim(0, right * 1.45)
        ax.set_title(f"{report.row_label(r)} ({r['device']})", fontsize=9, loc="left")
        ax.tick_params(axis="x", labelsize=8)
    axes[-1, 0].set_xlabel("ms per training step, lower is better (bar: best block of "
                           "steps; whisker: up to the slowest round's median)", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def machine_slug(info, devices):
    if "cuda" in devices and info.get("gpu"):
        return re.sub(r"[^a-z0-9]+", "-", info["gpu"].lower()).strip("-")
    return f"cpu-{info['cores']}core"


def write_markdown(path, results, command, described):
    r = results
    with open(path, "w") as f:
        f.write(
            f"# gpuad benchmarks, {r['date']}, {described}\n\n`{command}`\n\n"
            f"Each contender ran in a process of its own, importing only its library. "
            f"After its first step (timed alone) and {3} warm-up steps, the processes of a "
            f"row ran {r['rounds']} rounds, one process at a time, the order rotating; in "
            f"each round a process ran {r['settle_s']} s of untimed steps, then "
            f"{-(-r['steps'] // r['rounds'])} timed steps. \"Best block\" is a contender's "
            "lowest round median; ratios are best block over PyTorch's best block (below "
            "1: faster than PyTorch); the per-round ratios pair the two processes' blocks of "
            f"each round. Load average (1, 5, 15 min) at the start: "
            f"{', '.join(f'{v:.2f}' for v in r['machine']['load_average'])}; through the "
            "MLP rows: " + ", ".join(
                f"{row['config']} {row['optimizer']} {min(l[0] for l in row['load']):.2f}-"
                f"{max(l[0] for l in row['load']):.2f}" for row in r["rows"]) + ".\n\n"
            f"## MLP training step\n\n{report.mlp_table(r)}\n\n"
            "Peak memory: allocated during one step above what was live before it "
            "(NumPy's traced allocations on cpu, so PyTorch's CPU allocations show as -; "
            "the pool's or PyTorch's peak on cuda).\n\n"
            f"## What each process ran on\n\n{report.libraries_table(r)}\n\n"
            "## Per-op overhead\n\ngpuad and PyTorch each in a process of its own; raw is "
            f"the array library's call alone.\n\n{report.overhead_table(r['overhead'])}\n\n"
            "## Fused kernels\n\nEach fused kernel (the Numba twin on cpu) against the "
            "unfused array code it replaces, and the bytes it moves against a copy of the "
            f"same size (best of 15).\n\n{report.kernels_table(r['kernels'])}\n")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu,cuda")
    p.add_argument("--configs", default="S,M,L")
    p.add_argument("--optimizers", default="sgd,adam")
    p.add_argument("--contenders", default=",".join(bench_mlp.CONTENDERS))
    p.add_argument("--steps", type=int, default=40, help="timed steps per contender and row")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    p.add_argument("--quick", action="store_true", help="smoke run: steps 10, rounds 2, S")
    p.add_argument("--update-readme", action="store_true",
                   help="write this run's table and chart into README.md")
    args = p.parse_args()
    if args.quick:
        args.steps, args.rounds, args.configs = 10, 2, "S"
    devices = args.device.split(",")
    if "cuda" in devices and not cuda_available():
        print("No CUDA device: GPU results are pending, cuda skipped.")
        devices = [d for d in devices if d != "cuda"]
        if not devices:
            return
    info = machine_info()
    today = datetime.date.today().isoformat()
    rows = mlp_rows(devices, args.configs.split(","), args.optimizers.split(","),
                    args.contenders.split(","), args.steps, args.rounds)
    print("per-op overhead, fused kernels", flush=True)
    ops = [o for d in devices for o in bench_overhead.measure(d)]
    kerns = [k for d in devices for k in kernels(d)]
    command = "python benchmarks/run.py " + " ".join(sys.argv[1:])
    results = {"machine": info, "date": today, "command": command.strip(),
               "steps": args.steps, "rounds": args.rounds, "settle_s": 0.3, "rows": rows,
               "overhead": ops, "kernels": kerns, "load_average_end": os.getloadavg()}
    folder = os.path.join(args.out, f"{today}-{machine_slug(info, devices)}"
                          + ("-quick" if args.quick else ""))
    os.makedirs(folder, exist_ok=True)
    write_json(os.path.join(folder, "results.json"), results)
    described = (info["gpu"] if "cuda" in devices else
                 f"{info['cpu']}, {info['cores']} cores")
    write_markdown(os.path.join(folder, "results.md"), results, command.strip(), described)
    chart(results, f"MLP training step, {described}, {today}",
          os.path.join(folder, "chart.png"))
    print(f"\n{report.mlp_table(results)}\n\nREADME table:\n\n"
          f"{report.readme_table(results)}\n\nWrote {folder}/results.json, results.md, "
          "chart.png")
    if args.update_readme and not args.quick:
        readme = os.path.join(HERE, os.pardir, "README.md")
        rel = os.path.relpath(folder, os.path.dirname(os.path.abspath(readme)))
        with open(readme) as f:
            text = report.update_readme(f.read(), results, rel.replace(os.sep, "/"))
        with open(readme, "w") as f:
            f.write(text)
        print("Updated README.md")


if __name__ == "__main__":
    main()
