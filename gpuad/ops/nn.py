"""Neural-network ops: softmax, log-softmax, losses, dropout."""
from .. import dtypes, tracing
from ..autograd.function import Function
from ..tensor import Tensor
from .elementwise import as_operands, exp
from .reduce import mean, sum
from .shape import _dim, getitem, reshape


class Softmax(Function):
    def __init__(self, dim):
        self.dim = dim

    def forward(self, x):
        xp, d = self.xp, self.dim
        if x.shape[d] == 0:  # nothing to normalise
            y = x.copy()
        else:
            z = x.astype(dtypes.float32) if x.dtype == dtypes.float16 else x
            e = xp.exp(z - xp.max(z, axis=d, keepdims=True))
            y = (e / xp.sum(e, axis=d, keepdims=True)).astype(x.dtype, copy=False)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        y, = self.saved_tensors
        return y * (gy - sum(gy * y, self.dim, True))

    jvp = backward  # the softmax Jacobian is symmetric


class LogSoftmax(Function):
    def __init__(self, dim):
        self.dim = dim

    def forward(self, x):
        xp, d = self.xp, self.dim
        if x.shape[d] == 0:
            y = x.copy()
        else:
            z = x.astype(dtypes.float32) if x.dtype == dtypes.float16 else x
            shifted = z - xp.max(z, axis=d, keepdims=True)
            y = (shifted - xp.log(xp.sum(xp.exp(shifted), axis=d, keepdims=True))).astype(
                x.dtype, copy=False)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        y, = self.saved_tensors
        return gy - exp(y) * sum(gy, self.dim, True)

    def jvp(self, t):
        y, = self.saved_tensors
        return t - sum(exp(y) * t, self.dim, True)


def softmax(x, dim):
    """``exp(x) / sum(exp(x))`` along ``dim`` (float16 computed in float32)."""
    return _along(Softmax, x, dim, "softmax")


def log_softmax(x, dim):
    """``log(softmax(x))`` along ``dim``, computed without overflow."""
    return _along(LogSoftmax, x, dim, "log_softmax")


def _along(op, x, dim, name):
    d = _dim(dim, x.ndim, name)
    x = _floating(x, name)
    if x.ndim == 0:  # a 0-d tensor is one slice of one element
        return reshape(op(0).apply(reshape(x, (1,))), ())
    return op(d).apply(x)


def _floating(x, op):
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"{op} needs a floating tensor, got {dtypes.name(x.dtype)}; "
                        "convert it with .float()")
    return x


class CrossEntropy(Function):
    """Mean softmax cross-entropy of logits (N, C) against class indices (N,).

    Saves the logits and per-row stats (the max and the log of the shifted sum, apart:
    their sum would round away the small part of large logits), never the softmax
    matrix; backward is ``(softmax - onehot) / N``.
    """

    def forward(self, x, t):
        stats, loss = self.backend.cross_entropy_forward(x, t)
        self.save_for_backward(x, stats, t)
        return loss

    def backward(self, gy):
        x, stats, t = self.saved_tensors
        return self._softmax_minus_onehot(x, t) * (gy / x.shape[0]), None

    def fused_backward(self, gy):
        x, stats, t = self.saved_tensors
        return self.call_kernel(self.backend.cross_entropy_backward, x, stats, t,
                                gy / x.shape[0]), None

    def jvp(self, tx, tt):
        x, stats, t = self.saved_tensors
        return sum(self._softmax_minus_onehot(x, t) * tx) / x.shape[0]

    def _softmax_minus_onehot(self, x, t):
        classes = Tensor._make(self.backend.constant(range(x.shape[1])), self.backend)
        onehot = softmax(x, 1) - (classes == t.reshape(-1, 1)).to(x.dtype)
        if self.backend.checks_class_indices:
            return onehot
        return onehot * reshape(_row_scale(x, t), (-1, 1))


def _row_scale(scores, targets):
    """1 per row whose target lies in ``[0, C)``, NaN per row whose does not (a Tensor
    outside the graph): what an unchecked target's row of a loss is multiplied by."""
    backend = scores._backend
    return Tensor._make(tracing.kernel(backend.class_row_scale, targets._data,
                                       scores.shape[1], scores.dtype), backend)


def _check_targets(logits, targets, op):
    if not isinstance(targets, Tensor):
        raise TypeError(f"{op}: targets must be a Tensor of class indices")
    if dtypes.is_floating(targets.dtype) or targets.dtype == dtypes.bool_:
        raise TypeError(f"{op}: targets must be integer class indices (int64), got "
                        f"{dtypes.name(targets.dtype)}; for probabilities use "
                        "-(p * log_softmax(logits, 1)).sum(1).mean(), or convert with .long()")
    if logits.ndim != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(f"{op}: expected logits of shape (N, C) and targets of shape (N,), "
                         f"got {logits.shape} and {targets.shape}")
    if targets.numel():  # a recorded kernel: replays check too
        tracing.kernel(targets._backend.check_class_indices, targets._data, logits.shape[1],
                       op)


