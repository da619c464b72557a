"""Movement ops: reshape, transpose, expand, indexing, concatenation, device moves.

None of them computes anything: their backward moves the gradient back into place.
"""
from .. import dtypes, tracing
from ..autograd.function import Function
from ..tensor import Tensor


def _dim(d, ndim, op, extra=0):
    """``d`` as a non-negative dimension, or an error naming the valid range. A 0-d tensor
    takes 0 and -1 as PyTorch does (both give 0)."""
    n = ndim + extra
    if not isinstance(d, int) or isinstance(d, bool):
        raise TypeError(f"{op}: dim must be an int, got {d!r}")
    m = max(n, 1)
    if not -m <= d < m:
        raise IndexError(f"{op}: dim {d} is out of range for a tensor with {ndim} dims "
                         f"(expected {-m} to {m - 1})")
    return d % n if n else 0


def _shape_arg(shape):
    """Accept ``f(2, 3)`` and ``f((2, 3))`` alike."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(map(int, shape))


class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.in_shape = x.shape
        y = x.reshape(self.shape)
        self.is_view = y.base is not None and (y.base is x or y.base is x.base)
        return y

    def backward(self, gy):
        return reshape(gy, self.in_shape)

    def jvp(self, t):
        return reshape(t, self.shape)


def reshape(x, shape):
    shape = _shape_arg(shape)
    if shape == x._data.shape:
        return x
    known, numel = 1, x._data.size
    for s in shape:
        known *= s if s != -1 else 1
    if shape.count(-1) > 1 or (-1 not in shape and known != numel) or \
            (-1 in shape and (known == 0 or numel % known)):
        raise ValueError(f"reshape: cannot view shape {x.shape} ({numel} elements) as "
                         f"{shape}; the sizes must multiply to {numel} (one -1 may stand "
                         "for the rest)")
    if -1 in shape:  # resolved, so that (-1, n) on an (m, n) tensor is no op either
        shape = tuple(numel // known if s == -1 else s for s in shape)
        if shape == x._data.shape:
            return x
    return Reshape(shape).apply(x)


class Permute(Function):
    is_view = True

    def __init__(self, dims):
        self.dims = dims

    def forward(self, x):
        return x.transpose(self.dims)

    def backward(self, gy):
        inverse = [0] * len(self.dims)
        for i, d in enumerate(self.dims):
            inverse[d] = i
        return permute(gy, tuple(inverse))

    def jvp(self, t):
        return permute(t, self.dims)


def permute(x, dims):
    dims = _shape_arg(dims)
    norm = tuple(_dim(d, x.ndim, "permute") for d in dims)
    if sorted(norm) != list(range(x.ndim)):
        raise ValueError(f"permute: {dims} is not an ordering of the {x.ndim} dims of a "
                         f"tensor of shape {x.shape}")
    if norm == tuple(range(x.ndim)):
        return x
    return Permute(norm).apply(x)


def transpose(x, dim0, dim1):
    ndim = x._data.ndim
    if ndim < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return x
    a, b = _dim(dim0, ndim, "transpose"), _dim(dim1, ndim, "transpose")
    if a == b:
        return x
    dims = list(range(ndim))
    dims[a], dims[b] = dims[b], dims[a]
    return Permute(tuple(dims)).apply(x)  # a swap of two dims: permute's checks hold


class Expand(Function):
    is_view = True

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.in_shape = x.shape
        return self.xp.broadcast_to(x, self.shape)

    def backward(self, gy):
        return sum_to(gy, self.in_shape)

    def jvp(self, t):
        return expand(t, self.shape)


def expand(x, shape):
    """Broadcast ``x`` to ``shape`` without copying; ``-1`` keeps a dimension."""
    shape = _shape_arg(shape)
    in_shape = x._data.shape
    if shape == in_shape:
        return x
    lead = len(shape) - len(in_shape)
    if lead < 0:
        raise ValueError(f"expand: shape {shape} has fewer dims than the tensor's {x.shape}")
    if -1 in shape[:lead]:
        raise ValueError(f"expand: -1 in {shape} stands for a new leading dim of the tensor's "
                         f"{x.shape}; -1 can only keep an existing dim, give the new size")
    full = shape if -1 not in shape else tuple(
        in_shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape))
    for i, s in enumerate(in_shape):
        if s != 1 and s != full[i + lead]:
            raise ValueError(f"expand: cannot expand shape {x.shape} to {shape}: only "
                             "dimensions of size 1 can be expanded")
    if full == in_shape:
        return x
    return Expand(full).apply(x)


class SumTo(Function):
    """Sum a broadcast gradient back to the shape of the input it came from."""

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.in_shape = x.shape
        lead = x.ndim - len(self.shape)
        kept = tuple(i + lead for i, s in enumerate(self.shape)
                     if s == 1 and x.shape[i + lead] != 1)
        y = x.sum(axis=kept, keepdims=True) if kept else x
        # the leading dims summed away last: the result is an array, not a view that .grad
        # would have to copy (sum_to only comes here when the shapes differ)
        return y.sum(axis=tuple(range(lead))) if lead else y

    def backward(self, gy):
        return expand(gy, self.in_shape)

    def jvp(self, t):
        return sum_to(t, self.shape)


def sum_to(x, shape):
    return x if x.shape == shape else SumTo(tuple(shape)).apply(x)


def squeeze(x, dim=None):
    if dim is None:
        dims = [i for i, s in enumerate(x.shape) if s == 1]
    else:
        dims = [_dim(d, x.ndim, "squeeze") for d in (dim if isinstance(dim, tuple) else (dim,))]
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1)))


def unsqueeze(x, dim):
    d = _dim(dim, x.ndim, "unsqueeze", extra=1)
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = _dim(start_dim, x.ndim, "flatten"), _dim(end_dim, x.ndim, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(x, x.shape[:s] + (-1,) + x.shape[e + 1:])


# --- indexing ---------------------------------------------------------------------------
def _as_index(index, x):
    """The index with Tensors and lists turned into arrays of x's device.

    Returns the index and whether it is advanced (arrays), and then whether every array
    in it is a boolean mask.
    """
    items = index if isinstance(index, tuple) else (index,)
    backend = x._backend
    out, advanced, masks_only = [], False, True
    for it in items:
        if isinstance(it, Tensor):
            if it._backend is not backend:
                raise RuntimeError(f"indexing a tensor on {x.device} with an index on "
                                   f"{it.device}; move the index with .to('{x.device}')")
            arr = it._data
        elif isinstance(it, list):
            # x[[]]: no rows, as PyTorch reads it (NumPy would make a float index of it)
            arr = backend.constant(it, dtypes.int64 if not it else None)
        elif backend.is_array(it) or hasattr(it, "__array__"):
            arr = backend.asarray(it)
        else:
            if it is True or it is False:  # a 0-d mask to NumPy: it places dims as arrays do
                advanced = True
            out.append(it)
            continue
        if arr.dtype.kind not in "biu":
            raise IndexError(f"tensors used as indices must be integer or bool, got "
                             f"{arr.dtype}; convert with .long()")
        advanced = True
        masks_only = masks_only and arr.dtype == dtypes.bool_
        out.append(arr)
    return tuple(out), advanced, masks_only


def torch_order(index, ndim):
    """Where PyTorch puts the dims of an advanced index that NumPy puts first.

    Both put the broadcast dims of the index arrays in place when the arrays are next to
    each other, and first otherwise; but NumPy counts integers (and 0-d arrays) as arrays
    while PyTorch takes them first, as selects: ``x[0, :, idx]`` is ``(2, 3, 5)`` in NumPy
    and ``(3, 2, 5)`` in PyTorch for x of shape (2, 3, 4, 5). Returns ``(b, p)``: move the
    leading ``b`` dims of NumPy's result to position ``p``; or None when they agree.
    """
    ints, arrays, basics = [], [], []  # positions of ints (0-d integer arrays too), arrays
    for i, it in enumerate(index):    # (masks and Python bools too), slices/None/Ellipsis
        if it is True or it is False:
            arrays.append(i)
        elif type(it) is int:
            ints.append(i)
        elif hasattr(it, "ndim"):
            (arrays if it.ndim or it.dtype == dtypes.bool_ else ints).append(i)
        else:
            basics.append(i)
    if not ints or not arrays or not basics:
        return None  # no int beside an array, or nothing between: NumPy and PyTorch agree
    first, last = min(ints[0], arrays[0]), max(ints[-1], arrays[-1])
    if not any(first < i < last for i in basics):
        return None  # ints and arrays side by side: both keep them in place
    if any(arrays[0] < i < arrays[-1] for i in basics):
        return None  # arrays apart in PyTorch too: both put them first
    consumed = 0  # the dims of x that the items take (a k-dim mask takes k)
    for it in index:
        if it is not None and it is not Ellipsis:
            consumed += getattr(it, "ndim", 0) if _is_mask(it) else 1
    p = 0  # the dims of the result before the first array in PyTorch's order
    for i in basics:
        if i < arrays[0]:
            p += ndim - consumed if index[i] is Ellipsis else 1
    b = max(1 if _is_mask(index[i]) else index[i].ndim for i in arrays)
    return b, p


def _is_mask(it):
    return it is True or it is False or getattr(it, "dtype", None) == dtypes.bool_


def to_torch_order(xp, arr, move):
    """NumPy's result of an advanced index (``arr``) in PyTorch's dimension order."""
    b, p = move
    return xp.moveaxis(arr, tuple(range(b)), tuple(range(p, p + b)))


def to_numpy_order(xp, arr, move):
    """The inverse of ``to_torch_order``."""
    b, p = move
    return xp.moveaxis(arr, tuple(range(p, p + b)), tuple(range(b)))


class GetItem(Function):
    def __init__(self, index, advanced, masks_only, move=None):
        if not any(i is Ellipsis for i in index):
            index += (Ellipsis,)  # x[0] of a 1-D array: a 0-d view, not a NumPy scalar
        self.index, self.advanced, self.masks_only = index, advanced, masks_only
        self.move = move
        self.is_view = not advanced
        if advanced and any(getattr(i, "dtype", None) == dtypes.bool_ for i in index):
            tracing.refuse("indexing with a boolean mask (its result's shape depends on "
                           "the data)")

    def forward(self, x):
        self.in_shape = x.shape
        y = x[self.index]
        return y if self.move is None else to_torch_order(self.xp, y, self.move)

    def backward(self, gy):
        return IndexAdd(self.in_shape, self.index, self.advanced and not self.masks_only,
                        self.move).apply(gy)

    def jvp(self, t):
        return GetItem(self.index, self.advanced, self.masks_only, self.move).apply(t)


class IndexAdd(Function):
    """Zeros of ``shape`` with ``values`` added at ``index`` (repeats accumulate)."""

    def __init__(self, shape, index, accumulate, move=None):
        self.shape, self.index, self.accumulate, self.move = shape, index, accumulate, move

    def forward(self, values):
        out = self.xp.zeros(self.shape, values.dtype)
        if self.move is not None:
            values = to_numpy_order(self.xp, values, self.move)
        if self.accumulate:
            self.backend.scatter_add(out, self.index, values)
        else:
            out[self.index] = values
        return out

    def backward(self, gy):
        return GetItem(self.index, True, not self.accumulate, self.move).apply(gy)

    def jvp(self, t):
        return IndexAdd(self.shape, self.index, self.accumulate, self.move).apply(t)


def getitem(x, index):
    index, advanced, masks_only = _as_index(index, x)
    move = torch_order(index, x._data.ndim) if advanced and len(index) > 1 else None
    try:
        return GetItem(index, advanced, masks_only, move).apply(x)
    except IndexError as e:
        raise IndexError(f"index {index!r} does not fit a tensor of shape {x.shape}: {e}") \
            from None


# --- joining and splitting -------------------------------------------------------------------
class Cat(Function):
    def __init__(self, dim):
        self.dim = dim

    def forward(self, *xs):
        self.sizes = [x.shape[self.dim] for x in xs]
        return self.xp.concatenate(xs, axis=self.dim)

    def backward(self, gy):
        grads, start = [], 0
        for size, needed in zip(self.sizes, self.needs_input_grad):
            if needed:
                index = (slice(None),) * self.dim + (slice(start, start + size),)
                grads.append(getitem(gy, index))
            else:
                grads.append(None)
            start += size
        return tuple(grads)

    def jvp(self, *tangents):
        return cat([self.zero_tangent(i) if t is None else t for i, t in enumerate(tangents)],
                   self.dim)


def cat(tensors, dim=0):
    """Join tensors along an existing dimension ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat needs at least one tensor")
    ref = tensors[0]
    d = _dim(dim, ref.ndim, "cat")
    for i, t in enumerate(tensors):
        if t.ndim != ref.ndim or t.shape[:d] + t.shape[d + 1:] != ref.shape[:d] + ref.shape[d + 1:]:
            raise ValueError(f"cat: tensor {i} has shape {t.shape} but tensor 0 has "
                             f"{ref.shape}; all dims but dim {dim} must match")
    dtype = dtypes.result_type(*tensors)
    tensors = [t if t.dtype == dtype else t.to(dtype) for t in tensors]
    return Cat(d).apply(*tensors)


