"""Per-op overhead of gpuad on tiny tensors against the raw array call (and PyTorch).

    python benchmarks/bench_overhead.py [--device cpu|cuda] [--json PATH]
"""
import argparse

import gpuad
from common import machine_info, per_call_us, write_json


def cases(device):
    a = gpuad.randn(4, 4, device=device)
    b = gpuad.randn(4, 4, device=device)
    ar = gpuad.randn(4, 4, device=device, requires_grad=True)
    xa, xb, xp = a.data, b.data, a._backend.xp
    return [
        ("add", lambda: a + b, lambda: xa + xb),
        ("add (recording)", lambda: ar + b, lambda: xa + xb),
        ("mul by Python float", lambda: a * 2.0, lambda: xa * 2.0),
        ("relu", lambda: a.relu(), lambda: xp.maximum(xa, 0)),
        ("exp (recording)", lambda: ar.exp(), lambda: xp.exp(xa)),
        ("sum (recording)", lambda: ar.sum(), lambda: xa.sum()),
        ("matmul (recording)", lambda: ar @ b, lambda: xa @ xb),
        ("reshape", lambda: a.reshape(16), lambda: xa.reshape(16)),
        ("backward of y = (x*x).sum()", lambda: (ar * ar).sum().backward(), None),
    ]


def torch_cases():
    try:
        import torch
    except ImportError:
        return {}
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    ar = torch.randn(4, 4, requires_grad=True)
    return {"add": lambda: a + b, "add (recording)": lambda: ar + b,
            "mul by Python float": lambda: a * 2.0, "relu": lambda: a.relu(),
            "exp (recording)": lambda: ar.exp(), "sum (recording)": lambda: ar.sum(),
            "matmul (recording)": lambda: ar @ b, "reshape": lambda: a.reshape(16),
            "backward of y = (x*x).sum()": lambda: (ar * ar).sum().backward()}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json")
    args = p.parse_args()
    sync = gpuad.cuda.synchronize if args.device.startswith("cuda") else None
    torch_fns = torch_cases() if args.device == "cpu" else {}
    rows = []
    print(f"{'op (4x4 float32)':32} {'gpuad us':>9} {'raw us':>8} {'overhead':>9} {'torch us':>9}")
    for name, fn, raw in cases(args.device):
        g = per_call_us(fn)
        r = per_call_us(raw) if raw else None
        t = per_call_us(torch_fns[name]) if name in torch_fns else None
        rows.append({"op": name, "gpuad_us": g, "raw_us": r, "torch_us": t})
        print(f"{name:32} {g:9.2f} {r if r is not None else float('nan'):8.2f} "
              f"{(g - r) if r is not None else float('nan'):9.2f} "
              f"{t if t is not None else float('nan'):9.2f}")
    if sync:
        sync()
    if args.json:
        write_json(args.json, {"device": args.device, "machine": machine_info(), "ops": rows})


if __name__ == "__main__":
    main()
