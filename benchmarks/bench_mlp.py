"""MLP training step of every contender, each timed in a process of its own.

    python benchmarks/bench_mlp.py [--device cpu] [--configs S,M] [--optimizer sgd|adam]
                                   [--contenders gpuad,gpuad_compiled,torch,...]
                                   [--steps 40] [--rounds 5] [--json PATH]

S = 784-256-256-10, batch 128; M = 784-1024-1024-10, batch 1024; L = 4096-4096-4096-4096-10,
batch 4096 (GPU only); T = 64-32-10, batch 16, a smoke test of the machinery (not a result).
ReLU, softmax cross-entropy, SGD momentum 0.9 (or Adam), float32, same init and data for
every contender. The contenders (``CONTENDERS``): gpuad eager and
``gpuad.compile``d, PyTorch eager (and captured in CUDA graphs, on CUDA), a hand-written
NumPy/CuPy step with no autograd (the floor), MyGrad and HIPS autograd (CPU, SGD: the
NumPy autograds a user would otherwise pick; the update written by hand in NumPy, as the
floor's), and PyTorch in a process that ran gpuad's step first (the contamination check).

Each contender's process imports only its own library: a library's threads (OpenMP's wait
policy, OpenBLAS's spinning workers) cannot slow another's. ``common.measure_in_processes``
starts them, then times them in rounds of blocks, one contender at a time.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

from common import measure_in_processes, time_runs, write_json

CONFIGS = {"S": ([784, 256, 256, 10], 128), "M": ([784, 1024, 1024, 10], 1024),
           "L": ([4096, 4096, 4096, 4096, 10], 4096), "T": ([64, 32, 10], 16)}
#: every contender, in table order; ``available`` says which run where
CONTENDERS = ("gpuad", "gpuad_compiled", "torch", "torch_graphs", "floor", "mygrad",
              "autograd", "torch_after_gpuad")
LR, MOMENTUM = 0.01, 0.9


def available(who, config, device, optimizer):
    """Whether ``who`` is part of the (config, device, optimizer) row."""
    if config == "L" and device == "cpu":
        return False
    if who == "torch_graphs":
        return device != "cpu"
    if who in ("floor", "mygrad", "autograd", "torch_after_gpuad"):
        return optimizer == "sgd" and (device == "cpu" or who == "floor")
    return True


def init(sizes, batch, seed=0):
    """Weights (out, in), biases, inputs and targets as float32 NumPy arrays."""
    rng = np.random.default_rng(seed)
    ws = [(rng.standard_normal((o, i)) * np.sqrt(2.0 / i)).astype(np.float32)
          for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [np.zeros(o, np.float32) for o in sizes[1:]]
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    return ws, bs, x, y


def gpuad_step(ws, bs, x, y, device, optimizer, compiled=False):
    import gpuad
    layers = []
    for w, b in zip(ws, bs):
        lin = gpuad.nn.Linear(w.shape[1], w.shape[0])
        lin.weight.data[...] = w
        lin.bias.data[...] = b
        layers += [lin, gpuad.nn.ReLU()]
    model = gpuad.nn.Sequential(*layers[:-1]).to(device)
    opt = (gpuad.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM) if optimizer == "sgd"
           else gpuad.optim.Adam(model.parameters(), lr=1e-3))
    xt, yt = gpuad.tensor(x, device=device), gpuad.tensor(y, device=device)
    loss_fn = gpuad.nn.CrossEntropyLoss()

    def step(xt, yt):
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
        return loss.detach()
    if compiled:
        step = gpuad.compile(step)
    return lambda: step(xt, yt)


def torch_step(ws, bs, x, y, device, optimizer, graphed=False):
    import torch
    layers = []
    for w, b in zip(ws, bs):
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1]).to(device)
    opt = (torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM) if optimizer == "sgd"
           else torch.optim.Adam(model.parameters(), lr=1e-3, capturable=graphed))
    xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
        return loss.detach()
    if not graphed:
        return step
    # PyTorch's whole-step capture (torch.cuda.graphs): warm up on a side stream, capture
    # once, then each call is one replay
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
    return graph.replay


def torch_after_gpuad_step(ws, bs, x, y, device, optimizer):
    """PyTorch's step in a process that imported gpuad and ran its compiled step first:
    what gpuad leaves behind (environment, threads) would show here."""
    gpuad_run = gpuad_step(ws, bs, x, y, device, optimizer, compiled=True)
    for _ in range(5):
        gpuad_run()
    return torch_step(ws, bs, x, y, device, optimizer)


def _sgd_momentum(params, grads, vel):
    """PyTorch's SGD momentum (dampening 0), in place on NumPy arrays."""
    for p, g, v in zip(params, grads, vel):
        v *= MOMENTUM
        v += g
        p -= LR * v


