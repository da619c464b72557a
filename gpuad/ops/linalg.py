"""Matrix multiplication: 1-D, 2-D and batched N-D with broadcast batch dims."""
from .. import dtypes
from ..autograd.function import Function
from ..errors import broadcast_shapes
from ..tensor import Tensor
from .elementwise import as_operands
from .shape import reshape, sum_to, unsqueeze


class MatMul(Function):
    def forward(self, a, b):
        na, nb = self.needs_input_grad
        # each input's gradient needs only the other input
        self.save_for_backward(a if nb else None, b if na else None)
        self.shapes = a.shape, b.shape
        return self.backend.matmul(a, b)

    def backward(self, gy):
        a, b = self.saved_tensors
        a_shape, b_shape = self.shapes
        if len(a_shape) == 1 and len(b_shape) == 1:  # dot product: gy is 0-d
            return (None if b is None else gy * b), (None if a is None else gy * a)
        # lift 1-D operands to matrices so one rule covers every case
        a_lifted, b_lifted = a_shape, b_shape
        if len(a_shape) == 1:
            gy, a_lifted = unsqueeze(gy, -2), (1,) + a_shape
            a = None if a is None else reshape(a, a_lifted)
        if len(b_shape) == 1:
            gy, b_lifted = unsqueeze(gy, -1), b_shape + (1,)
            b = None if b is None else reshape(b, b_lifted)
        ga = None if b is None else reshape(sum_to(gy @ b.mT, a_lifted), a_shape)
        gb = None if a is None else reshape(sum_to(a.mT @ gy, b_lifted), b_shape)
        return ga, gb

    def jvp(self, ta, tb):
        a, b = self.saved_tensors
        terms = [None if ta is None else ta @ b, None if tb is None else a @ tb]
        terms = [t for t in terms if t is not None]
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]


def matmul(a, b):
    """Matrix product with NumPy's rules for 1-D and batched operands; the operands must
    have one dtype, as in PyTorch (no promotion)."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if a._data.dtype != b._data.dtype:
            raise TypeError(f"matmul: the operands are {dtypes.name(a.dtype)} and "
                            f"{dtypes.name(b.dtype)}, but must have the same dtype (PyTorch "
                            f"does not promote here); convert one, e.g. x.to({b.dtype})")
    else:
        a, b = as_operands(a, b, "matmul", broadcast=False)
    if a._data.dtype == dtypes.bool_:
        raise TypeError("matmul of bool tensors is not supported (as in PyTorch); convert "
                        "them with .long() or .float()")
    sa, sb = a._data.shape, b._data.shape
    if not sa or not sb:
        raise ValueError(f"matmul: both operands need at least 1 dim, got shapes {sa} "
                         f"and {sb}; use * for scalars")
    k_a = sa[-1]
    k_b = sb[0] if len(sb) == 1 else sb[-2]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {sa} and {sb} do not fit: the last dim "
                         f"of the first ({k_a}) must equal the "
                         f"{'only' if len(sb) == 1 else 'second-to-last'} dim of the second "
                         f"({k_b})")
    if len(sa) > 2 and len(sb) > 2:
        try:
            broadcast_shapes(sa[:-2], sb[:-2])
        except ValueError:
            raise ValueError(f"matmul: shapes {sa} and {sb} do not fit: their batch "
                             f"dims {sa[:-2]} and {sb[:-2]} cannot be broadcast "
                             "(aligned from the right, each must be equal or 1)") from None
    return MatMul().apply(a, b)
