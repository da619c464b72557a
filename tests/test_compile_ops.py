"""Every op of the gradcheck table through ``gpuad.compile``: forward and backward of a
step replay what eager computes, on new inputs at every call, or the step says (once,
with a warning) that it runs eagerly, for the ops documented to refuse a replay."""
import warnings

import numpy as np
import pytest

import gpuad
from test_gradcheck_ops import (ARITHMETIC, INDEXING, LOSSES, MATMUL, REDUCTIONS, SELECTION,
                                SHAPE, UNARY, make_input)

CALLS = 4
#: ops whose steps run eagerly, by design: a boolean mask's result has a data-dependent
#: shape, which a replay cannot follow (gpuad.compile says so and runs the step eagerly)
EAGER = {"bool_mask", "bool_mask_full", "bool_mask_from_values"}


def _grads_step(fn):
    """``step(*inputs)``: the op's outputs, weighted and summed, and their gradients."""
    def step(*inputs):
        out = fn(*inputs)
        outs = out if isinstance(out, tuple) else (out,)
        loss = None
        for k, o in enumerate(outs):
            term = (o * (gpuad.arange(o.numel(), dtype=o.dtype, device=o.device).reshape(o.shape) + k)).sum()
            loss = term if loss is None else loss + term
        grads = gpuad.autograd.grad(loss, inputs, allow_unused=True)
        return (loss.detach(),) + tuple(grads)
    return step


@pytest.mark.parametrize("fn, shapes, domain", ARITHMETIC + MATMUL + UNARY + SELECTION
                         + REDUCTIONS + SHAPE + INDEXING + LOSSES)
def test_op_replays_like_eager(request, device, fn, shapes, domain):
    name = request.node.callspec.id.split("-", 1)[1]
    step = _grads_step(fn)
    compiled = gpuad.compile(step)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(CALLS):
            inputs = [make_input(shape, domain, device) for shape in shapes]
            got, want = compiled(*inputs), step(*inputs)
            for g, w in zip(got, want):
                if w is None:
                    assert g is None
                else:
                    np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-12, atol=1e-12)
    fell_back = [w for w in caught if "gpuad.compile" in str(w.message)]
    if name.partition("-")[0] in EAGER:
        assert len(fell_back) == 1 and compiled.stats["replayed"] == 0
    else:
        assert not fell_back, fell_back[0].message
        assert compiled.stats == {"recorded": 2, "replayed": CALLS - 2, "eager": 0}
