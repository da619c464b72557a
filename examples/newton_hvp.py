"""Newton's method with Hessian-vector products, forward-mode jvp, hooks and anomaly mode.

    python examples/newton_hvp.py

Minimises the Rosenbrock function with Newton steps where the Hessian is never built:
conjugate gradients solve H d = -g using only ``gpuad.autograd.hvp``.
"""
import warnings

import gpuad
from gpuad.autograd import grad, hvp, jvp


def rosenbrock(x):
    return ((1 - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2).sum()


def newton_direction(f, x, g, iters=20):
    """Solve H d = -g by conjugate gradients, with H applied through hvp."""
    d = gpuad.zeros_like(x)
    r = -g
    p = r
    rr = (r * r).sum()
    for _ in range(iters):
        _, hp = hvp(f, x, p)
        alpha = rr / (p * hp).sum()
        d = d + alpha * p
        r = r - alpha * hp
        rr_new = (r * r).sum()
        if rr_new.item() < 1e-20:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return d


def main():
    x = gpuad.tensor([-1.2, 1.0], dtype=gpuad.float64)
    for step in range(30):
        xr = x.detach().requires_grad_()
        g, = grad(rosenbrock(xr), xr)
        if g.abs().max().item() < 1e-10:
            break
        x = x + newton_direction(rosenbrock, x, g)
        print(f"step {step:2d}  f = {rosenbrock(x).item():.3e}")
    print("minimum at", x.tolist())

    # forward mode: the directional derivative in one forward pass
    v = gpuad.ones_like(x)
    value, slope = jvp(rosenbrock, (x,), (v,))
    print(f"f(x) = {value.item():.2e}, directional derivative along ones = {slope.item():.2e}")

    # a hook that clips the gradient as it flows back
    w = gpuad.tensor([3.0, -4.0], requires_grad=True)
    handle = w.register_hook(lambda gr: gr.clamp(-1, 1))
    (w ** 2).sum().backward()
    print("clipped gradient:", w.grad.tolist())
    handle.remove()

    # anomaly mode points at the op that first produced NaN, and at your line
    warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's own sqrt(-1) warning
    with gpuad.autograd.detect_anomaly():
        try:
            gpuad.tensor([-1.0]).sqrt()
        except RuntimeError as e:
            print(str(e).split(";")[0])


if __name__ == "__main__":
    main()
