"""Each fused kernel against its reference formula (``gpuad.backends.base.Backend``): the
Numba twins on cpu, the CUDA kernels on cuda (the ``device`` fixture), in float32 and
float64, on contiguous arrays (the kernels) and on others (the fallback), with broadcast
biases and odd sizes."""
import re

import numpy as np
import pytest

from gpuad.activations import ACTIVATION_CODES, saves_output
from gpuad.backends import backend_for, cpu_kernels
from gpuad.backends.base import Backend
from gpuad.kernels_loader import kernels_dir, load

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}
SIZES = [1, 7, 1023]
ACTIVATIONS = tuple(ACTIVATION_CODES)  # the activations with fused kernels


@pytest.fixture(autouse=True, params=["row blocks", "one call"])
def _every_twin(monkeypatch, request):
    """The CPU backend leaves arrays under MIN_ELEMENTS, and the twins that lost to NumPy,
    to the reference; these tests check every twin, on small and odd sizes too, cut into
    row blocks over gpuad's threads and in one call (what arrays under
    PARALLEL_MIN_ELEMENTS get)."""
    monkeypatch.setattr(cpu_kernels, "MIN_ELEMENTS", 1)
    monkeypatch.setattr(cpu_kernels, "PARALLEL_MIN_ELEMENTS",
                        0 if request.param == "parallel" else 1 << 62)
    monkeypatch.setattr(cpu_kernels, "FORWARD_SLOWER", set())
    monkeypatch.setattr(cpu_kernels, "BIAS_FUSION_SLOWER", set())
    monkeypatch.setattr(cpu_kernels, "XENT_FORWARD_MAX_CLASSES", 1 << 62)
    monkeypatch.setattr(cpu_kernels, "XENT_BACKWARD_SLOWER", False)


def _data(be, shape, dtype, seed=0, positive=False):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return be.asarray(np.abs(a) + 0.1 if positive else a)


def _close(be, got, want, dtype):
    np.testing.assert_allclose(be.to_host(got), be.to_host(want), **TOL[dtype])


def _saved_for(be, activation, h):
    """What bias_act saves for the pre-activation ``h`` (a copy)."""
    return Backend.bias_act(be, h.copy(), None, activation)[1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape,bias_shape", [
    ((1, 1), (1,)), ((7, 5), (5,)), ((3, 4, 1023), (1023,)), ((7, 5), (1, 5)),
    ((7, 5), None), ((1023,), (1023,)),
    ((7, 5), ()), ((7, 5), (7, 1))])  # these two broadcast otherwise: the fallback
def test_bias_act(device, dtype, activation, shape, bias_shape):
    be = backend_for(device)
    z = _data(be, shape, dtype)
    b = None if bias_shape is None else _data(be, bias_shape, dtype, seed=1)
    z_ref = z.copy()
    y_ref, saved_ref = Backend.bias_act(be, z_ref, b, activation)
    y, saved = be.bias_act(z, b, activation)
    _close(be, y, y_ref, dtype)
    _close(be, saved, saved_ref, dtype)
    _close(be, z, z_ref, dtype)  # z holds what the reference leaves in it
    assert (y is z) == saves_output(activation, 0.01)  # in place when the output is saved


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("size", SIZES)
def test_act_backward(device, dtype, activation, size):
    be = backend_for(device)
    s = _saved_for(be, activation, _data(be, (size,), dtype))
    gy = _data(be, (size,), dtype, seed=2)
    _close(be, be.act_backward(gy, s, activation), Backend.act_backward(be, gy, s, activation),
           dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (1023, 3), (2, 3, 7), (3, 1023)])
