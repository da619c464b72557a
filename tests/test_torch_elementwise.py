"""Elementwise ops against PyTorch: dtype promotion, bitwise ops and shifts, clamp with
tensor bounds, erf, sign, pow at its special points, maximum/minimum with NaN and ties."""
import itertools
import math

import numpy as np
import pytest

import gpuad
from torch_diff import assert_same, value_and_grads

torch = pytest.importorskip("torch")

INF, NAN = math.inf, math.nan
DTYPES = ["bool", "int32", "int64", "float16", "float32", "float64"]


def _ones(lib, dtype, shape, device="cpu"):
    if lib is gpuad:
        return gpuad.ones(shape, dtype=getattr(gpuad, dtype) if dtype != "bool" else
                          gpuad.bool, device=device)
    return lib.ones(shape, dtype=getattr(lib, dtype))


# --- promotion --------------------------------------------------------------------------
@pytest.mark.parametrize("a, b", list(itertools.product(DTYPES, DTYPES)))
@pytest.mark.parametrize("b_shape", [(2,), ()], ids=["dim", "0d"])
def test_binary_promotion_matches_torch(device, a, b, b_shape):
    for name, op in [("add", lambda lib, x, y: x + y), ("mul", lambda lib, x, y: x * y),
                     ("div", lambda lib, x, y: x / y), ("eq", lambda lib, x, y: x == y),
                     ("maximum", lambda lib, x, y: lib.maximum(x, y)),
                     ("where", lambda lib, x, y: lib.where(x > 0, x, y))]:
        g = op(gpuad, _ones(gpuad, a, (2,), device), _ones(gpuad, b, b_shape, device))
        t = op(torch, _ones(torch, a, (2,)), _ones(torch, b, b_shape))
        assert_same(g, t, what=f"{a} {name} {b}{b_shape}")


@pytest.mark.parametrize("a", DTYPES)
@pytest.mark.parametrize("scalar", [True, 3, 2.5])
def test_python_scalar_promotion_matches_torch(device, a, scalar):
    g, t = _ones(gpuad, a, (2,), device), _ones(torch, a, (2,))
    assert_same(g * scalar, t * scalar)
    assert_same(scalar * g, scalar * t)
    if a != "bool" and scalar is not True:
        assert_same(g - scalar, t - scalar)
        assert_same(scalar - g, scalar - t)
    else:
        for fn in (lambda x: x - scalar, lambda x: scalar - x):
            with pytest.raises(RuntimeError, match="bool"):
                fn(t)
            with pytest.raises(TypeError, match="bool.*logical_xor"):
                fn(g)
    assert_same(g / scalar, t / scalar)


def test_int_tensor_with_float_tensor_keeps_the_float_dtype(device):
    """float32 + int64 is float32 and float16 + int32 float16, as in PyTorch (category
    first, then the width within the winning category)."""
    f32 = gpuad.ones(2, device=device)
    assert (f32 + gpuad.ones(2, dtype=gpuad.int64, device=device)).dtype == gpuad.float32
    assert (gpuad.ones(2, dtype=gpuad.float16, device=device)
            + gpuad.ones(2, dtype=gpuad.int32, device=device)).dtype == gpuad.float16
    assert gpuad.cat([f32, gpuad.ones(2, dtype=gpuad.int64, device=device)]).dtype \
        == gpuad.float32


def test_matmul_and_linear_refuse_mixed_dtypes_like_torch(device):
    x = gpuad.ones(2, 3, dtype=gpuad.int64, device=device)
    lin = gpuad.nn.Linear(3, 4).to(device)
    with pytest.raises(TypeError, match="int64.*float32.*same dtype"):
        lin(x)
    with pytest.raises(TypeError, match="same dtype"):
        gpuad.ones(2, 3, device=device) @ gpuad.ones(3, 2, dtype=gpuad.float64, device=device)
    with pytest.raises(TypeError, match="same dtype"):
        gpuad.nn.functional.linear(gpuad.ones(2, 3, device=device),
                                   gpuad.ones(4, 3, device=device),
                                   gpuad.ones(4, dtype=gpuad.float64, device=device))
    ints = gpuad.ones(2, 3, dtype=gpuad.int64, device=device)
    assert_same(ints @ ints.T, torch.ones(2, 3, dtype=torch.int64) @ torch.ones(3, 2,
                                                                            dtype=torch.int64))


