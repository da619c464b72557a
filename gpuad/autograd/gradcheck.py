"""``gradcheck``: backward against central finite differences, in float64."""
import contextlib

from .. import dtypes
from .api import grad


class GradcheckError(RuntimeError):
    """Raised by gradcheck when an analytical gradient disagrees with the numerical one."""


def _outputs(fn, inputs):
    out = fn(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o for o in outs if dtypes.is_floating(o.dtype)]


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Check the gradients of ``fn`` at ``inputs`` against central finite differences.

    Floating inputs that require grad are checked in float64 copies. Returns True, or
    raises ``GradcheckError`` naming the input, the output and the worst element.

    >>> x = gpuad.randn(3, dtype=gpuad.float64, requires_grad=True)
    >>> gpuad.autograd.gradcheck(lambda t: (t * t).sum(), (x,))
    True
    """
    from ..tensor import Tensor
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    inputs = tuple(
        x.detach().to(dtypes.float64).clone().requires_grad_() if isinstance(x, Tensor)
        and x.requires_grad else x for x in inputs)
    wrt = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not wrt:
        raise ValueError("gradcheck: no input requires grad; set requires_grad=True on the "
                         "tensors to check")
    backend = inputs[wrt[0]]._backend
    with backend.device_scope or contextlib.nullcontext():  # the checked tensors' device
        return _check(fn, inputs, wrt, eps, atol, rtol, raise_exception, backend)


def _check(fn, inputs, wrt, eps, atol, rtol, raise_exception, backend):
    from ..tensor import Tensor
    outs = _outputs(fn, inputs)
    xp, host = backend.xp, backend.to_host
    for o_nr, out in enumerate(outs):
        analytical = {i: xp.zeros((out.numel(), inputs[i].numel())) for i in wrt}
        if out.requires_grad:
            for j in range(out.numel()):
                onehot = xp.zeros(out.numel())
                onehot[j] = 1
                seed = Tensor._make(onehot.reshape(out.shape).astype(out.dtype), out._backend)
                gs = grad(out, [inputs[i] for i in wrt], seed, retain_graph=True,
                          allow_unused=True)
                for i, g in zip(wrt, gs):
                    if g is not None:
                        analytical[i][j] = g._data.reshape(-1)
        for i in wrt:
            numerical = _numerical(fn, inputs, i, o_nr, eps, xp)
            a, n = host(analytical[i]), host(numerical)
            err = abs(a - n) - (atol + rtol * abs(n))
            if (err > 0).any() or not (abs(a - n) <= atol + rtol * abs(n)).all():
                j, k = divmod(int(err.argmax()), a.shape[1])
                msg = (f"gradcheck failed for input {i} (shape {inputs[i].shape}) and output "
                       f"{o_nr} (shape {out.shape}): d out[{j}] / d in[{k}] (flat indices) is "
                       f"{a[j, k]!r} by backward but {n[j, k]!r} by finite differences; "
                       f"{int((err > 0).sum())} of {err.size} entries differ beyond "
                       f"atol={atol}, rtol={rtol}")
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True


def _numerical(fn, inputs, i, o_nr, eps, xp):
    flat = inputs[i]._data.reshape(-1)
    cols = []
    # grad stays on: fn may itself differentiate (a gradient checked as a function)
    for k in range(flat.size):
        orig = flat[k].copy()
        flat[k] = orig + eps
        plus = _outputs(fn, inputs)[o_nr]._data.reshape(-1).astype("float64")
        flat[k] = orig - eps
        minus = _outputs(fn, inputs)[o_nr]._data.reshape(-1).astype("float64")
        flat[k] = orig
        cols.append((plus - minus) / (2 * eps))
    return xp.stack(cols, axis=1) if cols else xp.zeros((0, 0))
