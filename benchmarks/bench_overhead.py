"""Per-op overhead of gpuad on tiny tensors against the raw array call and PyTorch, each
library timed in a process of its own.

    python benchmarks/bench_overhead.py [--device cpu|cuda] [--json PATH]
"""
import argparse
import json
import subprocess
import sys

from common import machine_info, per_call_us, write_json

OPS = ("add", "add (recording)", "mul by Python float", "relu", "exp (recording)",
       "sum (recording)", "matmul (recording)", "reshape", "backward of y = (x*x).sum()")


def gpuad_cases(device):
    """{op: (gpuad call, the raw array call or None)}."""
    import gpuad
    a = gpuad.randn(4, 4, device=device)
    b = gpuad.randn(4, 4, device=device)
    ar = gpuad.randn(4, 4, device=device, requires_grad=True)
    xa, xb, xp = a.data, b.data, a._backend.xp
    fns = [(lambda: a + b, lambda: xa + xb), (lambda: ar + b, lambda: xa + xb),
           (lambda: a * 2.0, lambda: xa * 2.0), (lambda: a.relu(), lambda: xp.maximum(xa, 0)),
           (lambda: ar.exp(), lambda: xp.exp(xa)), (lambda: ar.sum(), lambda: xa.sum()),
           (lambda: ar @ b, lambda: xa @ xb), (lambda: a.reshape(16), lambda: xa.reshape(16)),
           (lambda: (ar * ar).sum().backward(), None)]
    return dict(zip(OPS, fns))


def torch_cases():
    """{op: PyTorch call}, on CPU."""
    import torch
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    ar = torch.randn(4, 4, requires_grad=True)
    fns = [lambda: a + b, lambda: ar + b, lambda: a * 2.0, lambda: a.relu(), lambda: ar.exp(),
           lambda: ar.sum(), lambda: ar @ b, lambda: a.reshape(16),
           lambda: (ar * ar).sum().backward()]
    return dict(zip(OPS, fns))


def _time_library(library, device):
    """{op: {"us": ..., "raw_us": ...}} for one library, in this process."""
    if library == "gpuad":
        return {op: {"us": per_call_us(fn), "raw_us": per_call_us(raw) if raw else None}
                for op, (fn, raw) in gpuad_cases(device).items()}
    return {op: {"us": per_call_us(fn)} for op, fn in torch_cases().items()}


def measure(device="cpu"):
    """Rows ``{"op", "device", "gpuad_us", "raw_us", "torch_us"}``: gpuad and (on cpu)
    PyTorch each timed in a fresh process of its own."""
    results = {}
    for library in ("gpuad", "torch") if device == "cpu" else ("gpuad",):
        out = subprocess.run([sys.executable, __file__, "--device", device,
                              "--library", library], capture_output=True, text=True)
        results[library] = json.loads(out.stdout) if out.returncode == 0 else {}
    g, t = results["gpuad"], results.get("torch", {})
    return [{"op": op, "device": device, "gpuad_us": g[op]["us"], "raw_us": g[op]["raw_us"],
             "torch_us": t[op]["us"] if op in t else None} for op in OPS if op in g]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json")
    p.add_argument("--library", choices=["gpuad", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.library:  # one library's process: its timings as JSON on stdout
        print(json.dumps(_time_library(args.library, args.device)))
        return
    rows = measure(args.device)
    nan = float("nan")
    print(f"{'op (4x4 float32)':32} {'gpuad us':>9} {'raw us':>8} {'overhead':>9} {'torch us':>9}")
    for r in rows:
        raw = r["raw_us"]
        print(f"{r['op']:32} {r['gpuad_us']:9.2f} {nan if raw is None else raw:8.2f} "
              f"{nan if raw is None else r['gpuad_us'] - raw:9.2f} "
              f"{nan if r['torch_us'] is None else r['torch_us']:9.2f}")
    if args.json:
        write_json(args.json, {"device": args.device, "machine": machine_info(), "ops": rows})


if __name__ == "__main__":
    main()
