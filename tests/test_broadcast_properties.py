"""Property tests: gradients of broadcasting binary ops have each input's shape and equal
a NumPy reference that sums the output gradient over the positions each element fed."""
import numpy as np
import pytest

pytest.importorskip("hypothesis")  # a dev dependency: a machine without it skips the file
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import mutually_broadcastable_shapes  # noqa: E402

import gpuad
from helpers import leaf


def reduce_to(g, shape):
    """Sum ``g`` onto ``shape``: each output position adds into the element of the input
    that broadcasting sent there (written with bincount, not with sums over axes)."""
    owner = np.broadcast_to(np.arange(int(np.prod(shape))).reshape(shape), g.shape)
    return np.bincount(owner.ravel(), weights=g.ravel(),
                       minlength=int(np.prod(shape))).reshape(shape)


def _max_share(a, b):
    return (a > b) + 0.5 * (a == b)  # ties split the gradient, as in PyTorch


# op, and the NumPy local derivatives of the output with respect to a and b
OPS = {
    "add": (lambda a, b: a + b, lambda a, b: (1.0, 1.0)),
    "sub": (lambda a, b: a - b, lambda a, b: (1.0, -1.0)),
    "mul": (lambda a, b: a * b, lambda a, b: (b, a)),
    "div": (lambda a, b: a / b, lambda a, b: (1 / b, -a / b ** 2)),
    "maximum": (gpuad.maximum, lambda a, b: (_max_share(a, b), 1 - _max_share(a, b))),
    "minimum": (gpuad.minimum, lambda a, b: (_max_share(b, a), 1 - _max_share(b, a))),
}

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _values(rng, shape, op):
    if op in ("maximum", "minimum"):  # few distinct values: ties are common
        return rng.integers(-2, 3, shape).astype(np.float64)
    x = rng.standard_normal(shape)
    return np.sign(x) * (0.5 + np.abs(x)) if op == "div" else x


@pytest.mark.parametrize("op", OPS)
@SETTINGS
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=3),
       seed=st.integers(0, 2 ** 16))
def test_binary_grads_reduce_to_input_shapes(device, op, shapes, seed):
    rng = np.random.default_rng(seed)
    (sa, sb), out_shape = shapes
    a_np, b_np = _values(rng, sa, op), _values(rng, sb, op)
    g_np = rng.standard_normal(out_shape)
    a, b = leaf(a_np, device), leaf(b_np, device)
    fn, local = OPS[op]
    y = fn(a, b)
    assert y.shape == out_shape
    y.backward(gpuad.tensor(g_np, device=device))
    da, db = (np.broadcast_to(d, out_shape) for d in local(a_np, b_np))
    assert a.grad.shape == sa and b.grad.shape == sb
    np.testing.assert_allclose(a.grad.numpy(), reduce_to(g_np * da, sa), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), reduce_to(g_np * db, sb), rtol=1e-12, atol=1e-12)


@SETTINGS
@given(shapes=mutually_broadcastable_shapes(num_shapes=3, max_dims=4, max_side=3),
       seed=st.integers(0, 2 ** 16))
def test_where_grads_reduce_to_input_shapes(device, shapes, seed):
    rng = np.random.default_rng(seed)
    (sc, sa, sb), out_shape = shapes
    cond = rng.random(sc) < 0.5
    a, b = leaf(rng.standard_normal(sa), device), leaf(rng.standard_normal(sb), device)
    g_np = rng.standard_normal(out_shape)
    y = gpuad.where(gpuad.tensor(cond, device=device), a, b)
    assert y.shape == out_shape
    y.backward(gpuad.tensor(g_np, device=device))
    assert a.grad.shape == sa and b.grad.shape == sb
    np.testing.assert_allclose(a.grad.numpy(), reduce_to(np.where(cond, g_np, 0), sa),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), reduce_to(np.where(cond, 0, g_np), sb),
                               rtol=1e-12, atol=1e-12)
