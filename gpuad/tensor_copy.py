"""How a Tensor is copied and pickled (``copy.copy``, ``copy.deepcopy``, ``pickle``), as
PyTorch's are: a pickle or deep copy holds the data, dtype, device and ``requires_grad``
(a deep copy also ``.grad``); the same tensor reached twice stays one tensor (the memo).

One difference from PyTorch, by design: two *different* tensors that share memory (a
tensor and its view) come back as independent copies — PyTorch keeps the sharing through
its storages, gpuad has no storage object to keep.
"""
import copy

from .backends import backend_for


def shallow_copy(t):
    """``copy.copy``: a new leaf on the same data (and version counter), as PyTorch."""
    out = type(t)._make(t._data, t._backend, version=t._version_counter)
    out._requires_grad = t._requires_grad
    _copy_dict(t, out, None)
    return out


def deep_copy(t, memo):
    """``copy.deepcopy``: leaves only (as PyTorch), with their ``.grad``."""
    if t.grad_fn is not None:
        raise RuntimeError("only tensors made by the user (graph leaves) can be deep-copied; "
                           "deep-copy t.detach() (or the model before its forward pass)")
    _refuse_hooks(t, "deep-copied")
    out = type(t)._make(t.detach().clone()._data, t._backend)  # clone: in t's device
    memo[id(t)] = out
    out._requires_grad = t._requires_grad
    if t._grad is not None:
        out._grad = copy.deepcopy(t._grad, memo)  # through the memo: a shared grad stays one
    _copy_dict(t, out, memo)
    return out


def reduce(t):
    """``__reduce_ex__``: a picklable recipe (the data as a host NumPy array)."""
    _refuse_hooks(t, "pickled")
    state = getattr(t, "__dict__", None) or None
    return (rebuild, (type(t), t._backend.to_host(t._data), str(t.device),
                      t._requires_grad), state)


def rebuild(cls, host, device, requires_grad):
    """A pickled tensor back, on ``device`` (a leaf; a non-leaf pickles as one, as in
    PyTorch)."""
    backend = backend_for(device)
    out = cls._make(backend.asarray(host), backend)
    out._requires_grad = requires_grad
    return out


def _refuse_hooks(t, what):
    if t._hooks:
        raise RuntimeError(f"a tensor with hooks cannot be {what} (a copy would silently "
                           "drop them): remove the hooks first, or copy t.detach()")


def _copy_dict(src, dst, memo):
    """The attributes a Tensor subclass added (PyTorch copies them too)."""
    extra = getattr(src, "__dict__", None)
    if extra:
        dst.__dict__.update(extra if memo is None else copy.deepcopy(extra, memo))
