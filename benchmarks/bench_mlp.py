"""MLP training step: gpuad (eager and ``gpuad.compile``d) against PyTorch (eager and, on
CUDA, captured with torch.cuda.graphs) and a hand-written NumPy/CuPy floor (no autograd).

    python benchmarks/bench_mlp.py [--device cpu] [--configs S,M] [--optimizer sgd|adam]
                                   [--steps 20] [--json PATH]

S = 784-256-256-10, batch 128; M = 784-1024-1024-10, batch 1024; L = 4096-4096-4096-4096-10,
batch 4096 (GPU only). ReLU, softmax cross-entropy, SGD momentum 0.9 (or Adam), float32,
same init and data for every contender.
"""
import argparse

import numpy as np

import gpuad
from common import machine_info, measure, write_json

CONFIGS = {"S": ([784, 256, 256, 10], 128), "M": ([784, 1024, 1024, 10], 1024),
           "L": ([4096, 4096, 4096, 4096, 10], 4096)}


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
    layers = []
    for w, b in zip(ws, bs):
        lin = gpuad.nn.Linear(w.shape[1], w.shape[0])
        lin.weight.data[...] = w
        lin.bias.data[...] = b
        layers += [lin, gpuad.nn.ReLU()]
    model = gpuad.nn.Sequential(*layers[:-1]).to(device)
    opt = (gpuad.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) if optimizer == "sgd"
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
    opt = (torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) if optimizer == "sgd"
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
            v *= 0.9
            v += gp
            p -= 0.01 * v
    return step


def run(configs, device, optimizer, steps):
    sync = gpuad.cuda.synchronize if device.startswith("cuda") else None
    try:
        import torch
        torch.set_num_threads(max(1, __import__("os").cpu_count()))
    except ImportError:
        torch = None
    rows = []
    for name in configs:
        if name == "L" and device == "cpu":
            continue
        sizes, batch = CONFIGS[name]
        ws, bs, x, y = init(sizes, batch)
        row = {"config": name, "sizes": sizes, "batch": batch, "device": device,
               "optimizer": optimizer,
               "gpuad": measure(gpuad_step(ws, bs, x, y, device, optimizer), steps, 3, sync),
               # warm-up 3: two recorded calls, then one replay before timing
               "gpuad_compiled": measure(gpuad_step(ws, bs, x, y, device, optimizer, True),
                                         steps, 3, sync)}
        cuda = device.startswith("cuda")
        if torch is not None:
            tsync = torch.cuda.synchronize if cuda else None
            row["torch"] = measure(torch_step(ws, bs, x, y, device, optimizer), steps, 3, tsync)
            if cuda:
                row["torch_graphs"] = measure(torch_step(ws, bs, x, y, device, optimizer, True),
                                              steps, 3, tsync)
        if optimizer == "sgd":
            xp = gpuad.backends.backend_for(gpuad.device(device)).xp  # NumPy or CuPy
            row["floor"] = measure(floor_step(ws, bs, x, y, xp), steps, 3, sync)
        rows.append(row)
        _print(row)
    return rows


def _print(row):
    g = row["gpuad"]["median_ms"]
    parts = [f"{row['config']} {row['device']} {row['optimizer']}: gpuad {g:8.2f} ms"]
    c = row["gpuad_compiled"]["median_ms"]
    parts.append(f"compiled {c:8.2f} ms")
    for other in ("torch", "torch_graphs", "floor"):
        if other in row:
            o = row[other]["median_ms"]
            parts.append(f"{other} {o:8.2f} ms (gpuad/{other} {g / o:.2f}x, "
                         f"compiled {c / o:.2f}x)")
    print("  |  ".join(parts))


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--configs", default="S,M")
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--json")
    args = p.parse_args()
    rows = run(args.configs.split(","), args.device, args.optimizer, args.steps)
    if args.json:
        write_json(args.json, {"machine": machine_info(), "results": rows})


if __name__ == "__main__":
    main()
