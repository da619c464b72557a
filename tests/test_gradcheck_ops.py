"""Every op's backward against central finite differences (float64), as a table.

Each row is ``case(id, fn, *shapes, domain=...)``: ``fn`` takes one float64 tensor per
shape; ``domain`` keeps inputs where the op is smooth (``positive`` for log/sqrt and
fractional powers, ``away`` for |x| >= 0.3: division, abs, relu, clamp's corners).
"""
import pytest

import gpuad
from gpuad.autograd import Function, GradcheckError, gradcheck

F = gpuad.nn.functional


def case(name, fn, *shapes, domain="normal"):
    return pytest.param(fn, shapes, domain, id=name)


def make_input(shape, domain, device):
    x = gpuad.randn(*shape, dtype=gpuad.float64, device=device)
    if domain == "positive":
        x = 0.5 + x.abs()
    elif domain == "away":
        x = x.sign() * (0.3 + x.abs())
    return x.requires_grad_()


def idx(data, like):
    """An index tensor on ``like``'s device."""
    return gpuad.tensor(data, device=like.device)


ARITHMETIC = [
    case("add", lambda a, b: a + b, (3, 4), (3, 4)),
    case("add_broadcast", lambda a, b: a + b, (2, 3, 1), (4,)),
    case("add_size1_both", lambda a, b: a + b, (1, 3), (2, 1)),
    case("radd_scalar", lambda a: 2.5 + a, (3,)),
    case("sub_broadcast", lambda a, b: a - b, (2, 1, 3), (4, 1)),
    case("rsub_scalar", lambda a: 1 - a, (2, 2)),
    case("mul", lambda a, b: a * b, (3, 2), (3, 2)),
    case("mul_broadcast", lambda a, b: a * b, (3,), (2, 1, 3)),
    case("mul_self", lambda a: a * a, (4,)),
    case("rmul_scalar", lambda a: 3 * a, (2, 3)),
    case("div", lambda a, b: a / b, (2, 3), (2, 3), domain="away"),
    case("div_broadcast", lambda a, b: a / b, (2, 1), (1, 3), domain="away"),
    case("rdiv_scalar", lambda a: 2 / a, (3,), domain="away"),
    case("div_scalar", lambda a: a / 4, (3,)),
    case("pow_int", lambda a: a ** 3, (2, 3)),
    case("pow_square", lambda a: a ** 2, (4,)),
    case("pow_fraction", lambda a: a ** 1.5, (3,), domain="positive"),
    case("pow_negative", lambda a: a ** -2.5, (3,), domain="positive"),
    case("pow_tensor", lambda a, b: a ** b, (2, 3), (2, 3), domain="positive"),
    case("pow_tensor_broadcast", lambda a, b: a ** b, (2, 1), (3,), domain="positive"),
    case("rpow_scalar", lambda a: 2 ** a, (3,)),
    case("pow_method", lambda a: a.pow(3), (2,)),
    case("neg", lambda a: -a, (2, 3)),
]

MATMUL = [
    case("matmul_1d_1d", lambda a, b: a @ b, (3,), (3,)),
    case("matmul_2d", lambda a, b: a @ b, (2, 3), (3, 4)),
    case("matmul_2d_1d", lambda a, b: a @ b, (2, 3), (3,)),
    case("matmul_1d_2d", lambda a, b: a @ b, (3,), (3, 2)),
    case("matmul_batched", lambda a, b: a @ b, (2, 2, 3), (2, 3, 2)),
    case("matmul_batch_broadcast", lambda a, b: a @ b, (2, 1, 2, 3), (3, 3, 2)),
    case("matmul_nd_2d", lambda a, b: a @ b, (2, 2, 3), (3, 2)),
    case("matmul_1d_nd", lambda a, b: a @ b, (3,), (2, 3, 2)),
    case("matmul_nd_1d", lambda a, b: a @ b, (2, 2, 3), (3,)),
    case("matmul_function", lambda a, b: gpuad.matmul(a, b), (1, 3), (3, 1)),
]