def cross_entropy(logits, targets):
    """Mean cross-entropy of ``logits`` (N, C) against integer ``targets`` (N,).

    A target outside ``[0, C)`` raises an IndexError on the CPU; on CUDA it gives NaN (the
    loss, and its row's gradients) unless ``gpuad.cuda.set_class_index_checks(True)``
    makes it raise too, at the cost of a device sync per call."""
    _check_targets(logits, targets, "cross_entropy")
    return CrossEntropy().apply(_floating(logits, "cross_entropy"), targets)


def nll_loss(log_probs, targets):
    """Mean negative log-likelihood of ``log_probs`` (N, C) at integer ``targets`` (N,).

    Out-of-range targets as in ``cross_entropy``: an IndexError on the CPU, NaN on CUDA
    (or an IndexError with ``gpuad.cuda.set_class_index_checks(True)``)."""
    _check_targets(log_probs, targets, "nll_loss")
    backend = log_probs._backend
    rows = Tensor._make(backend.constant(range(log_probs.shape[0])), backend)
    picked = getitem(log_probs, (rows, targets))  # CuPy wraps an out-of-range index
    if not backend.checks_class_indices:
        picked = picked * _row_scale(log_probs, targets)
    return -mean(picked)


class MSELoss(Function):
    """``scale * sum((x - t) ** 2)``, ``scale`` 1/N for the mean, 1 for the sum; the fused
    backward is the backend's ``2 * scale * (x - t)``, from the saved inputs (no copy kept)."""

    def __init__(self, mean):
        self.mean = mean

    def forward(self, x, t):
        self.save_for_backward(x, t)
        d = x - t
        if x.dtype == dtypes.float16:  # accumulated in float32, as in PyTorch
            loss = self.xp.sum(d * d, dtype=dtypes.float32)
            return (loss / loss.dtype.type(x.size) if self.mean else loss).astype(x.dtype)
        loss = self.xp.sum(d * d)
        return loss / x.dtype.type(x.size) if self.mean else loss

    def backward(self, gy):
        x, t = self.saved_tensors
        return self._grads((x - t) * (2 * self._scale(gy, x)))

    def fused_backward(self, gy):
        x, t = self.saved_tensors
        return self._grads(self.call_kernel(self.backend.mse_backward, x, t,
                                            self._scale(gy, x)))

    def _scale(self, gy, x):
        return gy / x.numel() if self.mean else gy

    def _grads(self, gx):
        nx, nt = self.needs_input_grad
        return gx if nx else None, -gx if nt else None

    def jvp(self, tx, tt):
        x, t = self.saved_tensors
        dt = tx if tt is None else -tt if tx is None else tx - tt
        s = sum((x - t) * dt) * 2
        return s / x.numel() if self.mean else s


def mse_loss(input, target, reduction="mean"):
    """Mean (or summed, or elementwise with ``reduction='none'``) squared error."""
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input shape {input.shape} and target shape "
                         f"{target.shape} differ; they would broadcast silently, so reshape "
                         "one to match")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"mse_loss: reduction must be 'mean', 'sum' or 'none', got "
                         f"{reduction!r}")
    input, target = as_operands(input, target, "mse_loss")
    if reduction != "none" and dtypes.is_floating(input.dtype):
        return MSELoss(reduction == "mean").apply(input, target)
    diff = input - target
    err = diff * diff
    if reduction == "mean":
        return mean(err)  # raises for integer tensors, naming the fix
    return sum(err) if reduction == "sum" else err


class Dropout(Function):
    draws_random = True

    def __init__(self, p):
        self.p = p

    def forward(self, x):
        keep = self.backend.rand(x.shape, x.dtype) >= x.dtype.type(self.p)
        self.scale = 1.0 / (1.0 - self.p) if self.p < 1 else 0.0
        self.save_for_backward(keep)  # a bool mask: a quarter of a float32 one
        return x * keep * x.dtype.type(self.scale)

    def backward(self, gy):
        keep, = self.saved_tensors
        return gy * keep * self.scale

    jvp = backward


def dropout(x, p=0.5, training=True):
    """Zero each element with probability ``p`` and scale the rest by ``1/(1-p)``."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability must be between 0 and 1, got {p}")
    if not training or p == 0:
        return x
    return Dropout(p).apply(_floating(x, "dropout"))