def floor_step(ws, bs, x, y, xp=np):
    """The floor: forward, backward and SGD momentum written by hand in NumPy (or CuPy,
    ``xp``)."""
    ws, bs = [xp.array(w) for w in ws], [xp.array(b) for b in bs]
    x, y = xp.asarray(x), xp.asarray(y)
    vel = [xp.zeros_like(p) for p in ws + bs]
    n = x.shape[0]
    rows = xp.arange(n)

    def step():
        hs = [x]
        for k, (w, b) in enumerate(zip(ws, bs)):
            z = hs[-1] @ w.T
            z += b
            if k < len(ws) - 1:
                xp.maximum(z, 0, out=z)
            hs.append(z)
        logits = hs[-1]
        m = logits.max(axis=1, keepdims=True)
        e = xp.exp(logits - m)
        g = e / e.sum(axis=1, keepdims=True)
        g[rows, y] -= 1
        g /= n
        grads_w, grads_b = [None] * len(ws), [None] * len(ws)
        for k in range(len(ws) - 1, -1, -1):
            grads_w[k] = g.T @ hs[k]
            grads_b[k] = g.sum(axis=0)
            if k:
                g = g @ ws[k]
                g *= hs[k] > 0
        for p, gp, v in zip(ws + bs, grads_w + grads_b, vel):
            v *= MOMENTUM
            v += gp
            p -= LR * v
    return step


def mygrad_step(ws, bs, x, y):
    """MyGrad: the forward in its ops, ``loss.backward()``, SGD momentum on its gradients.
    Memory guarding (its read-only locks on arrays in a graph) is off: the setting its docs
    give for speed."""
    import mygrad as mg
    from mygrad.nnet.activations import relu
    from mygrad.nnet.losses import softmax_crossentropy
    mg.turn_memory_guarding_off()
    params = [np.array(p) for p in ws + bs]
    vel = [np.zeros_like(p) for p in params]
    n_layers = len(ws)

    def step():
        tensors = [mg.Tensor(p) for p in params]
        h = x
        for k in range(n_layers):
            h = mg.matmul(h, tensors[k].T) + tensors[n_layers + k]
            if k < n_layers - 1:
                h = relu(h)
        loss = softmax_crossentropy(h, y)
        loss.backward()
        _sgd_momentum(params, [t.grad for t in tensors], vel)
        return loss.item()
    return step


def autograd_step(ws, bs, x, y):
    """HIPS autograd: ``grad`` of the loss written in ``autograd.numpy``, SGD momentum."""
    import autograd.numpy as anp
    from autograd import grad
    from autograd.scipy.special import logsumexp
    params = [np.array(p) for p in ws + bs]
    vel = [np.zeros_like(p) for p in params]
    n_layers, rows = len(ws), np.arange(len(y))

    def loss(params):
        h = x
        for k in range(n_layers):
            h = anp.dot(h, params[k].T) + params[n_layers + k]
            if k < n_layers - 1:
                h = anp.maximum(h, 0)
        return anp.mean(logsumexp(h, axis=1) - h[rows, y])
    loss_grad = grad(loss)

    def step():
        _sgd_momentum(params, loss_grad(params), vel)
    return step


def build(who, config, device, optimizer):
    """The step of contender ``who`` for a row, and its device sync (or None)."""
    sizes, batch = CONFIGS[config]
    a = init(sizes, batch)
    cuda = device.startswith("cuda")
    if who in ("gpuad", "gpuad_compiled"):
        import gpuad
        return (gpuad_step(*a, device, optimizer, who == "gpuad_compiled"),
                gpuad.cuda.synchronize if cuda else None)
    if who in ("torch", "torch_graphs", "torch_after_gpuad"):
        fn = (torch_after_gpuad_step(*a, device, optimizer) if who == "torch_after_gpuad"
              else torch_step(*a, device, optimizer, who == "torch_graphs"))
        import torch
        return fn, torch.cuda.synchronize if cuda else None
    if who == "floor":
        if cuda:
            import cupy
            return floor_step(*a, cupy), cupy.cuda.Device().synchronize
        return floor_step(*a), None
    if who == "mygrad":
        return mygrad_step(*a), None
    if who == "autograd":
        return autograd_step(*a), None
    raise ValueError(f"unknown contender {who!r}; known: {', '.join(CONTENDERS)}")


