"""Pick a device, put tensors and a model on it, and move results back.

    python examples/select_device.py            # cuda when available, else cpu
    python examples/select_device.py cpu
"""
import sys

import gpuad
from gpuad import nn


def main(name=None):
    name = name or ("cuda" if gpuad.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not gpuad.cuda.is_available():
        sys.exit(f"error: {name} asked for, but no CUDA GPU is usable here (CuPy missing or "
                 "no GPU/driver); use 'cpu'")
    dev = gpuad.device(name)
    print(f"CUDA available: {gpuad.cuda.is_available()} "
          f"({gpuad.cuda.device_count()} GPU(s)); using {dev}")

    x = gpuad.randn(4, 3, device=dev)               # made on the device
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).to(dev)
    y = model(x)
    y.sum().backward()
    print(f"x on {x.device}, output on {y.device}, grad on {model[0].weight.grad.device}")
    print("output moved to the CPU:", y.detach().cpu().numpy().ravel())
    if dev.type == "cuda":
        try:
            x + gpuad.ones(4, 3, device="cpu")
        except RuntimeError as e:   # tensors on two devices never mix silently
            print("mixing devices is an error:", e)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