UNARY_OPS = {  # each runs on a 0-d, a 1-D and a 3-D input with a size-1 dim
    "exp": (lambda a: a.exp(), "normal"),
    "log": (lambda a: a.log(), "positive"),
    "sqrt": (lambda a: a.sqrt(), "positive"),
    "erf": (lambda a: a.erf(), "normal"),
    "abs": (lambda a: a.abs(), "away"),
    "tanh": (lambda a: a.tanh(), "normal"),
    "sigmoid": (lambda a: a.sigmoid(), "normal"),
    "relu": (lambda a: a.relu(), "away"),
    "leaky_relu": (lambda a: F.leaky_relu(a, 0.2), "away"),
    "gelu": (lambda a: F.gelu(a), "normal"),
    "softplus": (lambda a: F.softplus(a), "normal"),
    "softplus_beta_threshold": (lambda a: F.softplus(a * 3, beta=2, threshold=1), "normal"),
    "clamp": (lambda a: a.clamp(-0.5, 0.5), "normal"),
    "clamp_min": (lambda a: a.clamp(min=0.1), "normal"),
    "clamp_max": (lambda a: gpuad.clamp(a, max=-0.1), "normal"),
}

UNARY = [case(f"{name}-{shape}", fn, shape, domain=domain)
         for name, (fn, domain) in UNARY_OPS.items() for shape in [(), (4,), (2, 1, 3)]]

SELECTION = [
    case("maximum", lambda a, b: gpuad.maximum(a, b), (2, 3), (2, 3)),
    case("maximum_broadcast", lambda a, b: a.maximum(b), (2, 1), (1, 3)),
    case("minimum_broadcast", lambda a, b: gpuad.minimum(a, b), (3,), (2, 3)),
    case("where", lambda a, b: gpuad.where(a > 0, a, b), (2, 3), (2, 3), domain="away"),
    case("where_broadcast", lambda a, b: gpuad.where(
        idx([True, False, True], a), a, b), (2, 1), (2, 3)),
    case("where_scalar", lambda a: gpuad.where(a > 0, a, 0.0), (4,), domain="away"),
    case("max_elementwise", lambda a, b: gpuad.max(a, b), (2, 3), (3,)),
    case("min_method_elementwise", lambda a, b: a.min(b), (2, 3), (2, 3)),
    case("clamp_tensor_bounds", lambda x, lo, hi: x.clamp(lo, hi - 2), (2, 3), (3,), (2, 1),
         domain="away"),
    case("clamp_tensor_min", lambda x, lo: gpuad.clamp(x, min=lo), (4,), (4,), domain="away"),
    case("clamp_tensor_max", lambda x, hi: x.clamp(max=hi), (2, 2), (), domain="away"),
    case("sign", lambda a: a.sign() * a, (3,), domain="away"),
]

