"""Tensor: an array on a device, with what autograd needs to send gradients back.

``Tensor.data`` is the NumPy (CPU) or CuPy (CUDA) array itself; every operator and
method below calls an op from ``gpuad.ops``, which runs on that array through the
device's backend.
"""
from . import dtypes
from . import tensor_copy, tracing
from .backends import backend_for
from .conversions import Conversions
from .device import device as _device
from .formatting import tensor_repr


class Tensor(Conversions):
    """A multi-dimensional array that can record the ops applied to it.

    Build one with ``gpuad.tensor``, ``gpuad.zeros``, ``gpuad.randn`` and friends.

    >>> a = gpuad.tensor(2., requires_grad=True); b = gpuad.tensor(0., requires_grad=True)
    >>> c = (a - b) ** 2; c.backward()
    >>> a.grad, b.grad
    (tensor(4.), tensor(-4.))
    """

    __slots__ = ("_data", "_backend", "_requires_grad", "_grad", "grad_fn", "_output_nr",
                 "_version_counter", "_retains_grad", "_hooks", "__weakref__")
    __array_priority__ = 1000  # numpy_array * tensor calls Tensor.__rmul__

    def __init__(self, data, requires_grad=False):
        from .factories import as_array
        arr, backend = as_array(data)
        self._init(arr, backend)
        self.requires_grad = requires_grad

    def _init(self, arr, backend, version=None):
        """Fill the fields of a tensor a constructor made (a Parameter's too) as ``_make``
        fills an op's output: ``_make`` holds the one list of them."""
        made = Tensor._make(arr, backend, version=version)
        for name in _FIELDS:
            setattr(self, name, getattr(made, name))

    @classmethod
    def _make(cls, arr, backend, grad_fn=None, output_nr=0, version=None, requires_grad=False):
        """A tensor on ``arr`` without checks: how ops make their outputs."""
        t = object.__new__(cls)
        t._data = arr
        t._backend = backend
        t._requires_grad = requires_grad
        t._grad = None
        t.grad_fn = grad_fn
        t._output_nr = output_nr
        t._version_counter = [0] if version is None else version
        t._retains_grad = False
        t._hooks = None
        return t

    # --- what a tensor is --------------------------------------------------------------
    @property
    def data(self):
        """The underlying NumPy or CuPy array (shares memory with the tensor)."""
        return self._data

    @data.setter
    def data(self, arr):
        if not self._backend.is_array(arr):
            raise TypeError(f"Tensor.data must be a {self._backend.name} array, "
                            f"got {type(arr).__name__}; use gpuad.tensor(...) to convert")
        dtypes.as_dtype(arr.dtype)
        self._data = arr

    @property
    def shape(self):
        return self._data.shape

    def size(self, dim=None):
        """The shape, or the length of one dimension."""
        return self._data.shape if dim is None else self._data.shape[dim]

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    def numel(self):
        return int(self._data.size)

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        """The sub-tensors along dim 0 (a 0-d tensor is not iterable, as in PyTorch)."""
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def device(self):
        return self._backend.device

    @property
    def is_cuda(self):
        return self._backend.device.type == "cuda"

    @property
    def is_leaf(self):
        """True for tensors made by the user (not by an op that records the graph)."""
        return self.grad_fn is None

    @property
    def _version(self):
        return self._version_counter[0]

    @property
    def grad(self):
        """The gradient accumulated by ``backward()`` (None until one reaches this tensor)."""
        return self._grad

    @grad.setter
    def grad(self, g):
        if tracing.recording:
            tracing.grad_set(self, g)
        self._grad = g

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        flag = bool(flag)
        if self.grad_fn is not None and not flag:
            raise RuntimeError("requires_grad can only be turned off on leaf tensors; "
                               "use detach() to get a tensor without a graph")
        if flag and not dtypes.is_floating(self.dtype):
            raise RuntimeError(f"only floating-point tensors can require gradients, this one "
                               f"is {dtypes.name(self.dtype)}; convert it with .float() first")
        self._requires_grad = flag

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` in place and return self."""
        self.requires_grad = requires_grad
        return self

    def __repr__(self):
        tracing.host_read(self, "printing it")
        return tensor_repr(self)

    # --- autograd ------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=False, create_graph=False):
        """Accumulate the gradient of this tensor into ``.grad`` of the leaves.

        ``gradient`` is required unless the tensor holds one element. The graph is freed
        afterwards unless ``retain_graph=True``.
        """
        _api.backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph)

    def detach(self):
        """A tensor sharing this one's data, outside the graph."""
        return Tensor._make(self._data, self._backend, version=self._version_counter)

    def detach_(self):
        """Cut this tensor from the graph in place."""
        self.grad_fn = None
        self._requires_grad = False
        return self

    def __copy__(self):
        return tensor_copy.shallow_copy(self)

    def __deepcopy__(self, memo):
        return tensor_copy.deep_copy(self, memo)

    def __reduce_ex__(self, protocol):
        return tensor_copy.reduce(self)

    def retain_grad(self):
        """Keep ``.grad`` for this non-leaf tensor too."""
        if not self._requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        if self.grad_fn is not None and not self._retains_grad:
            import weakref
            self.grad_fn.node.retain(self._output_nr, weakref.ref(self))
            self._retains_grad = True

    @property
    def retains_grad(self):
        return self._retains_grad

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor
        replaces the gradient. Returns a handle whose ``remove()`` takes the hook off."""
        from .autograd.hooks import register_tensor_hook
        return register_tensor_hook(self, hook)

    def _edge(self):
        return (self, None) if self.grad_fn is None else (self.grad_fn, self._output_nr)

    # --- conversion ----------------------------------------------------------------------
    def item(self):
        """The single value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape "
                             f"{self.shape}; index it or reduce it first")
        tracing.host_read(self, "item()")
        return self._backend.to_host(self._data).reshape(()).item()

    def numpy(self):
        """The data as a NumPy array (shared on CPU, copied from the GPU)."""
        from .autograd import grad_mode
        if self._requires_grad and grad_mode.is_grad_enabled():
            raise RuntimeError("numpy() on a tensor that requires grad; "
                               "call .detach().numpy() instead")
        tracing.host_read(self, "numpy()")
        return self._backend.to_host(self._data)

    def tolist(self):
        tracing.host_read(self, "tolist()")
        return self._backend.to_host(self._data).tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"the truth value of a tensor with {self._data.size} elements "
                               "is ambiguous; use .any() or .all()")
        return bool(self.item())

    def __index__(self):
        if self._data.ndim or dtypes.is_floating(self.dtype):
            raise TypeError("only integer 0-d tensors can be used as an index")
        return int(self.item())

    def __hash__(self):
        return id(self)

    def __array__(self, dtype=None, copy=None):
        tracing.host_read(self, "numpy.asarray(tensor)")
        arr = self._backend.to_host(self._data)
        return arr if dtype is None else arr.astype(dtype)

    def to(self, *args, dtype=None, device=None):
        """A tensor on another device and/or of another dtype (self when nothing changes).

        ``x.to("cuda")``, ``x.to(gpuad.float64)``, ``x.to("cpu", gpuad.float32)``.
        """
        for a in args:
            if isinstance(a, (str, _device)):
                device = a
            elif isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            else:
                dtype = a
        out = self
        if device is not None and _device(device) != self.device:
            out = _ops.shape.to_device(out, backend_for(_device(device)))
        if dtype is not None and dtypes.as_dtype(dtype) != out.dtype:
            out = _ops.elementwise.cast(out, dtypes.as_dtype(dtype))
        return out

    def long(self):
        return self.to(dtypes.int64)

    def int(self):
        return self.to(dtypes.int32)

    def bool(self):
        return self.to(dtypes.bool_)

    def type(self, dtype):
        return self.to(dtype)

    def clone(self):
        """A copy of the data that stays in the graph."""
        return _ops.elementwise.clone(self)

    def contiguous(self):
        return self

    # --- arithmetic ------------------------------------------------------------------------
    def __add__(self, other):
        return _ops.elementwise.add(self, other)

    def __radd__(self, other):
        return _ops.elementwise.add(other, self)

    def __sub__(self, other):
        return _ops.elementwise.sub(self, other)

    def __rsub__(self, other):
        return _ops.elementwise.sub(other, self)

    def __mul__(self, other):
        return _ops.elementwise.mul(self, other)

    def __rmul__(self, other):
        return _ops.elementwise.mul(other, self)

    def __truediv__(self, other):
        return _ops.elementwise.div(self, other)

    def __rtruediv__(self, other):
        return _ops.elementwise.div(other, self)

    def __pow__(self, other):
        return _ops.elementwise.pow(self, other)

    def __rpow__(self, other):
        return _ops.elementwise.pow(other, self)

    def __neg__(self):
        return _ops.elementwise.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ops.elementwise.abs(self)

    def __matmul__(self, other):
        return _ops.linalg.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.linalg.matmul(other, self)

    def __lt__(self, other):
        return _ops.elementwise.lt(self, other)

    def __le__(self, other):
        return _ops.elementwise.le(self, other)

    def __gt__(self, other):
        return _ops.elementwise.gt(self, other)

    def __ge__(self, other):
        return _ops.elementwise.ge(self, other)

    def __eq__(self, other):
        return _ops.elementwise.eq(self, other)

    def __ne__(self, other):
        return _ops.elementwise.ne(self, other)

    def __invert__(self):
        return _ops.elementwise.bitwise_not(self)

    def __and__(self, other):
        return _ops.elementwise.bitwise_and(self, other)

    def __rand__(self, other):
        return _ops.elementwise.bitwise_and(other, self)

    def __or__(self, other):
        return _ops.elementwise.bitwise_or(self, other)

    def __ror__(self, other):
        return _ops.elementwise.bitwise_or(other, self)

    def __xor__(self, other):
        return _ops.elementwise.bitwise_xor(self, other)

    def __rxor__(self, other):
        return _ops.elementwise.bitwise_xor(other, self)

    def __lshift__(self, other):
        return _ops.elementwise.bitwise_left_shift(self, other)

    def __rlshift__(self, other):
        return _ops.elementwise.bitwise_left_shift(other, self)

    def __rshift__(self, other):
        return _ops.elementwise.bitwise_right_shift(self, other)

    def __rrshift__(self, other):
        return _ops.elementwise.bitwise_right_shift(other, self)

    def __iand__(self, other):
        return _ops.elementwise.bitwise_into(self, _ops.elementwise.bitwise_and, other)

    def __ior__(self, other):
        return _ops.elementwise.bitwise_into(self, _ops.elementwise.bitwise_or, other)

    def __ixor__(self, other):
        return _ops.elementwise.bitwise_into(self, _ops.elementwise.bitwise_xor, other)

    def __ilshift__(self, other):
        return _ops.elementwise.bitwise_into(self, _ops.elementwise.bitwise_left_shift, other)

    def __irshift__(self, other):
        return _ops.elementwise.bitwise_into(self, _ops.elementwise.bitwise_right_shift,
                                             other)

    def bitwise_and(self, other):
        return _ops.elementwise.bitwise_and(self, other)

    def bitwise_or(self, other):
        return _ops.elementwise.bitwise_or(self, other)

    def bitwise_xor(self, other):
        return _ops.elementwise.bitwise_xor(self, other)

    def bitwise_not(self):
        return _ops.elementwise.bitwise_not(self)

    def bitwise_left_shift(self, other):
        return _ops.elementwise.bitwise_left_shift(self, other)

    def bitwise_right_shift(self, other):
        return _ops.elementwise.bitwise_right_shift(self, other)

    def logical_and(self, other):
        return _ops.elementwise.logical_and(self, other)

    def logical_or(self, other):
        return _ops.elementwise.logical_or(self, other)

    def logical_xor(self, other):
        return _ops.elementwise.logical_xor(self, other)

    def logical_not(self):
        return _ops.elementwise.logical_not(self)

    def add(self, other, alpha=1):
        return _ops.elementwise.add(self, other if alpha == 1 else other * alpha)

    def sub(self, other, alpha=1):
        return _ops.elementwise.sub(self, other if alpha == 1 else other * alpha)

    def mul(self, other):
        return _ops.elementwise.mul(self, other)

    def div(self, other):
        return _ops.elementwise.div(self, other)

    def pow(self, exponent):
        return _ops.elementwise.pow(self, exponent)

    def neg(self):
        return _ops.elementwise.neg(self)

    def matmul(self, other):
        return _ops.linalg.matmul(self, other)

    def exp(self):
        return _ops.elementwise.exp(self)

    def erf(self):
        return _ops.elementwise.erf(self)

    def log(self):
        return _ops.elementwise.log(self)

    def sqrt(self):
        return _ops.elementwise.sqrt(self)

    def abs(self):
        return _ops.elementwise.abs(self)

    def sign(self):
        return _ops.elementwise.sign(self)

    def softplus(self, beta=1.0, threshold=20.0):
        return _ops.activation.softplus(self, beta, threshold)

    def clamp(self, min=None, max=None):
        return _ops.elementwise.clamp(self, min, max)

    clip = clamp

    def maximum(self, other):
        return _ops.elementwise.maximum(self, other)

    def minimum(self, other):
        return _ops.elementwise.minimum(self, other)

    def lt(self, other):
        return _ops.elementwise.lt(self, other)

    def le(self, other):
        return _ops.elementwise.le(self, other)

    def gt(self, other):
        return _ops.elementwise.gt(self, other)

    def ge(self, other):
        return _ops.elementwise.ge(self, other)

    def eq(self, other):
        return _ops.elementwise.eq(self, other)

    def ne(self, other):
        return _ops.elementwise.ne(self, other)

    # --- reductions ------------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None):
        return _ops.reduce.sum(self, dim, keepdim, axis=axis, keepdims=keepdims, dtype=dtype)

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None, dtype=None):
        return _ops.reduce.mean(self, dim, keepdim, axis=axis, keepdims=keepdims, dtype=dtype)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The largest value; ``(values, indices)`` along an int ``dim``; the elementwise
        maximum with a tensor."""
        return _ops.reduce.max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The smallest value; ``(values, indices)`` along an int ``dim``; the elementwise
        minimum with a tensor."""
        return _ops.reduce.min(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def amax(self, dim=(), keepdim=False, *, axis=None, keepdims=None):
        return _ops.reduce.amax(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def amin(self, dim=(), keepdim=False, *, axis=None, keepdims=None):
        return _ops.reduce.amin(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def var(self, dim=None, keepdim=False, *, unbiased=True, correction=None, axis=None,
            keepdims=None):
        return _ops.reduce.var(self, dim, keepdim, unbiased=unbiased, correction=correction,
                               axis=axis, keepdims=keepdims)

    def std(self, dim=None, keepdim=False, *, unbiased=True, correction=None, axis=None,
            keepdims=None):
        return _ops.reduce.std(self, dim, keepdim, unbiased=unbiased, correction=correction,
                               axis=axis, keepdims=keepdims)

    def logsumexp(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _ops.reduce.logsumexp(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def argmax(self, dim=None, keepdim=False):
        return _ops.reduce.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return _ops.reduce.argmin(self, dim, keepdim)

    def all(self, dim=None, keepdim=False):
        return _ops.reduce.all(self, dim, keepdim)

    def any(self, dim=None, keepdim=False):
        return _ops.reduce.any(self, dim, keepdim)

    def softmax(self, dim):
        return _ops.nn.softmax(self, dim)

    def log_softmax(self, dim):
        return _ops.nn.log_softmax(self, dim)

    # --- shape -----------------------------------------------------------------------------
    def reshape(self, *shape):
        return _ops.shape.reshape(self, shape)

    def view(self, *shape):
        return _ops.shape.reshape(self, shape)

    def transpose(self, dim0, dim1):
        return _ops.shape.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _ops.shape.permute(self, dims)

    @property
    def T(self):
        return _ops.shape.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self):
        return _ops.shape.transpose(self, -2, -1)

    def t(self):
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor with <= 2 dims, got shape {self.shape}; "
                             "use transpose(d0, d1)")
        return self.T

    def expand(self, *shape):
        return _ops.shape.expand(self, shape)

    def expand_as(self, other):
        return _ops.shape.expand(self, other.shape)

    def squeeze(self, dim=None):
        return _ops.shape.squeeze(self, dim)

    def unsqueeze(self, dim):
        return _ops.shape.unsqueeze(self, dim)

    def flatten(self, start_dim=0, end_dim=-1):
        return _ops.shape.flatten(self, start_dim, end_dim)

    def split(self, split_size_or_sections, dim=0):
        return _ops.shape.split(self, split_size_or_sections, dim)

    def chunk(self, chunks, dim=0):
        return _ops.shape.chunk(self, chunks, dim)

    def __getitem__(self, index):
        return _ops.shape.getitem(self, index)

    def __setitem__(self, index, value):
        _ops.inplace.setitem(self, index, value)

    # --- in place ----------------------------------------------------------------------------
    def add_(self, other, alpha=1):
        return _ops.inplace.add_(self, other, alpha)

    def sub_(self, other, alpha=1):
        return _ops.inplace.add_(self, other, -alpha)

    def mul_(self, other):
        return _ops.inplace.mul_(self, other)

    def div_(self, other):
        return _ops.inplace.div_(self, other)

    def zero_(self):
        return _ops.inplace.fill_(self, 0)

    def fill_(self, value):
        return _ops.inplace.fill_(self, value)

    def copy_(self, src):
        return _ops.inplace.copy_(self, src)

    def clamp_(self, min=None, max=None):
        return _ops.inplace.clamp_(self, min, max)

    def __iadd__(self, other):
        return _ops.inplace.add_(self, other, 1)

    def __isub__(self, other):
        return _ops.inplace.add_(self, other, -1)

    def __imul__(self, other):
        return _ops.inplace.mul_(self, other)

    def __itruediv__(self, other):
        return _ops.inplace.div_(self, other)


_FIELDS = tuple(name for name in Tensor.__slots__ if name != "__weakref__")

from . import ops as _ops  # noqa: E402  (ops import Tensor: import them after it exists)
for _name, _function in _ops.activation.FUNCTIONS.items():  # Tensor.relu, .gelu, ...
    setattr(Tensor, _name, _function)
del _name, _function
from .autograd import api as _api  # noqa: E402  (api imports Tensor too)