def libraries(who):
    """What this contender's process runs on: library versions, the BLAS it calls and
    thread counts (threadpoolctl sees the BLAS libraries loaded into the process)."""
    info = {"numpy": np.__version__}
    for name in ("gpuad", "numba", "torch", "cupy", "mygrad", "autograd"):
        module = sys.modules.get(name)
        if module is not None:
            info[name] = getattr(module, "__version__", None) or _dist_version(name)
    try:
        import threadpoolctl
        info["threadpools"] = [  # the library's file name, never the machine's path to it
            {**{k: p.get(k) for k in ("internal_api", "version", "num_threads",
                                      "threading_layer", "architecture")},
             "library": os.path.basename(p.get("filepath") or "")}
            for p in threadpoolctl.threadpool_info()]
    except ImportError:
        info["threadpools"] = None
    if "gpuad" in sys.modules:
        from gpuad.backends import cpu_threads
        info["gpuad_threads"] = cpu_threads.THREADS
        blas = sys.modules.get("gpuad.backends.cpu_blas")
        if blas is not None:
            info["gpuad_blas"] = blas.describe()
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch_threads"] = torch.get_num_threads()
        info["torch_blas"] = next((line.split("=", 1)[1].strip().rstrip(",") for line in
                                   torch.__config__.show().split(", ")
                                   if line.strip().startswith("BLAS_INFO")), None)
    return info


def _dist_version(name):
    from importlib import metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def peak_mib(who, device, step, sync):
    """MiB a step allocates above what was live when it started: NumPy's traced
    allocations on cpu (PyTorch's are not traced: None), the pool's or PyTorch's peak on
    cuda."""
    if device == "cpu":
        if who.startswith("torch"):
            return None
        import tracemalloc
        tracemalloc.start()
        try:
            step()
            return tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
    if who.startswith("torch"):
        import torch
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        sync()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    if who == "floor":
        return None
    import gpuad
    before = gpuad.memory.memory_allocated(device)
    gpuad.memory.reset_peak_memory_stats(device)
    step()
    sync()
    return (gpuad.memory.max_memory_allocated(device) - before) / 2**20


def serve(who, config, device, optimizer, warmup=3):
    """The contender process: build the step, time its first call, then answer commands
    on stdin, one JSON line each way: ``{"block": n, "settle_s": s}`` (untimed steps for
    ``s`` seconds, then ``n`` timed ones: their ms), ``{"peak": true}``, ``{"quit": true}``."""
    step, sync = build(who, config, device, optimizer)
    first = time_runs(step, 1, sync)[0]
    for _ in range(warmup):
        step()
    _reply({"first_call_ms": first, "libraries": libraries(who)})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("quit"):
            return
        if cmd.get("peak"):
            _reply({"peak_mib": peak_mib(who, device, step, sync)})
            continue
        end = time.perf_counter() + cmd["settle_s"]
        while True:  # a settle: the machine's state after the previous block is left behind
            time_runs(step, 1, sync)
            if time.perf_counter() >= end:
                break
        _reply({"times_ms": time_runs(step, cmd["block"], sync)})


def _reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--configs", default="S,M")
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    p.add_argument("--contenders", default=",".join(CONTENDERS))
    p.add_argument("--steps", type=int, default=40, help="timed steps per contender")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json")
    p.add_argument("--serve", nargs=4, metavar=("WHO", "CONFIG", "DEVICE", "OPTIMIZER"),
                   help=argparse.SUPPRESS)  # run as one contender's process
    args = p.parse_args()
    if args.serve:
        return serve(*args.serve)
    rows = []
    for config in args.configs.split(","):
        who = [w for w in args.contenders.split(",")
               if available(w, config, args.device, args.optimizer)]
        if not who:
            continue
        row = measure_in_processes(__file__, who, (config, args.device, args.optimizer),
                                   args.steps, args.rounds)
        rows.append({"config": config, "sizes": CONFIGS[config][0],
                     "batch": CONFIGS[config][1], "device": args.device,
                     "optimizer": args.optimizer, **row})
        print(f"{config} {args.device} {args.optimizer}: " + ", ".join(
            [f"{w} {c['median_ms']:.2f} ms" for w, c in row["contenders"].items()]
            + [f"{w} skipped ({why})" for w, why in row["skipped"].items()]))
    if args.json:
        write_json(args.json, {"rows": rows})


if __name__ == "__main__":
    main()