REDUCTIONS = [
    case("sum_all", lambda a: a.sum(), (2, 3)),
    case("sum_dim", lambda a: a.sum(1), (2, 3, 2)),
    case("sum_dims_keepdim", lambda a: a.sum((0, 2), keepdim=True), (2, 3, 2)),
    case("sum_axis_keepdims", lambda a: a.sum(axis=-1, keepdims=True), (2, 3)),
    case("sum_size1_dim", lambda a: gpuad.sum(a, dim=0), (1, 3)),
    case("mean_all", lambda a: a.mean(), (2, 3)),
    case("mean_dim", lambda a: a.mean(0), (2, 3)),
    case("mean_axis_keepdims", lambda a: a.mean(axis=(0, 1), keepdims=True), (2, 3, 2)),
    case("max_all", lambda a: a.max(), (2, 3)),
    case("max_dim", lambda a: a.max(1), (2, 3, 2)),
    case("max_dim_keepdim", lambda a: a.max(dim=0, keepdim=True), (3, 2)),
    case("max_axis_keepdims", lambda a: a.max(axis=-1, keepdims=True), (2, 3)),
    case("max_dim_values_indices", lambda a: a.max(-1).values * a.max(-1)[1], (2, 3)),
    case("max_0d", lambda a: a.max(0).values, ()),
    case("amax_dims", lambda a: a.amax((0, 2)), (2, 3, 2)),
    case("amax_all", lambda a: gpuad.amax(a), (2, 3)),
    case("amin_dim_keepdim", lambda a: a.amin(1, keepdim=True), (2, 3)),
    case("min_all", lambda a: a.min(), (2, 3)),
    case("min_dim", lambda a: a.min(0), (3, 2)),
    case("min_axis_keepdims", lambda a: a.min(axis=1, keepdims=True), (2, 3)),
    case("sum_0d_dim", lambda a: a.sum(0) * a.sum(-1), ()),
    case("sum_empty_dims_tuple", lambda a: a.sum(dim=()), (2, 3)),
    case("mean_0d_dim", lambda a: a.mean(-1, keepdim=True), ()),
    case("var_all", lambda a: a.var(), (2, 3)),
    case("var_dim", lambda a: a.var(1), (2, 4)),
    case("var_biased_keepdim", lambda a: a.var(0, keepdim=True, unbiased=False), (3, 2)),
    case("var_axis_correction", lambda a: a.var(axis=(0, 1), correction=0), (2, 3, 2)),
    case("std", lambda a: a.std(1), (2, 3)),
    case("std_all_keepdim", lambda a: gpuad.std(a, (0, 1), keepdim=True, correction=0),
         (2, 3)),
    case("logsumexp_dim", lambda a: a.logsumexp(1), (2, 3)),
    case("logsumexp_dims", lambda a: a.logsumexp((0, 1)), (2, 3)),
    case("logsumexp_axis_keepdims", lambda a: gpuad.logsumexp(a, axis=0, keepdims=True),
         (3, 2)),
    case("logsumexp_0d", lambda a: a.logsumexp(-1), ()),
    case("softmax_0d", lambda a: a.softmax(0) * a, ()),
    case("softmax_last", lambda a: a.softmax(-1), (2, 3)),
    case("softmax_first", lambda a: F.softmax(a, 0), (3, 2)),
    case("softmax_size1", lambda a: a.softmax(1), (2, 1, 3)),
    case("log_softmax_last", lambda a: a.log_softmax(-1), (2, 3)),
    case("log_softmax_middle", lambda a: F.log_softmax(a, 1), (2, 3, 2)),
]

SHAPE = [
    case("reshape", lambda a: a.reshape(3, 4), (2, 6)),
    case("reshape_minus1", lambda a: a.reshape(-1), (2, 3)),
    case("reshape_transposed", lambda a: a.T.reshape(6), (2, 3)),
    case("view", lambda a: a.view(2, -1, 2), (4, 2)),
    case("transpose", lambda a: a.transpose(0, 2), (2, 3, 1)),
    case("permute", lambda a: a.permute(2, 0, 1), (2, 3, 2)),
    case("T_2d", lambda a: a.T, (2, 3)),
    case("T_3d", lambda a: a.T, (2, 3, 2)),
    case("mT", lambda a: a.mT, (2, 3, 2)),
    case("expand", lambda a: a.expand(2, 3, 4), (3, 1)),
    case("expand_minus1", lambda a: a.expand(2, -1), (1, 3)),
    case("expand_as", lambda a, b: a.expand_as(b) * b, (1, 3), (2, 3)),
    case("squeeze_all", lambda a: a.squeeze(), (1, 3, 1, 2)),
    case("squeeze_dim", lambda a: a.squeeze(2), (2, 3, 1)),
    case("unsqueeze", lambda a: a.unsqueeze(1), (2, 3)),
    case("unsqueeze_last", lambda a: a.unsqueeze(-1), (3,)),
    case("flatten", lambda a: a.flatten(), (2, 2, 3)),
    case("flatten_from_1", lambda a: a.flatten(1), (2, 2, 3)),
    case("cat_dim0", lambda a, b: gpuad.cat([a, b]), (2, 3), (1, 3)),
    case("cat_dim1_three", lambda a, b: gpuad.cat([a, b, a], dim=1), (2, 1), (2, 3)),
    case("stack", lambda a, b: gpuad.stack([a, b]), (2, 3), (2, 3)),
    case("stack_last", lambda a, b: gpuad.stack([a, b, a], dim=-1), (3,), (3,)),
    case("split_size", lambda a: a.split(2), (5, 2)),
    case("split_sections", lambda a: gpuad.split(a, [1, 3], dim=1), (2, 4)),
    case("split_one_piece_used", lambda a: a.split(2)[1] * 2, (4,)),
    case("chunk", lambda a: a.chunk(2, dim=1), (2, 4)),
]

