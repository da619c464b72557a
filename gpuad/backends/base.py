"""The surface every backend offers the ops, declared once: ``Backend``.

A device is one subclass. It implements the device methods (arrays and transfers,
random numbers, what its array library does its own way), which raise here; the rest
is written once on ``xp``: the reference formulas of the fused ops, which a backend
overrides with a fused kernel (a Numba twin on CPU, CUDA C on GPU) where that pays. The
formula here stays the specification the kernels are tested against and the fallback
for what a kernel does not take (other dtypes, non-contiguous arrays).
"""
import functools
import math

import numpy as np

from .. import activations, tracing
from ..dtypes import float16, float32, float64, int64

_KERNEL_DTYPES = (float32, float64)  # dtypes, not names: dtype.name is slow Python


def fusable(*arrays):
    """True when gpuad's kernels take these arrays as they are: non-empty, C-contiguous,
    all float32 or all float64."""
    dtype = arrays[0].dtype
    return (dtype in _KERNEL_DTYPES and arrays[0].size > 0
            and all(a.dtype == dtype and a.flags.c_contiguous for a in arrays))


def bias_vector(xp, z, b):
    """``b`` as the ``(C,)`` vector a bias kernel reads for ``z`` of shape ``(..., C)``:
    zeros for None, None when ``b`` broadcasts some other way."""
    c = z.shape[-1]
    if b is None:
        return xp.zeros(c, z.dtype)
    if b.ndim <= z.ndim and b.size == c and b.shape[-1:] == (c,):
        return b.reshape(c)
    return None


def float16_uniform(xp, u):
    """float32 samples ``u`` in [0, 1) as float16 ones on the grid of 2**-11 steps (as
    PyTorch draws them): a plain cast would round values near 1 up to 1."""
    return (xp.floor(u * float32.type(2048)) * float32.type(2 ** -11)).astype(float16)


