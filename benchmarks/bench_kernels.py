"""gpuad's fused kernels against the unfused array code they replace and a memory copy.

    python benchmarks/bench_kernels.py [--device cpu|cuda] [--sizes N ...] [--cold]
                                       [--json PATH]

On cpu each Numba twin (what ``CPUBackend`` runs) races NumPy running the reference formula
of ``gpuad.backends.base.Backend``; on cuda each CUDA kernel races CuPy running it. Both are
set against a copy of an array of the same size: GB/s counts the bytes the kernel must
move, and "% copy" compares that with the copy's. Times are the best of several runs (the
machine may be shared). First calls (compiling the kernel, or loading it from Numba's or
CuPy's cache) are timed apart; ``--cold`` empties both caches first, to time compilation.
"""
import argparse
import os
import tempfile
import time

_args = None
if __name__ == "__main__":
    _parser = argparse.ArgumentParser(description=__doc__,
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
    _parser.add_argument("--device", default="cpu")
    _parser.add_argument("--sizes", type=int, nargs="+", default=[1 << 20, 1 << 22],
                         help="elements per array (multiples of 1024)")
    _parser.add_argument("--cold", action="store_true",
                         help="empty Numba's and CuPy's kernel caches: time compilation")
    _parser.add_argument("--json")
    _args = _parser.parse_args()
    if _args.cold:  # before numba or cupy is imported: they read these once
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-cache-")
        os.environ["CUPY_CACHE_DIR"] = tempfile.mkdtemp(prefix="cupy-cache-")

import numpy as np  # noqa: E402

import gpuad  # noqa: E402
from gpuad.activations import ACTIVATION_CODES, saves_output  # noqa: E402
from gpuad.backends import backend_for  # noqa: E402
from gpuad.backends.base import Backend  # noqa: E402
from gpuad.backends import cpu_kernels  # noqa: E402
from common import machine_info, measure, per_call_us, write_json  # noqa: E402

COLS = 1024


def _arrays(be, n, dtype):
    rng = np.random.default_rng(0)
    rows = n // COLS

    def arr(*shape, positive=False):
        a = rng.standard_normal(shape).astype(dtype)
        return be.asarray(np.abs(a) + 0.1 if positive else a)

    return rows, arr


def _every_twin(fn):
    """``fn`` run with every CPU twin on, the ones that lost to NumPy included."""
    names = ("FORWARD_SLOWER", "BIAS_FUSION_SLOWER", "XENT_FORWARD_MAX_CLASSES",
             "XENT_BACKWARD_SLOWER")
    everything = (set(), set(), 1 << 62, False)

    def run():
        kept = [getattr(cpu_kernels, k) for k in names]
        for k, v in zip(names, everything):
            setattr(cpu_kernels, k, v)
        try:
            return fn()
        finally:
            for k, v in zip(names, kept):
                setattr(cpu_kernels, k, v)
    return run


def cases(be, n, dtype=np.float32):
    """(name, bytes moved per element, fused call, unfused call, used by the backend).

    "fused" is the kernel even where the backend does not use it; "unfused" is the
    reference formula on plain arrays, except in the "+ sum" rows: the elementwise
    kernel then the array library's column sum, the alternative to fusing the bias grad."""
    rows, arr = _arrays(be, n, dtype)
    z, b, gy = arr(rows, COLS), arr(COLS), arr(rows, COLS)
    cpu = be.name == "cpu"
    out = []
    for act in ACTIVATION_CODES:
        s = Backend.bias_act(be, arr(rows, COLS), None, act)[1]
        out += [
            (f"bias_act {act}", 2 if saves_output(act, 0.01) else 3,
             _every_twin(lambda act=act: be.bias_act(z, b, act)),
             lambda act=act: Backend.bias_act(be, z, b, act),
             not (cpu and act in cpu_kernels.FORWARD_SLOWER)),
            (f"act_backward {act}", 3, lambda act=act, s=s: be.act_backward(gy, s, act),
             lambda act=act, s=s: Backend.act_backward(be, gy, s, act), True),
            (f"act_bias_backward {act}", 3,
             _every_twin(lambda act=act, s=s: be.act_bias_backward(gy, s, act)),
             lambda act=act, s=s: Backend.act_backward(be, gy, s, act).sum(axis=0),
             not (cpu and act in cpu_kernels.BIAS_FUSION_SLOWER)),
            (f"  {act}: fused bias grad vs elementwise + sum", 3,
             _every_twin(lambda act=act, s=s: be.act_bias_backward(gy, s, act)),
             lambda act=act, s=s: be.act_backward(gy, s, act).sum(axis=0),
             not (cpu and act in cpu_kernels.BIAS_FUSION_SLOWER))]
    t = be.asarray(np.random.default_rng(1).integers(0, COLS, rows))
    stats = Backend.cross_entropy_forward(be, z, t)[0]
    scale = be.asarray(np.asarray(1 / rows, dtype))
    out += [
        ("cross_entropy_forward", 1, _every_twin(lambda: be.cross_entropy_forward(z, t)),
         lambda: Backend.cross_entropy_forward(be, z, t),
         not cpu or COLS <= cpu_kernels.XENT_FORWARD_MAX_CLASSES),
        ("cross_entropy_backward", 2,
         _every_twin(lambda: be.cross_entropy_backward(z, stats, t, scale)),
         lambda: Backend.cross_entropy_backward(be, z, stats, t, scale),
         not (cpu and cpu_kernels.XENT_BACKWARD_SLOWER)),
        ("mse_backward", 3, lambda: be.mse_backward(z, gy, scale),
         lambda: Backend.mse_backward(be, z, gy, scale), True)]
    p, g, buf, m, v = arr(n), arr(n), arr(n), arr(n), arr(n, positive=True)
    sgd = (0.01, 0.9, 0.0, True, 1e-4)
    adam = (10, 1e-3, 0.9, 0.999, 1e-8, 1e-2, True)
    out += [
        ("sgd_step (nesterov, weight decay)", 5, lambda: be.sgd_step(p, g, buf, *sgd),
         lambda: Backend.sgd_step(be, p, g, buf, *sgd), True),
        ("adam_step (AdamW)", 7, lambda: be.adam_step(p, g, m, v, *adam),
         lambda: Backend.adam_step(be, p, g, m, v, *adam), True)]
    return out


def first_calls(be):
    """Milliseconds of the first call of each fused method (float32, 16 x 1024: large
    enough for the CPU backend to take the twins)."""
    _, arr = _arrays(be, COLS, np.float32)
    x, t = arr(16, COLS), be.asarray(np.arange(16))
    scale = be.asarray(np.float32(0.25))
    calls = [("bias_act", lambda: be.bias_act(x.copy(), arr(COLS), "gelu")),
             ("act_backward", lambda: be.act_backward(x, x, "relu")),
             ("act_bias_backward", lambda: be.act_bias_backward(x, x, "relu")),
             ("cross_entropy_forward", lambda: be.cross_entropy_forward(x, t)),
             ("cross_entropy_backward",
              lambda: be.cross_entropy_backward(x, x[:, :2].copy(), t, scale)),
             ("mse_backward", lambda: be.mse_backward(x, x, scale)),
             ("sgd_step", lambda: be.sgd_step(x.copy(), x, x.copy(), 0.1, 0.9, 0.0, False, 0.0)),
             ("adam_step", lambda: be.adam_step(x.copy(), x, x.copy(), x * x, 1, 1e-3, 0.9,
                                                0.999, 1e-8, 0.0, False))]
    result = {}
    for name, fn in calls:
        t0 = time.perf_counter()
        fn()
        be.synchronize()
        result[name] = (time.perf_counter() - t0) * 1e3
    return result


def tiny_overhead(be):
    """Microseconds per call on 4x4 float32: the backend's method (on CPU: its checks, then
    NumPy below MIN_ELEMENTS) vs the unfused array code."""
    _, arr = _arrays(be, COLS, np.float32)
    x, g, b, buf = arr(4, 4), arr(4, 4), arr(4), arr(4, 4)
    return [(name, per_call_us(fused), per_call_us(plain)) for name, fused, plain in [
        ("act_backward relu", lambda: be.act_backward(g, x, "relu"),
         lambda: Backend.act_backward(be, g, x, "relu")),
        ("bias_act relu", lambda: be.bias_act(x, b, "relu"),
         lambda: Backend.bias_act(be, x, b, "relu")),
        ("sgd_step", lambda: be.sgd_step(x, g, buf, 0.1, 0.9, 0.0, False, 0.0),
         lambda: Backend.sgd_step(be, x, g, buf, 0.1, 0.9, 0.0, False, 0.0))]]


def _race(fused, plain, sync, steps=15):
    """Best times (ms) of the two, run alternately: load from other processes hits both."""
    best = [float("inf"), float("inf")]
    for step in range(steps + 2):
        for i, fn in enumerate((fused, plain)):
            t0 = time.perf_counter()
            fn()
            if sync:
                sync()
            if step >= 2:  # warm-up
                best[i] = min(best[i], (time.perf_counter() - t0) * 1e3)
    return best


def race_all(be, n, on_row=None):
    """Every case of ``cases`` on ``n`` float32 elements against a copy of that size:
    ``(copy ms, copy GB/s, rows)``; ``on_row(row)`` is told of each row as it is done."""
    sync = be.synchronize if be.name == "cuda" else None
    _, arr = _arrays(be, n, np.float32)
    src, dst = arr(n), arr(n)
    copy = measure(lambda: dst.__setitem__(Ellipsis, src), steps=30, sync=sync)["min_ms"]
    copy_gbs = 2 * n * 4 / copy / 1e6
    rows = []
    for name, per_elem, fused, plain, used in cases(be, n):
        f, p = _race(fused, plain, sync)
        gbs = per_elem * n * 4 / f / 1e6
        rows.append(dict(op=name, n=n, plain_ms=p, fused_ms=f, speedup=p / f, gb_per_s=gbs,
                         pct_copy=100 * gbs / copy_gbs, used=used, copy_ms=copy))
        if on_row:
            on_row(rows[-1])
    return copy, copy_gbs, rows


def main(args):
    be = backend_for(args.device)
    plain_name = "cupy" if be.name == "cuda" else "numpy"
    fused_name = "kernel" if be.name == "cuda" else "twin"
    results = {"machine": machine_info(), "device": args.device, "cold": args.cold,
               "first_call_ms": first_calls(be), "runs": []}
    print("first call (compile or cache load), ms:",
          ", ".join(f"{k} {v:.0f}" for k, v in results["first_call_ms"].items()))

    def show(r):
        print(f"{r['op']:46} {r['plain_ms']:9.3f} {r['fused_ms']:9.3f} {r['speedup']:7.2f}x "
              f"{r['gb_per_s']:7.1f} {r['pct_copy']:6.0f}%  {'yes' if r['used'] else 'no'}")
    for n in args.sizes:
        print(f"\n{n} float32 elements")
        print(f"{'op':46} {plain_name + ' ms':>9} {fused_name + ' ms':>9} {'speedup':>8} "
              f"{'GB/s':>7} {'% copy':>7}  used")
        copy, copy_gbs, rows = race_all(be, n, show)
        print(f"copy {copy:.3f} ms = {copy_gbs:.1f} GB/s")
        results["runs"] += rows
    print(f"\ntiny 4x4 float32, us per call: {'op':20} {'backend':>8} {plain_name:>8}")
    results["tiny_us"] = []
    for name, f, p in tiny_overhead(be):
        results["tiny_us"].append(dict(op=name, fused_us=f, plain_us=p))
        print(f"{'':30} {name:20} {f:8.2f} {p:8.2f}")
    if args.json:
        write_json(args.json, results)


if __name__ == "__main__":
    gpuad.manual_seed(0)
    main(_args)
