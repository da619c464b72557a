"""Time the same MLP training step on the CPU and, when there is one, on the GPU: eager,
and replayed by ``gpuad.compile`` (CUDA graphs on the GPU).

    python examples/cpu_vs_gpu.py [--batch-size 512] [--hidden 1024] [--steps 30]
"""
import argparse
import time

import gpuad
from gpuad import nn


def steps_per_second(device, batch_size, hidden, steps, compiled=False):
    """Forward, backward and an Adam step on random data, after three warm-up steps."""
    gpuad.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                          nn.ReLU(), nn.Linear(hidden, 10)).to(device)
    opt = gpuad.optim.Adam(model.parameters(), lr=1e-3)
    x = gpuad.randn(batch_size, 784, device=device)
    y = gpuad.randint(0, 10, (batch_size,), device=device)

    def step():
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach()

    if compiled:
        step = gpuad.compile(step)
    for _ in range(3):   # compiles kernels, fills caches, records: not part of the timing
        step()
    if device == "cuda":
        gpuad.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        gpuad.cuda.synchronize()   # kernels run asynchronously: wait before stopping the clock
    return steps / (time.perf_counter() - start)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--steps", type=int, default=30)
    args = p.parse_args(argv)
    rates = {}
    for device in ("cpu", "cuda"):
        if device == "cuda" and not gpuad.cuda.is_available():
            print("cuda: GPU unavailable (no CuPy or no CUDA GPU here); install "
                  "gpuad[cuda12] on a GPU machine to compare")
            break
        for compiled in (False, True):
            rate = steps_per_second(device, args.batch_size, args.hidden, args.steps, compiled)
            rates[device, compiled] = rate
            vs_cpu = f", {rate / rates['cpu', compiled]:.1f}x the CPU" if device == "cuda" else ""
            print(f"{device:4} {'compiled' if compiled else 'eager':8}: {rate:8.1f} steps/s  "
                  f"({rate * args.batch_size:,.0f} samples/s){vs_cpu}")


if __name__ == "__main__":
    main()