def stack(tensors, dim=0):
    """Join same-shaped tensors along a new dimension ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape} but tensor 0 has "
                             f"{tensors[0].shape}; stacked tensors must have equal shapes")
    d = _dim(dim, tensors[0].ndim, "stack", extra=1)
    return cat([unsqueeze(t, d) for t in tensors], d)


def split(x, split_size_or_sections, dim=0):
    """Pieces of ``x`` along ``dim``: of a size each (the last may be smaller) or of the
    listed sizes."""
    d = _dim(dim, _at_least_1d(x, "split"), "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step < 0:
            raise ValueError(f"split: the split size must not be negative, got {step}")
        if step == 0 and n:
            raise ValueError(f"split: split size 0 only fits a dim of size 0, but dim {dim} "
                             f"has size {n}")
        sizes = [min(step, n - s) for s in range(0, n, step)] if n else [0]
    else:
        sizes = list(split_size_or_sections)
        if any(s < 0 for s in sizes):
            raise ValueError(f"split: sizes {sizes} hold a negative size")
        if sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} add up to {sum(sizes)}, but dim {dim} "
                             f"has length {n}")
    pieces, start = [], 0
    for size in sizes:
        pieces.append(getitem(x, (slice(None),) * d + (slice(start, start + size),)))
        start += size
    return tuple(pieces)


def _at_least_1d(x, op):
    if x.ndim == 0:
        raise ValueError(f"{op} of a 0-d tensor: there is no dim to cut (PyTorch refuses "
                         "it too); reshape it to (1,) first")
    return x.ndim


def chunk(x, chunks, dim=0):
    """``chunks`` pieces of ``x`` along ``dim`` of ``ceil(n / chunks)`` each, as in PyTorch
    (so fewer when they run out first); an empty dim gives ``chunks`` empty pieces."""
    if not isinstance(chunks, int) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    n = x.shape[_dim(dim, _at_least_1d(x, "chunk"), "chunk")]
    if n == 0:
        return split(x, [0] * chunks, dim)
    return split(x, -(-n // chunks), dim)


# --- devices ------------------------------------------------------------------------------
class ToDevice(Function):
    def __init__(self, target):
        self.target_backend = target

    def forward(self, x):
        return self.target_backend.asarray(x)

    def backward(self, gy):
        return to_device(gy, self.backend)

    def jvp(self, t):
        return to_device(t, self.target_backend)


def to_device(x, backend):
    return ToDevice(backend).apply(x)