def test_act_bias_backward(device, dtype, activation, shape):
    be = backend_for(device)
    s = _saved_for(be, activation, _data(be, shape, dtype))
    gy = _data(be, shape, dtype, seed=2)
    gz, gb = be.act_bias_backward(gy, s, activation)
    gz_ref, gb_ref = Backend.act_bias_backward(be, gy, s, activation)
    _close(be, gz, gz_ref, dtype)
    assert gb.shape == shape[-1:]
    np.testing.assert_allclose(be.to_host(gb), be.to_host(gb_ref),
                               rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"] * 10)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_other_layouts_and_dtypes_take_the_reference(device, activation):
    be = backend_for(device)
    s = _saved_for(be, activation, _data(be, (6, 10), np.float32))[:, ::2]
    gy = _data(be, (6, 10), np.float32, seed=2)[:, ::2]
    _close(be, be.act_backward(gy, s, activation), Backend.act_backward(be, gy, s, activation),
           np.float32)
    half, half_gy = s.astype(np.float16), gy.astype(np.float16)
    got, want = be.act_backward(half_gy, half, activation), \
        Backend.act_backward(be, half_gy, half, activation)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(be.to_host(got), be.to_host(want), rtol=1e-3)
    z = _data(be, (6, 10), np.float32)
    z_ref = z.copy()
    y, _ = be.bias_act(z[:, ::2], None, activation)
    y_ref, _ = Backend.bias_act(be, z_ref[:, ::2], None, activation)
    _close(be, y, y_ref, np.float32)
    _close(be, z, z_ref, np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,c", [(1, 1), (7, 5), (33, 1023)])
@pytest.mark.parametrize("target_dtype", [np.int32, np.int64])
def test_cross_entropy(device, dtype, n, c, target_dtype):
    be = backend_for(device)
    x = _data(be, (n, c), dtype) * 3
    t = be.asarray(np.random.default_rng(3).integers(0, c, n).astype(target_dtype))
    stats, loss = be.cross_entropy_forward(x, t)
    stats_ref, loss_ref = Backend.cross_entropy_forward(be, x, t)
    _close(be, stats, stats_ref, dtype)
    _close(be, loss, loss_ref, dtype)
    assert stats.dtype == loss.dtype == dtype and stats.shape == (n, 2)
    scale = be.asarray(np.asarray(0.5 / n, dtype))
    _close(be, be.cross_entropy_backward(x, stats, t, scale),
           Backend.cross_entropy_backward(be, x, stats_ref, t, scale), dtype)
    strided = be.asarray(np.repeat(be.to_host(x), 2, axis=1))[:, ::2]  # fallback
    _close(be, be.cross_entropy_forward(strided, t)[1], loss_ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_mse_backward(device, dtype, size):
    be = backend_for(device)
    x, t = _data(be, (size,), dtype), _data(be, (size,), dtype, seed=1)
    scale = be.asarray(np.asarray(1 / size, dtype))
    _close(be, be.mse_backward(x, t, scale), Backend.mse_backward(be, x, t, scale), dtype)


SGD_CASES = [dict(momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0),
             dict(momentum=0.9, dampening=0.0, nesterov=True, weight_decay=1e-2),
             dict(momentum=0.9, dampening=0.1, nesterov=False, weight_decay=0.0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SGD_CASES)
@pytest.mark.parametrize("shape", [(1,), (7, 5), (1023,)])
def test_sgd_step(device, dtype, case, shape):
    be = backend_for(device)
    p, g = _data(be, shape, dtype), _data(be, shape, dtype, seed=1)
    buf = _data(be, shape, dtype, seed=2) if case["momentum"] else None
    p_ref, buf_ref = p.copy(), None if buf is None else buf.copy()
    for _ in range(2):
        be.sgd_step(p, g, buf, lr=0.1, **case)
        Backend.sgd_step(be, p_ref, g, buf_ref, lr=0.1, **case)
    _close(be, p, p_ref, dtype)
    if buf is not None:
        _close(be, buf, buf_ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay,decoupled", [(0.0, False), (0.1, False), (0.1, True)])
@pytest.mark.parametrize("shape", [(1,), (7, 5), (1023,)])
def test_adam_step(device, dtype, weight_decay, decoupled, shape):
    be = backend_for(device)
    p, g = _data(be, shape, dtype), _data(be, shape, dtype, seed=1)
    m, v = _data(be, shape, dtype, seed=2), _data(be, shape, dtype, seed=3, positive=True)
    ref = [a.copy() for a in (p, m, v)]
    for step in (1, 2):
        args = (step, 1e-2, 0.9, 0.999, 1e-8, weight_decay, decoupled)
        be.adam_step(p, g, m, v, *args)
        Backend.adam_step(be, ref[0], g, ref[1], ref[2], *args)
    for got, want in zip((p, m, v), ref):
        _close(be, got, want, dtype)


def test_optimizers_fall_back_for_strided_parameters(device):
    be = backend_for(device)
    p = _data(be, (6, 8), np.float32)[:, ::2]
    g, buf = _data(be, (6, 4), np.float32, seed=1), _data(be, (6, 4), np.float32, seed=2)
    p_ref, buf_ref = p.copy(), buf.copy()
    be.sgd_step(p, g, buf, 0.1, 0.9, 0.0, False, 0.0)
    Backend.sgd_step(be, p_ref, g, buf_ref, 0.1, 0.9, 0.0, False, 0.0)
    _close(be, p, p_ref, np.float32)


_FUSED = ["bias_act", "act_backward", "act_bias_backward", "cross_entropy_forward",
          "cross_entropy_backward", "mse_backward", "sgd_step", "adam_step"]


def test_contiguous_float_arrays_take_the_kernels(device, monkeypatch):
    be = backend_for(device)

    def refusing(name):
        def refuse(*args, **kwargs):
            raise AssertionError(f"{name} fell back to the reference formula")
        return refuse

    for name in _FUSED:
        monkeypatch.setattr(Backend, name, refusing(name))
    x = _data(be, (4, 6), np.float32)
    for activation in ACTIVATIONS:
        _, s = be.bias_act(x.copy(), _data(be, (6,), np.float32), activation)
        be.act_backward(x, s, activation)
        be.act_bias_backward(x, s, activation)
    t = be.asarray(np.array([0, 5, 2, 1]))
    stats, _ = be.cross_entropy_forward(x, t)
    be.cross_entropy_backward(x, stats, t, be.asarray(np.float32(0.25)))
    be.mse_backward(x, x.copy(), be.asarray(np.float32(0.5)))
    be.sgd_step(x, x.copy(), x.copy(), 0.1, 0.9, 0.0, True, 0.1)
    be.adam_step(x, x.copy(), x.copy(), x * x, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False)


def test_kernel_codes_are_the_tables():
    """The activation codes of kernels/activation.cu (its #defines) and of its Numba twin
    (its constants) are the table's, name for name."""
    twin = load("activation")
    source = (kernels_dir() / "activation.cu").read_text()
    defines = {name.lower(): int(code) for name, code in
               re.findall(r"^#define ([A-Z_]+) (\d+)$", source, re.MULTILINE)}
    constants = {name.lower(): value for name, value in vars(twin).items()
                 if name.isupper() and name[0] != "_" and type(value) is int}
    assert defines == ACTIVATION_CODES
    assert constants == ACTIVATION_CODES
    assert sorted(ACTIVATION_CODES.values()) == list(range(len(ACTIVATION_CODES)))


def test_small_arrays_and_slower_twins_take_numpy_on_cpu(monkeypatch):
    monkeypatch.undo()  # the backend as it ships
    be = backend_for("cpu")
    for name in ("act_backward", "bias_act", "act_bias_backward"):
        monkeypatch.setattr(Backend, name, lambda *a, _name=name: _name)
    small = _data(be, (cpu_kernels.MIN_ELEMENTS - 1,), np.float32)
    assert be.act_backward(small, small, "relu") == "act_backward"
    large = _data(be, (cpu_kernels.MIN_ELEMENTS // 64, 64), np.float32)
    assert isinstance(be.act_backward(large, large, "relu"), np.ndarray)
    for act in cpu_kernels.FORWARD_SLOWER:
        assert be.bias_act(large.copy(), None, act) == "bias_act"
    for act in cpu_kernels.BIAS_FUSION_SLOWER:
        assert be.act_bias_backward(large, large, act) == "act_bias_backward"