# --- bitwise ----------------------------------------------------------------------------
_INTS = [[5, 3, -7, 0], [3, 6, 2, -1]]
_BOOLS = [[True, False, True, False], [True, True, False, False]]


@pytest.mark.parametrize("case", [
    lambda lib, a, b: a & b, lambda lib, a, b: a | b, lambda lib, a, b: a ^ b,
    lambda lib, a, b: ~a, lambda lib, a, b: a & 6, lambda lib, a, b: 6 | a,
    lambda lib, a, b: 7 ^ a, lambda lib, a, b: 12 & a,
    lambda lib, a, b: lib.bitwise_and(a, b), lambda lib, a, b: lib.bitwise_or(a, 2),
    lambda lib, a, b: lib.bitwise_xor(a, b), lambda lib, a, b: lib.bitwise_not(a),
    lambda lib, a, b: a.bitwise_and(b), lambda lib, a, b: a.logical_xor(b),
    lambda lib, a, b: lib.logical_and(a, b), lambda lib, a, b: lib.logical_or(a, b),
    lambda lib, a, b: lib.logical_not(a), lambda lib, a, b: lib.logical_xor(a, b),
])
@pytest.mark.parametrize("kind", ["int64", "int32", "bool"])
def test_bitwise_ops_match_torch(device, case, kind):
    data = _BOOLS if kind == "bool" else _INTS
    g = [gpuad.tensor(d, dtype=getattr(gpuad, kind) if kind != "bool" else gpuad.bool,
                      device=device) for d in data]
    t = [torch.tensor(d, dtype=getattr(torch, kind)) for d in data]
    assert_same(case(gpuad, *g), case(torch, *t))


def test_bitwise_mixed_dtypes_match_torch(device):
    for a, b in itertools.product(["bool", "int32", "int64"], repeat=2):
        for op in ("__and__", "__or__", "__xor__"):
            g = getattr(_ones(gpuad, a, (2,), device), op)(_ones(gpuad, b, (2,), device))
            t = getattr(_ones(torch, a, (2,)), op)(_ones(torch, b, (2,)))
            assert_same(g, t, what=f"{a} {op} {b}")
    b = gpuad.tensor([True, False], device=device)
    assert_same(b & True, torch.tensor([True, False]) & True)
    assert_same(b & 1, torch.tensor([True, False]) & 1)


@pytest.mark.parametrize("case", [
    lambda lib, a, s: a << s, lambda lib, a, s: a >> s, lambda lib, a, s: a << 2,
    lambda lib, a, s: a >> 1, lambda lib, a, s: 1 << s, lambda lib, a, s: -64 >> s,
    lambda lib, a, s: lib.bitwise_left_shift(a, s), lambda lib, a, s: a.bitwise_right_shift(s),
])
@pytest.mark.parametrize("kind", ["int64", "int32"])
def test_shifts_match_torch_including_wide_and_negative_amounts(device, case, kind):
    a = [5, -8, 1, -1, 3, 7]
    s = [1, 2, 63, 64, 70, -1]
    if kind == "int32":
        s = [1, 2, 31, 32, 40, -1]
    g = [gpuad.tensor(v, dtype=getattr(gpuad, kind), device=device) for v in (a, s)]
    t = [torch.tensor(v, dtype=getattr(torch, kind)) for v in (a, s)]
    assert_same(case(gpuad, *g), case(torch, *t))


def test_in_place_bitwise_ops_change_the_tensor(device):
    x = gpuad.tensor([5, 3], device=device)
    alias = x
    x &= 6
    x |= gpuad.tensor([8, 0], device=device)
    x ^= 1
    x <<= 1
    x >>= 2
    tx = torch.tensor([5, 3])
    tx &= 6
    tx |= torch.tensor([8, 0])
    tx ^= 1
    tx <<= 1
    tx >>= 2
    assert alias is x
    assert_same(x, tx)


def test_bitwise_ops_refuse_floats(device):
    x = gpuad.ones(2, device=device)
    for fn in (lambda: x & x, lambda: ~x, lambda: x << 1, lambda: 1 | x,
               lambda: gpuad.ones(2, dtype=gpuad.int64, device=device) >> 1.5):
        with pytest.raises(TypeError, match="integer or bool"):
            fn()


