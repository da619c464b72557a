"""``Optimizer``: param groups, per-parameter state, zero_grad and state dicts.

Subclasses write ``update(group, p, state)``; the arithmetic itself runs in the
backend's fused ``sgd_step`` / ``adam_step`` on the raw arrays.
"""
from .. import tracing
from ..autograd import grad_mode
from ..nn.parameter import zero_grads
from ..tensor import Tensor


class Optimizer:
    """Base of the optimizers: ``params`` is an iterable of tensors or of dicts
    (param groups, each with ``"params"`` and its own hyper-parameters).

    >>> opt = gpuad.optim.SGD([{"params": model[0].parameters(), "lr": 0.1},
    ...                        {"params": model[2].parameters()}], lr=0.01, momentum=0.9)
    """

    def __init__(self, params, defaults):
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__} expects an iterable of tensors (e.g. "
                            "model.parameters()), got a single Tensor; wrap it in a list")
        self.defaults = defaults
        self.state = {}
        self.param_groups = []
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list; pass "
                             "model.parameters() after the model is built")
        for g in groups if isinstance(groups[0], dict) else [{"params": groups}]:
            self.add_param_group(g)

    def add_param_group(self, group):
        """Add a dict with ``"params"`` and optional hyper-parameters (others default)."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError("a param group is a dict with a 'params' entry, got "
                            f"{type(group).__name__}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} can only optimize Tensors, got "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__} can only optimize leaf tensors, got "
                                 "the result of an op; use model.parameters() or "
                                 "x.detach().requires_grad_()")
            if id(p) in seen:
                raise ValueError("a parameter appears in more than one param group (or "
                                 "twice in one); list each parameter once")
            seen.add(id(p))
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown hyper-parameter(s) "
                            f"{sorted(unknown)}; known: {sorted(self.defaults)}")
        full = {**self.defaults, **group, "params": params}
        self.check_hyperparameters(full)
        self.param_groups.append(full)

    def check_hyperparameters(self, group):
        """Raise a clear error on a bad value in ``group`` (subclasses extend it)."""
        if group["lr"] < 0:
            raise ValueError(f"invalid learning rate {group['lr']}; it must be >= 0")
        if group["weight_decay"] < 0:
            raise ValueError(f"invalid weight_decay {group['weight_decay']}; it must be >= 0")

    @tracing.replayable
    def zero_grad(self, set_to_none=True):
        """Reset the gradients of every parameter (to None by default)."""
        zero_grads((p for g in self.param_groups for p in g["params"]), set_to_none)

    @tracing.replayable
    def step(self):
        """Update every parameter that has a gradient, in place."""
        with grad_mode.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad
                    if g.shape != p.shape or g.device != p.device or g.dtype != p.dtype:
                        raise RuntimeError(
                            f"a parameter ({p.shape}, {p.dtype}, {p.device}) has a .grad of "
                            f"{g.shape}, {g.dtype}, {g.device}; set .grad to a tensor like "
                            "the parameter (or move the model before building the optimizer)")
                    self.update(group, p, self.state.setdefault(p, {}))
                    p._version_counter[0] += 1

    def update(self, group, p, state):
        raise NotImplementedError(f"{type(self).__name__} has no update()")

    # --- state dicts ----------------------------------------------------------------------
    def state_dict(self):
        """``{"state": {index: {...}}, "param_groups": [...]}`` with parameters replaced by
        their index (in group order), as PyTorch; tensors are shared, not copied."""
        index = {id(p): i for i, p in enumerate(self._all_params())}
        groups = [{**g, "params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]
        state = {index[id(p)]: dict(s) for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and state (tensors copied to each parameter's device
        and dtype). Everything is checked first: on an error nothing is changed."""
        try:
            groups, saved_state = state_dict["param_groups"], state_dict["state"]
        except (KeyError, TypeError):
            raise ValueError("an optimizer state dict has 'state' and 'param_groups' "
                             "entries; this one does not (is it a model's state dict?)") \
                from None
        if len(groups) != len(self.param_groups) or any(
                len(g["params"]) != len(own["params"])
                for g, own in zip(groups, self.param_groups)):
            raise ValueError(
                "the optimizer state dict does not match this optimizer: it has param groups "
                f"of sizes {[len(g['params']) for g in groups]}, this optimizer "
                f"{[len(g['params']) for g in self.param_groups]}")
        params = {i: p for i, p in enumerate(self._all_params())}
        new_state = {}
        for idx, s in saved_state.items():
            p = params.get(int(idx))
            if p is None:
                raise ValueError(f"the optimizer state dict has state for parameter {idx}, "
                                 f"but this optimizer has {len(params)} parameters")
            new_state[p] = {k: _like(v, p, k) for k, v in s.items()}
        new_groups = []
        for g, own in zip(groups, self.param_groups):
            group = {**own, **{k: v for k, v in g.items() if k != "params"}}
            self.check_hyperparameters(group)
            new_groups.append(group)
        self.param_groups, self.state = new_groups, new_state

    def _all_params(self):
        return [p for g in self.param_groups for p in g["params"]]

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params"]
        return "\n".join(lines + [")"])


def _like(value, p, key):
    """A saved state entry for parameter ``p``: tensors copied onto p's device and dtype."""
    if not isinstance(value, Tensor):
        return value
    if value.shape != p.shape:
        raise ValueError(f"optimizer state {key!r} has shape {tuple(value.shape)} but its "
                         f"parameter has shape {tuple(p.shape)}; the state dict belongs to "
                         "another model")
    return value.detach().to(device=p.device, dtype=p.dtype).clone()
