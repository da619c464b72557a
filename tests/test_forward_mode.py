"""Forward mode: jvp of every op against finite differences and against reverse mode.

Uses the op table of test_gradcheck_ops, so every op with a backward is checked here too.
"""
import numpy as np
import pytest

import gpuad
from gpuad.autograd import grad, jvp
from test_gradcheck_ops import (ARITHMETIC, INDEXING, LOSSES, MATMUL, REDUCTIONS, SELECTION,
                                SHAPE, UNARY, make_input)

ALL_OPS = ARITHMETIC + MATMUL + UNARY + SELECTION + REDUCTIONS + SHAPE + INDEXING + LOSSES


def _outputs(out):
    """The floating outputs (an op's indices, as max's, have no tangent)."""
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o for o in outs if o.dtype.kind == "f"]


@pytest.mark.parametrize("fn, shapes, domain", ALL_OPS)
def test_jvp_matches_finite_differences_and_reverse_mode(device, fn, shapes, domain):
    primals = [make_input(shape, domain, device).detach() for shape in shapes]
    tangents = [gpuad.randn(*s, dtype=gpuad.float64, device=device) for s in shapes]
    outs, touts = jvp(lambda *xs: tuple(_outputs(fn(*xs))), tuple(primals), tuple(tangents))

    eps = 1e-6
    plus = _outputs(fn(*[p + eps * t for p, t in zip(primals, tangents)]))
    minus = _outputs(fn(*[p - eps * t for p, t in zip(primals, tangents)]))
    for tout, hi, lo in zip(touts, plus, minus):
        numerical = (hi.numpy() - lo.numpy()) / (2 * eps)
        np.testing.assert_allclose(tout.numpy(), numerical, rtol=1e-5, atol=1e-6)

    # <u, J v> (forward) equals <J^T u, v> (reverse) for a random cotangent u
    xs = [p.clone().requires_grad_() for p in primals]
    rev_outs = _outputs(fn(*xs))
    us = [gpuad.randn(*o.shape, dtype=gpuad.float64, device=device) for o in rev_outs]
    gs = grad(rev_outs, xs, us, allow_unused=True)
    forward = sum(float((u * t).sum().item()) for u, t in zip(us, touts))
    reverse = sum(float((g * t).sum().item()) for g, t in zip(gs, tangents) if g is not None)
    assert forward == pytest.approx(reverse, rel=1e-9, abs=1e-9)


def test_jvp_of_fused_layer_and_model(device):
    gpuad.manual_seed(1)
    model = gpuad.nn.Sequential(gpuad.nn.Linear(3, 4), gpuad.nn.GELU(),
                                gpuad.nn.Linear(4, 2)).double().to(device)
    x = gpuad.randn(5, 3, dtype=gpuad.float64, device=device)
    v = gpuad.randn(5, 3, dtype=gpuad.float64, device=device)
    with gpuad.no_grad():
        _, tangent = jvp(model, (x,), (v,))
        eps = 1e-6
        numerical = (model(x + eps * v) - model(x - eps * v)) / (2 * eps)
    np.testing.assert_allclose(tangent.numpy(), numerical.numpy(), rtol=1e-5, atol=1e-7)


def test_jvp_rejects_mismatched_tangent(device):
    x = gpuad.randn(3, dtype=gpuad.float64, device=device)
    with pytest.raises(ValueError, match="tangent 0 has shape"):
        jvp(lambda t: t * 2, (x,), (gpuad.randn(4, dtype=gpuad.float64, device=device),))


def test_jvp_leaves_outputs_without_graph(device):
    x = gpuad.randn(3, dtype=gpuad.float64, device=device, requires_grad=True)
    out, tangent = jvp(lambda t: t.exp(), (x,), (gpuad.ones_like(x),))
    assert not out.requires_grad and not tangent.requires_grad
    np.testing.assert_allclose(tangent.numpy(), out.numpy())


def test_forward_over_reverse_gives_hessian_vector_product(device):
    """jvp of a gradient (fused backwards included) equals the hvp by reverse-over-reverse."""
    x = gpuad.randn(4, 3, dtype=gpuad.float64, device=device)
    v = gpuad.randn(4, 3, dtype=gpuad.float64, device=device)
    w = gpuad.randn(2, 3, dtype=gpuad.float64, device=device)
    t = gpuad.tensor([0, 1, 1, 0], device=device)

    def f(z):
        return gpuad.nn.functional.cross_entropy(gpuad.ops.fused.linear_act(z, w, None, "gelu"), t)

    def gradient(z):  # z is jvp's dual tensor: made a leaf in place, it keeps its tangent
        z.requires_grad_()
        return grad(f(z), z)[0]

    _, forward_over_reverse = jvp(gradient, (x,), (v,))
    _, reverse_over_reverse = gpuad.autograd.hvp(f, x, v)
    np.testing.assert_allclose(forward_over_reverse.numpy(), reverse_over_reverse.numpy(),
                               rtol=1e-9, atol=1e-12)
