"""Activation checkpointing: the memory a deep MLP saves for backward, with and without.

    python examples/checkpointing.py [--device cpu|cuda] [--depth 8] [--width 1024]

Runs the same training step (dropout included) plain and with the blocks checkpointed in
segments, and prints the bytes saved for backward, the step time and the largest
difference between the gradients (zero up to rounding: the recomputation draws the same
dropout masks). Ends with gpuad.memory's per-op table for a small model.
"""
import argparse
import time

import numpy as np

import gpuad
from gpuad import nn
from gpuad.nn import functional as F


def build(depth, width, classes, device):
    gpuad.manual_seed(0)
    blocks = [nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Dropout(0.1)).to(device)
              for _ in range(depth)]
    return blocks, nn.Linear(width, classes).to(device)


def forward(blocks, head, x, segments):
    """The blocks in ``segments`` checkpointed chunks (0: plain), then the head."""
    if not segments:
        for block in blocks:
            x = block(x)
        return head(x)
    size = -(-len(blocks) // segments)
    for i in range(0, len(blocks), size):
        x = gpuad.checkpoint(nn.Sequential(*blocks[i:i + size]), x)
    return head(x)


def step(blocks, head, x, y, segments):
    """One step's loss, saved-activation bytes after forward, gradients and time."""
    for m in blocks + [head]:
        m.zero_grad()
    gpuad.manual_seed(1)   # the same dropout masks for every variant
    t0 = time.perf_counter()
    loss = F.cross_entropy(forward(blocks, head, x, segments), y)
    saved = gpuad.memory.stats(x.device)["saved_activation_bytes"]
    loss.backward()
    if x.device.type == "cuda":
        gpuad.cuda.synchronize()
    ms = (time.perf_counter() - t0) * 1e3
    grads = [p.grad.cpu().numpy() for m in blocks + [head] for p in m.parameters()]
    return saved, grads, ms


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if gpuad.cuda.is_available() else "cpu")
    p.add_argument("--depth", type=int, default=8)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--batch", type=int, default=512)
    args = p.parse_args()
    blocks, head = build(args.depth, args.width, 10, args.device)
    x = gpuad.randn(args.batch, args.width, device=args.device)
    y = gpuad.randint(0, 10, (args.batch,), device=args.device)
    step(blocks, head, x, y, 0)  # warm-up
    print(f"{args.depth} x Linear({args.width}, {args.width}) + ReLU + Dropout, batch "
          f"{args.batch}, {args.device}")
    print(f"{'checkpoint segments':>20}{'saved for backward':>20}{'step ms':>10}"
          f"{'max |grad diff|':>17}")
    ref = None
    for segments in (0, 1, 2, 4, args.depth):
        saved, grads, ms = step(blocks, head, x, y, segments)
        ref = ref or grads
        diff = max(float(np.abs(a - b).max()) for a, b in zip(grads, ref))
        print(f"{segments or 'none':>20}{gpuad.memory.format_bytes(saved):>20}{ms:10.1f}"
              f"{diff:17.2e}")

    small, small_head = build(2, 64, 10, args.device)
    with gpuad.memory.saved_tensors_report() as report:
        loss = F.cross_entropy(forward(small, small_head, x[:, :64], 0), y)
    print("\nWhat each op saves, 2 blocks of width 64:")
    print(report)
    loss.backward()


if __name__ == "__main__":
    main()
