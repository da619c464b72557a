"""A user-defined op: a ``gpuad.autograd.Function`` with its own backward, checked
against finite differences with ``gradcheck``.

    python examples/custom_op.py
"""
import gpuad
from gpuad.autograd import Function, gradcheck


class SmoothClip(Function):
    """``c * tanh(x / c)``: a differentiable clip to (-c, c).

    ``forward`` works on raw arrays through ``self.xp`` (NumPy or CuPy), so the op runs on
    any device; ``backward`` uses Tensor ops, so ``create_graph=True`` can differentiate it again.
    """

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        t = self.xp.tanh(x / self.c)
        self.save_for_backward(t)
        return self.c * t

    def backward(self, grad_out):
        t, = self.saved_tensors
        return grad_out * (1 - t * t)   # d/dx c*tanh(x/c) = 1 - tanh²(x/c)


def smooth_clip(x, c=1.0):
    return SmoothClip(c).apply(x)


def main():
    device = "cuda" if gpuad.cuda.is_available() else "cpu"
    x = gpuad.randn(5, dtype=gpuad.float64, device=device, requires_grad=True)
    y = smooth_clip(x, c=2.0)
    y.sum().backward()
    print(f"on {device}: x    ", x.detach().cpu().numpy().round(3))
    print("smooth_clip(x)      ", y.detach().cpu().numpy().round(3))
    print("d/dx by backward    ", x.grad.cpu().numpy().round(3))
    ok = gradcheck(lambda t: smooth_clip(t, c=2.0), (x,))
    print("gradcheck against finite differences:", "passed" if ok else "FAILED")


if __name__ == "__main__":
    main()
