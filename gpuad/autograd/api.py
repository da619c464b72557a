"""``backward`` and ``grad``: the user's entry points to the engine."""
from .. import dtypes
from ..tensor import Tensor
from .engine import run_backward


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _initial_grads(outputs, grad_outputs):
    grads = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not out.requires_grad:
            raise RuntimeError(
                f"output {i} does not require grad and has no grad_fn, so there is nothing "
                "to differentiate; set requires_grad=True on the input tensors (leaves) "
                "before computing it, and do not compute it under no_grad()")
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for a one-element output, this one "
                    f"has shape {out.shape}; pass gradient= (a tensor of that shape), or "
                    "reduce the output first, e.g. out.sum().backward()")
            g = Tensor._make(out._backend.full(out.shape, 1, out.dtype), out._backend)
        else:
            if not isinstance(g, Tensor):
                g = Tensor._make(out._backend.asarray(g, dtype=out.dtype), out._backend)
            if g.shape != out.shape:
                raise RuntimeError(f"gradient has shape {g.shape} but the output has shape "
                                   f"{out.shape}; they must match")
            if g.device != out.device:
                raise RuntimeError(f"gradient is on {g.device} but the output is on "
                                   f"{out.device}; move it with .to('{out.device}')")
        grads.append(g)
    return grads


def backward(tensors, grad_tensors=None, retain_graph=False, create_graph=False):
    """Accumulate into the leaves' ``.grad`` the gradient of ``tensors``."""
    tensors = _as_list(tensors)
    grad_tensors = _as_list(grad_tensors) if grad_tensors is not None else [None] * len(tensors)
    grads = _initial_grads(tensors, grad_tensors)
    run_backward(tensors, grads, retain_graph or create_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned without touching
    ``.grad``.

    >>> gx, = gpuad.autograd.grad((x ** 3).sum(), x)      # 3 x**2
    """
    outputs, inputs = _as_list(outputs), _as_list(inputs)
    grad_outputs = _as_list(grad_outputs) if grad_outputs is not None else [None] * len(outputs)
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"input {i} of grad() does not require grad; set "
                               "requires_grad=True on it before computing the outputs")
    grads = _initial_grads(outputs, grad_outputs)
    if retain_graph is None:
        retain_graph = create_graph
    result = run_backward(outputs, grads, retain_graph, create_graph, inputs=inputs)
    for i, g in enumerate(result):
        if g is None and not allow_unused:
            raise RuntimeError(f"input {i} of grad() was not used to compute the outputs; "
                               "pass allow_unused=True to get None for it")
        if g is not None and g.dtype != inputs[i].dtype and dtypes.is_floating(inputs[i].dtype):
            result[i] = g.to(inputs[i].dtype)
    return tuple(result)