INDEXING = [
    case("slice", lambda a: a[1:3], (4, 2)),
    case("slice_step", lambda a: a[:, ::2], (2, 5)),
    case("int_and_ellipsis", lambda a: a[..., 1], (2, 2, 3)),
    case("int_negative_none", lambda a: a[None, -1], (3, 2)),
    case("int_array_repeated", lambda a: a[[0, 2, 0, 0]], (3, 2)),
    case("int_tensor_2d_repeated", lambda a: a[idx([[0, 0], [1, 0]], a)], (3,)),
    case("int_array_second_dim", lambda a: a[:, [1, 1, 0]], (2, 3)),
    case("int_arrays_pairs", lambda a: a[[0, 0, 1], [1, 1, 2]], (2, 3)),
    case("bool_mask", lambda a: a[idx([True, False, True], a)], (3, 2)),
    case("bool_mask_full", lambda a: a[idx([[True, False], [False, True]], a)], (2, 2)),
    case("bool_mask_from_values", lambda a: a[a > 0], (3, 3), domain="away"),
]

LOSSES = [
    case("cross_entropy", lambda a: F.cross_entropy(a, idx([0, 2, 1, 1], a)), (4, 3)),
    case("cross_entropy_one_row", lambda a: F.cross_entropy(a, idx([1], a)), (1, 2)),
    case("nll_loss_log_softmax", lambda a: F.nll_loss(a.log_softmax(1), idx([2, 2, 0], a)),
         (3, 3)),
    case("nll_loss", lambda a: F.nll_loss(a, idx([1, 0, 1], a)), (3, 2)),
    case("mse_loss", lambda a, b: F.mse_loss(a, b), (2, 3), (2, 3)),
    case("mse_loss_sum", lambda a, b: F.mse_loss(a, b, reduction="sum"), (4,), (4,)),
    case("mse_loss_none", lambda a, b: F.mse_loss(a, b, reduction="none"), (3,), (3,)),
    case("linear", lambda x, w, b: F.linear(x, w, b), (2, 3), (4, 3), (4,)),
    case("linear_no_bias", lambda x, w: F.linear(x, w), (3,), (2, 3)),
    case("linear_batched", lambda x, w, b: F.linear(x, w, b), (2, 1, 3), (2, 3), (1,)),
]


@pytest.mark.parametrize("fn, shapes, domain", ARITHMETIC + MATMUL + UNARY + SELECTION
                         + REDUCTIONS + SHAPE + INDEXING + LOSSES)
def test_gradcheck(device, fn, shapes, domain):
    inputs = [make_input(shape, domain, device) for shape in shapes]
    assert gradcheck(fn, inputs)


class _WrongSquare(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, gy):
        x, = self.saved_tensors
        return gy * x  # should be 2 x


def test_gradcheck_catches_a_wrong_backward(device):
    x = make_input((3,), "positive", device)
    with pytest.raises(GradcheckError, match="input 0 .* by backward but .* by finite"):
        gradcheck(lambda t: _WrongSquare().apply(t), (x,))
    assert gradcheck(lambda t: _WrongSquare().apply(t), (x,), raise_exception=False) is False
