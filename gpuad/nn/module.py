"""``Module``: the base of layers and models (parameters, children, modes, devices,
state dicts, forward hooks and pre-hooks, repr), shaped like ``torch.nn.Module``."""
from collections import OrderedDict, namedtuple

from ..autograd import grad_mode
from .. import tracing
from ..autograd.hooks import RemovableHandle
from ..conversions import Conversions
from ..tensor import Tensor
from .parameter import Parameter, zero_grads

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module(Conversions):
    """Base class of every layer and model: subclass it, assign ``Parameter``s and
    sub-modules as attributes in ``__init__``, and write ``forward``.

    >>> class Affine(gpuad.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.scale = gpuad.nn.Parameter(gpuad.ones(3))
    ...     def forward(self, x):
    ...         return x * self.scale
    >>> Affine()(gpuad.randn(2, 3)).shape
    (2, 3)
    """

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", [])
        object.__setattr__(self, "_forward_pre_hooks", [])

    # --- attributes: parameters and sub-modules are registered on assignment ------------
    def __setattr__(self, name, value):
        if isinstance(value, (Parameter, Module)) and "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() ran; call "
                                 f"super().__init__() first in {type(self).__name__}.__init__")
        params, modules = self.__dict__.get("_parameters"), self.__dict__.get("_modules")
        if isinstance(value, Parameter):
            self.__dict__.pop(name, None)
            modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            self.__dict__.pop(name, None)
            params.pop(name, None)
            modules[name] = value
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to parameter "
                                f"{name!r}; wrap it: gpuad.nn.Parameter(value), or assign None")
            params[name] = None
        elif modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to sub-module "
                                f"{name!r}; a Module or None is expected")
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):  # only called when normal lookup fails
        d = self.__dict__
        if name in d.get("_parameters", ()):
            return d["_parameters"][name]
        if name in d.get("_modules", ()):
            return d["_modules"][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for table in (self._parameters, self._modules):
            if name in table:
                del table[name]
                return
        object.__delattr__(self, name)

    # --- running -----------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define it")

    def __call__(self, *args, **kwargs):
        if tracing.recording:
            tape = tracing.active()
            if tape is not None:
                tape.on_module(self)  # a replay holds while its training flag does
        for hook in tuple(self._forward_pre_hooks):
            replaced = hook(self, args)
            if replaced is not None:
                args = replaced if isinstance(replaced, tuple) else (replaced,)
        out = self.forward(*args, **kwargs)
        for hook in tuple(self._forward_hooks):
            replaced = hook(self, args, out)
            if replaced is not None:
                out = replaced
        return out

    def register_forward_hook(self, hook):
        """Call ``hook(module, args, output)`` after every forward; a returned value
        replaces the output. Returns a handle whose ``remove()`` takes the hook off."""
        return _register(self._forward_hooks, hook)

    def register_forward_pre_hook(self, hook):
        """Call ``hook(module, args)`` before every forward; a returned value replaces the
        positional arguments (a tuple, or one value). Returns a removable handle."""
        return _register(self._forward_pre_hooks, hook)

    # --- walking the tree ----------------------------------------------------------------
    def named_children(self):
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix=""):
        """This module and every descendant once, with dotted names (``""`` for self)."""
        return _walk(self, prefix, set())

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix="", recurse=True):
        """``(dotted name, Parameter)`` pairs, each shared parameter once."""
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_name, m in mods:
            for name, p in m._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    # --- modes and gradients ---------------------------------------------------------------
    def train(self, mode=True):
        """Set training mode (dropout active) on this module and its descendants."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    @tracing.replayable
    def zero_grad(self, set_to_none=True):
        """Reset the gradients of every parameter (to None by default)."""
        zero_grads(self.parameters(), set_to_none)

    # --- devices and dtypes ------------------------------------------------------------------
    def to(self, *args, **kwargs):
        """Move/convert every parameter (and its grad) in place, like ``Tensor.to``:
        ``model.to("cuda")``, ``model.to(gpuad.float64)``. Parameters keep their identity,
        so an optimizer built before still sees them."""
        with grad_mode.no_grad():
            moved = [(p, p.to(*args, **kwargs)) for p in self.parameters()]
            if any(m.dtype.kind != "f" for _, m in moved):
                raise TypeError("Module.to converts parameters to floating dtypes only (they "
                                "hold gradients); use gpuad.float32 or gpuad.float64")
            for p, m in moved:
                _rebind(p, m)
                if p.grad is not None:
                    p.grad = p.grad.to(*args, **kwargs)
        return self

    # --- state dicts ---------------------------------------------------------------------------
    def state_dict(self, prefix=""):
        """An ordered dict from dotted parameter names to detached tensors (sharing memory)."""
        out = OrderedDict()
        for mod_name, m in _walk(self, prefix.rstrip("."), None):
            for name, p in m._parameters.items():
                if p is not None:
                    out[f"{mod_name}.{name}" if mod_name else name] = p.detach()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy tensors from ``state_dict`` into the parameters of the same names.

        Checks everything first: missing or unexpected keys (when ``strict``) and shape
        mismatches (always) raise one error listing them all, and then nothing is changed.
        Returns ``(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(f"load_state_dict expects a dict of tensors, got "
                            f"{type(state_dict).__name__}")
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(map(str, unexpected)))
        staged = {}
        for k, target in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            if not isinstance(v, Tensor):
                problems.append(f"{k}: expected a Tensor, got {type(v).__name__}")
            elif v.shape != target.shape:
                problems.append(f"{k}: shape {tuple(v.shape)} in the state dict, "
                                f"{tuple(target.shape)} in the model")
            else:
                staged[k] = v.detach().to(device=target.device, dtype=target.dtype)
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__} "
                               "(nothing was changed):\n  " + "\n  ".join(problems))
        with grad_mode.no_grad():
            for k, v in staged.items():
                own[k].copy_(v)
        return IncompatibleKeys(missing, unexpected)

    # --- printing ----------------------------------------------------------------------------
    def extra_repr(self):
        """What goes between the parentheses of this module's repr (override it)."""
        return ""

    def __repr__(self):
        lines = self.extra_repr().split("\n") if self.extra_repr() else []
        children = [f"({name}): " + repr(m).replace("\n", "\n  ")
                    for name, m in self._modules.items()]
        if not children and len(lines) <= 1:
            return f"{type(self).__name__}({''.join(lines)})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines + children) + "\n)"


def _register(hooks, hook):
    if not callable(hook):
        raise TypeError(f"hook must be callable, got {type(hook).__name__}")
    hooks.append(hook)
    tracing.state_changed()
    return RemovableHandle(hooks, hook)


def _walk(module, prefix, seen):
    """``(dotted name, module)`` depth first; with a ``seen`` set each module once, with
    None a shared module under each of its names (as state dicts list it)."""
    if seen is not None:
        if id(module) in seen:
            return
        seen.add(id(module))
    yield prefix, module
    for name, child in module.named_children():
        yield from _walk(child, f"{prefix}.{name}" if prefix else name, seen)


def _rebind(p, moved):
    """Point parameter ``p`` at ``moved``'s array and device, keeping ``p`` itself."""
    if moved is not p:
        p._data, p._backend = moved._data, moved._backend
