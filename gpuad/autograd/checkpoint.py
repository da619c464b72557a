"""``gpuad.checkpoint``: trade compute for memory by running a block again in backward."""
from .. import dtypes, tracing
from ..tensor import Tensor
from . import grad_mode
from .engine import run_backward
from .function import Function


class Checkpoint(Function):
    """One node standing for ``fn``: forward runs it without recording, saving only the
    tensor arguments and the device's RNG state; backward replays it with the graph on
    and sends the incoming gradients through that graph."""

    def __init__(self, fn, args, slots, versions):
        self.fn, self.args, self.slots = fn, args, slots  # slots: where the tensors go
        self.versions = versions  # the inputs' version counters, given to fn's tensors

    def _run(self, tensors):
        args = list(self.args)
        for i, t in zip(self.slots, tensors):
            args[i] = t
        return self.fn(*args)

    def forward(self, *arrays):
        tracing.refuse("checkpoint() (its recomputation and RNG restore)")
        arrays = arrays[:len(self.slots)]  # drop the placeholder checkpoint() may add
        self.rng_state = self.backend.get_rng_state()
        before = [v[0] for v in self.versions]
        with grad_mode.no_grad():
            out = self._run([Tensor._make(a, self.backend, version=v)
                             for a, v in zip(arrays, self.versions)])
        if before != [v[0] for v in self.versions]:
            raise RuntimeError("checkpoint: fn changed one of its tensor arguments in place, "
                               "so backward would recompute from other values; use "
                               "out-of-place ops on them (x = x * 2, not x.mul_(2)) or "
                               "clone() them first inside fn")
        self.single = isinstance(out, Tensor)
        outs = (out,) if self.single else tuple(out) if isinstance(out, (tuple, list)) else ()
        if not outs or not all(isinstance(o, Tensor) and o._backend is self.backend
                               for o in outs):
            raise TypeError(f"checkpoint: fn must return a Tensor or a tuple of Tensors on "
                            f"{self.backend.device}, got {type(out).__name__}")
        self.save_for_backward(*arrays)
        return outs[0]._data if self.single else tuple(o._data for o in outs)

    def backward(self, *grads):
        if grad_mode.is_grad_enabled():
            raise RuntimeError("checkpoint does not support create_graph=True (double "
                               "backward); compute higher-order gradients without it")
        needs = self.needs_input_grad
        inputs = [t.detach().requires_grad_(need)
                  for t, need in zip(self.saved_tensors, needs)]
        outer = self.backend.get_rng_state()
        self.backend.set_rng_state(self.rng_state)  # dropout inside draws the same masks
        try:
            with grad_mode.enable_grad():
                out = self._run(inputs)
        finally:
            self.backend.set_rng_state(outer)
        pairs = [(o, g) for o, g in zip((out,) if self.single else out, grads)
                 if o.requires_grad]
        if pairs:
            # leaves fn captured (a Module's weights) get their .grad here, as in
            # PyTorch's reentrant checkpoint; the inputs' gradients go back to the engine
            run_backward([o for o, _ in pairs], [g for _, g in pairs])
        return tuple(t.grad for t in inputs) + (None,) * (len(needs) - len(inputs))


def checkpoint(fn, *args):
    """``fn(*args)`` without keeping its activations: backward recomputes them.

    Saves only the tensor arguments and the RNG state of their device, so dropout inside
    ``fn`` draws the same masks again. Gradients reach the tensor arguments and the
    parameters ``fn`` uses (e.g. a Module's weights; these are accumulated into their
    ``.grad`` during backward, as with PyTorch's reentrant checkpoint, so use
    ``backward()`` rather than ``autograd.grad`` for them). Non-tensor arguments pass
    through. With grad on, the output requires grad even if no argument does, since
    the parameters inside ``fn`` cannot be seen before backward.

    >>> h = gpuad.checkpoint(block, h)          # block: a Module or any function
    >>> h = gpuad.checkpoint(lambda t, p: F.dropout(layer(t), p), h, 0.1)
    """
    if not callable(fn):
        raise TypeError(f"checkpoint: fn must be callable (a Module or a function), got "
                        f"{type(fn).__name__}; call it as gpuad.checkpoint(fn, *args)")
    slots = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    if not slots:
        raise TypeError("checkpoint needs at least one Tensor argument to know the device "
                        "and what to save; pass the input tensor as an argument of fn "
                        "instead of capturing it")
    if not grad_mode.is_grad_enabled():
        return fn(*args)
    tensors = [args[i] for i in slots]
    if not any(t._requires_grad for t in tensors):
        # a placeholder that requires grad makes the node record, for fn's own parameters
        backend = tensors[0]._backend
        tensors.append(Tensor._make(backend.full((), 0, dtypes.get_default_dtype()),
                                    backend, requires_grad=True))
    # the node keeps the other arguments only: the tensors are saved (and freed) apart
    rest = tuple(None if isinstance(a, Tensor) else a for a in args)
    versions = [t._version_counter for t in tensors]
    return Checkpoint(fn, rest, slots, versions).apply(*tensors)