# --- clamp ------------------------------------------------------------------------------
_CLAMP_X = [1.0, -1.0, 0.5, 2.0, NAN, 0.0, -3.0]
_CLAMP_LO = [0.0, 0.0, 0.5, 3.0, 0.0, NAN, 1.5]
_CLAMP_HI = [0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize("case", [
    lambda lib, x, lo, hi: x.clamp(min=lo),
    lambda lib, x, lo, hi: x.clamp(max=hi),
    lambda lib, x, lo, hi: x.clamp(lo, hi),
    lambda lib, x, lo, hi: lib.clamp(x, lo, hi) * lo,
    lambda lib, x, lo, hi: x.clamp(min=lo[:1]),
    lambda lib, x, lo, hi: x.reshape(7, 1).clamp(lo, hi),
    lambda lib, x, lo, hi: x.clamp(-0.5, 0.5),
    lambda lib, x, lo, hi: x.clamp(1.5, 0.0),
    lambda lib, x, lo, hi: x.clip(min=0.0),
], ids=["min", "max", "both", "function_reused", "broadcast_bound", "broadcast_out",
        "scalars", "scalars_crossed", "clip"])
def test_clamp_values_and_gradients_match_torch(device, case):
    arrays = [np.array(v) for v in (_CLAMP_X, _CLAMP_LO, _CLAMP_HI)]
    g_out, g_grads = value_and_grads(gpuad, case, arrays, device)
    t_out, t_grads = value_and_grads(torch, case, arrays)
    assert_same(g_out, t_out)
    assert_same(g_grads, t_grads, what="grads")


def test_clamp_dtypes_match_torch(device):
    for x, lo in [([1, 5], 2.5), ([1, 5], 2), ([1.0, 5.0], 2)]:
        gx, tx = gpuad.tensor(x, device=device), torch.tensor(x)
        assert_same(gx.clamp(min=lo), tx.clamp(min=lo))
        assert_same(gx.clamp(min=gpuad.tensor(lo, device=device)),
                    tx.clamp(min=torch.tensor(lo)))
    h = gpuad.tensor([1.0, 5.0], dtype=gpuad.float16, device=device)
    assert_same(h.clamp(min=2), torch.tensor([1.0, 5.0], dtype=torch.float16).clamp(min=2))


# --- erf -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_erf_matches_torch(device, dtype):
    arrays = [np.array([-3.0, -0.5, 0.0, 1e-3, 0.7, 4.0], dtype=dtype)]
    for case in (lambda lib, x: x.erf(), lambda lib, x: lib.erf(x * x)):
        g_out, g_grads = value_and_grads(gpuad, case, arrays, device)
        t_out, t_grads = value_and_grads(torch, case, arrays)
        tol = dict(rtol=1e-6, atol=1e-7) if dtype == "float32" else dict(rtol=1e-13)
        assert_same(g_out, t_out, **tol)
        assert_same(g_grads, t_grads, **tol)
    assert_same(gpuad.erf(gpuad.tensor([0, 1], device=device)), torch.erf(torch.tensor([0, 1])),
                rtol=1e-6)


# --- sign, pow ----------------------------------------------------------------------------
def test_sign_has_a_zero_gradient(device):
    for case in (lambda lib, x: x.sign(), lambda lib, x: lib.sign(x) * x,
                 lambda lib, x: x.abs() * x.sign()):
        arrays = [np.array([1.0, 0.0, -2.0])]
        g_out, g_grads = value_and_grads(gpuad, case, arrays, device)
        t_out, t_grads = value_and_grads(torch, case, arrays)
        assert g_out.requires_grad
        assert_same(g_out, t_out)
        assert_same(g_grads, t_grads)
    i = gpuad.tensor([3, 0, -2], device=device)
    assert_same(i.sign(), torch.tensor([3, 0, -2]).sign())
    with pytest.raises(TypeError, match="abs of a bool"):
        gpuad.tensor([True], device=device).abs()
    assert_same(gpuad.tensor([True, False], device=device).sign(),
                torch.tensor([True, False]).sign())


_BASES = [0.0, 0.0, 0.0, 0.0, -2.0, -2.0, -2.0, 2.0, INF, -INF, NAN, 1.0, 0.5]
_EXPS = [2.0, 0.0, -1.0, 0.5, 2.0, 0.5, 3.0, 0.0, 0.0, 0.0, 0.0, INF, -INF]


@pytest.mark.parametrize("case", [
    lambda lib, a, b: a ** b,
    lambda lib, a, b: a.pow(b) * 2,
    lambda lib, a, b: a ** 2, lambda lib, a, b: a ** 0.5, lambda lib, a, b: a ** -1,
    lambda lib, a, b: a ** 0, lambda lib, a, b: a ** 0.0, lambda lib, a, b: a ** 3.0,
    lambda lib, a, b: a ** 1, lambda lib, a, b: a ** -2.5,
    lambda lib, a, b: 2 ** b, lambda lib, a, b: 0 ** b, lambda lib, a, b: 0.0 ** b,
    lambda lib, a, b: (-2.0) ** b, lambda lib, a, b: 1.0 ** b,
], ids=["tensor", "method", "sq", "sqrt", "inv", "zero", "zero_f", "cube", "one", "neg_frac",
        "rpow2", "rpow0", "rpow0f", "rpow_neg", "rpow1"])
def test_pow_gradients_at_special_points_match_torch(device, case):
    arrays = [np.array(_BASES), np.array(_EXPS)]
    with np.errstate(all="ignore"):
        g_out, g_grads = value_and_grads(gpuad, case, arrays, device)
    t_out, t_grads = value_and_grads(torch, case, arrays)
    assert_same(g_out, t_out)
    assert_same(g_grads, t_grads, what="grads")


def test_pow_dtypes_match_torch(device):
    for case in (lambda lib, a: a ** 0.5, lambda lib, a: a ** 3, lambda lib, a: 2 ** a,
                 lambda lib, a: 2.5 ** a, lambda lib, a: a ** lib.tensor(2.0, device=a.device),
                 lambda lib, a: a ** lib.tensor([-1, 2, -3, 0, 1], device=a.device),
                 lambda lib, a: (-2) ** (a - 3), lambda lib, a: (a > 0) ** 2,
                 lambda lib, a: (a > 1) ** True, lambda lib, a: (a > 1) ** 0.5):
        assert_same(case(gpuad, gpuad.tensor([2, 3, -1, 1, 0], device=device)),
                    case(torch, torch.tensor([2, 3, -1, 1, 0])))
    with pytest.raises((ValueError, RuntimeError), match="negative integer powers"):
        gpuad.tensor([2], device=device) ** -1


# --- maximum / minimum ----------------------------------------------------------------------
@pytest.mark.parametrize("case", [
    lambda lib, a, b: lib.maximum(a, b), lambda lib, a, b: lib.minimum(a, b),
    lambda lib, a, b: lib.max(a, b), lambda lib, a, b: lib.min(a, b),
    lambda lib, a, b: a.max(b), lambda lib, a, b: a.min(b),
    lambda lib, a, b: a.maximum(b[:1]),
])
def test_maximum_minimum_with_nan_and_ties_match_torch(device, case):
    arrays = [np.array([1.0, NAN, 2.0, NAN, 3.0, -INF]), np.array([0.0, 1.0, 2.0, NAN, 4.0, -INF])]
    g_out, g_grads = value_and_grads(gpuad, case, arrays, device)
    t_out, t_grads = value_and_grads(torch, case, arrays)
    assert_same(g_out, t_out)
    assert_same(g_grads, t_grads, what="grads")


@pytest.mark.parametrize("case", [
    lambda lib, x: x / 1e6, lambda lib, x: x * 1e5, lambda lib, x: 1e5 * x - 7e4,
    lambda lib, x: (x + 1e5) - 1e5, lambda lib, x: 1e6 / (x + 1), lambda lib, x: x < 1e5,
    lambda lib, x: x == 70000.0, lambda lib, x: 2e5 - x,
], ids=["div", "mul", "mul_sub", "add_sub", "rdiv", "lt", "eq", "rsub"])
def test_float16_with_python_numbers_beyond_its_range_like_torch(device, case, request):
    """PyTorch computes float16 mul, div and comparisons with a Python number in float32
    and rounds the result once (x / 1e6 is not x / inf); add and sub take the number as
    float16 (inf)."""
    data = np.array([1.0, 0.5, 300.0, -2.0], np.float16)
    g, (gg,) = value_and_grads(gpuad, case, [data], device)
    t, (tg,) = value_and_grads(torch, case, [data])
    assert_same(g, t, rtol=1e-3)
    if request.node.callspec.id.endswith("rdiv"):
        # PyTorch's backward takes 1e6 as float16 (inf): -inf at x = 300, not -11.04
        np.testing.assert_allclose(gg.numpy()[2], -1e6 / 301.0 ** 2, rtol=1e-3)
    else:
        assert_same(gg, tg, rtol=1e-3)