def adam_scalars(dtype, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    """The scalars of one Adam step in the parameter's dtype, as the update uses them:
    ``beta1, 1 - beta1, beta2, 1 - beta2, sqrt(bias2), eps, lr / bias1, l2, decay``.

    ``l2`` is added to the gradient (Adam's weight decay), ``decay`` scales p (AdamW's)."""
    t = dtype.type
    bias1, bias2 = 1 - beta1 ** step, 1 - beta2 ** step
    l2 = weight_decay if weight_decay and not decoupled else 0
    decay = 1 - lr * weight_decay if weight_decay and decoupled else 1
    return (t(beta1), t(1 - beta1), t(beta2), t(1 - beta2), t(bias2 ** 0.5), t(eps),
            t(lr / bias1), t(l2), t(decay))


class Backend:
    """The surface every backend offers the ops: ``xp`` (the array module), ``name``,
    ``device``, ``pool`` (its caching allocator, ``gpuad.memory``) and the methods below;
    those in ``DEVICE_METHODS`` each device implements."""

    xp = None
    name = None
    #: A context manager that makes this backend's device current for the array library
    #: (a ``cupy.cuda.Device``), or None where there is none to enter (the CPU). Every op's
    #: forward runs inside it (``Function.apply``), and so do the backend's own methods
    #: and the raw makers and writers (``tracing.traced``).
    device_scope = None
    DEVICE_METHODS = ("asarray", "to_host", "is_array", "empty", "synchronize", "seed",
                      "get_rng_state", "set_rng_state", "rand", "randn", "random_words",
                      "scatter_add", "erf_float")

    # --- arrays and transfers (device methods) --------------------------------------
    def asarray(self, data, dtype=None):
        """``data`` (an array of any device, nested lists, numbers) as an array of this
        backend, of ``dtype`` when given; copied only when it must be."""
        raise _missing(self, "asarray")

    def to_host(self, arr):
        """``arr`` as a NumPy array (``arr`` itself on the CPU)."""
        raise _missing(self, "to_host")

    def is_array(self, obj):
        """Whether ``obj`` is an array of this backend's array library."""
        raise _missing(self, "is_array")

    def empty(self, shape, dtype):
        """An uninitialised array (from the device's memory pool where it serves it)."""
        raise _missing(self, "empty")

    def synchronize(self):
        """Wait until the work queued on the device so far has finished."""
        raise _missing(self, "synchronize")

    # --- random numbers (device methods): one generator per device -------------------
    def seed(self, seed):
        """Restart the generator from ``seed`` (``gpuad.manual_seed``)."""
        raise _missing(self, "seed")

    def get_rng_state(self):
        """The generator's state, as ``set_rng_state`` takes it back."""
        raise _missing(self, "get_rng_state")

    def set_rng_state(self, state):
        """Restore a state ``get_rng_state`` returned (``checkpoint`` replays dropout)."""
        raise _missing(self, "set_rng_state")

    def rand(self, shape, dtype):
        """Samples uniform in [0, 1) of a floating ``dtype``; safe to call from threads."""
        raise _missing(self, "rand")

    def randn(self, shape, dtype):
        """Standard normal samples of a floating ``dtype``; safe to call from threads."""
        raise _missing(self, "randn")

    def random_words(self, n):
        """``n`` raw uniform 32-bit words (uint32) from the generator: what the exact
        ``randint`` below draws from; safe to call from threads."""
        raise _missing(self, "random_words")

    # --- what the array libraries do their own way (device methods) --------------------
    def scatter_add(self, target, index, values):
        """``target[index] += values`` in place, repeated indices accumulated."""
        raise _missing(self, "scatter_add")

    def erf_float(self, x):
        """The error function of a float32 or float64 array, elementwise, in its dtype."""
        raise _missing(self, "erf_float")

    def erf(self, x):
        """The error function of a floating array, elementwise, in its dtype: float16 is
        computed in float32 and rounded once (as PyTorch computes it)."""
        if x.dtype == float16:
            return self.erf_float(x.astype(float32)).astype(float16)
        return self.erf_float(x)

    #: whether ``check_class_indices`` checks (the CPU always; CUDA on request)
    checks_class_indices = True

    def check_class_indices(self, targets, classes, op):
        """Raise an IndexError naming ``op`` unless every class index in ``targets`` lies
        in ``[0, classes)``. Here on the host (it reads the range back); a device where
        that would stall the queue checks only on request (``checks_class_indices``)."""
        lo, hi = int(targets.min()), int(targets.max())
        if lo < 0 or hi >= classes:
            bad = lo if lo < 0 else hi
            raise IndexError(f"{op}: target {bad} is out of range for {classes} classes "
                             f"(0 to {classes - 1})")

    # --- arrays made around the ops, as gpuad.compile records them --------------------
    def constant(self, value, dtype=None):
        """``value`` (a Python number or bool, a nested list or tuple of them, or a
        ``range``) as an array: how an op, or the code around it, makes a scalar or an
        index array. A compiled step records the value (a new one records again) and
        reuses the array at each replay, so nothing may write into it."""
        arr = self.asarray(np.arange(value.start, value.stop, value.step)
                           if type(value) is range else value, dtype)
        if tracing.recording:  # ``x * 2.0`` comes here: the common case costs one read
            tape = tracing.active()
            if tape is not None:
                tape.on_constant(arr, value)
        return arr

    @tracing.traced
    def full(self, shape, value, dtype):
        """A new array of ``shape`` filled with ``value``, made anew at each replay of a
        compiled step (it may be written into)."""
        arr = self.empty(shape, dtype)
        arr.fill(value)
        return arr

    # --- random integers ----------------------------------------------------------------
    def randint(self, low, high, shape):
        """int64 integers uniform in ``[low, high)``, exactly, from ``random_words`` (raw
        32-bit words): each draw is masked to the bits the span needs and redrawn where it
        falls beyond the span (less than half of them, on average)."""
        xp, n, span = self.xp, math.prod(shape), high - low
        if span == 1:
            return xp.full(shape, low, int64)
        bits = (span - 1).bit_length()
        words = 2 if bits > 32 else 1
        out = xp.empty(n, xp.uint64)
        todo = xp.arange(n)
        while todo.size:  # each round costs a host sync: an exact draw needs the redraws
            raw = self.random_words(int(todo.size) * words)
            v = raw.view(xp.uint64) if words == 2 else raw.astype(xp.uint64)
            if bits < 64:
                v &= xp.uint64((1 << bits) - 1)
            if span == 1 << bits:  # a power of two: every draw fits
                out[todo] = v
                break
            ok = v < xp.uint64(span)
            out[todo[ok]] = v[ok]
            todo = todo[~ok]
        # wrapping uint64 addition, read back as int64: low + v, exactly, for any low
        return (out + xp.uint64(low % (1 << 64))).view(int64).reshape(shape)

    def matmul(self, a, b):
        """``a @ b`` with NumPy's rules (the CPU backend may run it on another BLAS)."""
        return self.xp.matmul(a, b)

    def is_view(self, arr):
        """Whether ``arr`` shares its memory with another array (is a view of one)."""
        return self.is_array(arr.base)

    def sigmoid(self, x):
        """``1 / (1 + exp(-x))`` without overflow for large ``|x|``."""
        xp = self.xp
        e = xp.exp(-xp.abs(x))
        return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    @functools.cached_property
    def math(self):
        """The namespace the activation table's formulas run on for this backend's arrays."""
        return activations.ArrayMath(self)

    # --- activations: bias + activation forward, activation backward ----------------------
    def bias_act(self, z, b, activation, slope=0.01):
        """``activation(z + b)`` for a matmul output ``z``, which it overwrites; ``slope``
        is the activation's parameter (the table's formula ignores it where it has none).

        Returns ``(y, saved)``, ``saved`` being what ``act_backward`` takes: the output
        itself, written over ``z``, when ``saves_output(activation, slope)``; else the
        pre-activation ``z + b``, left in ``z`` (``y`` is then a new array).
        """
        act = activations.get(activation)
        if b is not None:
            z += b
        if not act.saves_output(slope):
            return act.forward(self.math, z, slope), z
        y = act.forward(self.math, z, slope, out=z)
        if y is not z:
            z[...] = y
        return z, z

    def act_backward(self, gy, saved, activation, slope=0.01):
        """The gradient at the activation's input, from ``gy`` and what ``bias_act`` saved."""
        return activations.get(activation).backward(self.math, gy, saved, slope)

    def act_bias_backward(self, gy, saved, activation, slope=0.01):
        """``act_backward`` and the bias gradient: its sum over all but the last axis."""
        gz = self.act_backward(gy, saved, activation, slope)
        return gz, gz.reshape(gz.size // max(gz.shape[-1], 1), gz.shape[-1]).sum(axis=0)

    # --- losses --------------------------------------------------------------------------
    def class_row_scale(self, targets, classes, dtype):
        """Per class index of ``targets``: 1 where it lies in ``[0, classes)``, NaN where it
        does not, in ``dtype``. An unchecked out-of-range target's row of a loss and of its
        gradient is multiplied by it: NaN, never a wrapped class's finite value."""
        t = dtype.type
        return self.xp.where((targets >= 0) & (targets < classes), t(1), t("nan"))

    def cross_entropy_forward(self, x, t):
        """Per-row ``stats`` of logits ``x`` (N, C), shape (N, 2): the row max ``m`` and
        the log of the shifted sum ``log(sum(exp(x - m)))``; and the mean loss at targets
        ``t``. The loss is ``log-sum - (x[t] - m)``: adding ``m`` back first would round
        away the small part of a large logit (1e6 + 1.3 in float32). A target outside
        ``[0, C)`` gives its row a NaN loss (``class_row_scale``)."""
        xp, (n, c) = self.xp, x.shape
        z = x.astype(float32) if x.dtype == float16 else x  # float16: in float32
        m = z.max(axis=1, keepdims=True)
        log_sum = xp.log(xp.exp(z - m).sum(axis=1, keepdims=True))
        picked = z[xp.arange(n), t % c] - m[:, 0]
        rows = (log_sum[:, 0] - picked) * self.class_row_scale(t, c, z.dtype)
        loss = rows.mean(dtype=z.dtype)
        return xp.concatenate([m, log_sum], axis=1), loss if z is x else loss.astype(x.dtype)

    def cross_entropy_backward(self, x, stats, t, scale):
        """``(softmax(x) - onehot(t)) * scale``, softmax rebuilt from the saved ``stats``:
        ``exp((x - m) - log-sum)``; NaN rows where a target is outside ``[0, C)``."""
        xp, (n, c) = self.xp, x.shape
        g = xp.exp((x - stats[:, :1]) - stats[:, 1:]).astype(x.dtype, copy=False)
        g[xp.arange(n), t % c] -= 1
        g *= scale * self.class_row_scale(t, c, x.dtype)[:, None]
        return g

    def mse_backward(self, x, t, scale):
        """``2 * scale * (x - t)``: the gradient of ``scale * sum((x - t) ** 2)`` at ``x``."""
        g = x - t
        g *= 2 * scale
        return g

    # --- optimizer updates (in place, one parameter at a time) -----------------------------
    def sgd_kernel_buffer(self, p, g, buf, momentum, takes):
        """The buffer a fused SGD kernel reads (``p`` stands in without momentum), or None
        where the formula below must run: a missing buffer with momentum (it raises),
        mismatched shapes, or arrays the kernel does not ``takes``."""
        if buf is None:
            if momentum:
                return None
            buf = p
        if g.shape != p.shape or buf.shape != p.shape or not takes(p, g, buf):
            return None
        return buf

    def sgd_step(self, p, g, buf, lr, momentum, dampening, nesterov, weight_decay):
        """PyTorch's SGD update of array ``p``; ``buf`` is the momentum buffer or None."""
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            buf *= momentum
            buf += (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p -= lr * g

    def adam_step(self, p, g, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled):
        """PyTorch's Adam (``decoupled=False``) or AdamW update of ``p``, moments ``m``, ``v``."""
        b1, b1c, b2, b2c, bias2_sqrt, eps, step_size, l2, decay = adam_scalars(
            p.dtype, step, lr, beta1, beta2, eps, weight_decay, decoupled)
        if weight_decay:
            if decoupled:
                p *= decay
            else:
                g = g + l2 * p
        m *= b1
        m += b1c * g
        v *= b2
        v += b2c * g * g
        denom = self.xp.sqrt(v) / bias2_sqrt + eps
        p -= step_size * m / denom


def _missing(backend, method):
    return NotImplementedError(f"{type(backend).__name__} does not implement "
                               f"Backend.{method}, which every device backend provides")

