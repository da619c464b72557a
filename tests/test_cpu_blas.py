"""``cpu_blas.matmul`` against NumPy: transposes as flags, row and column blocks over
gpuad's threads, and NumPy for what a GEMM does not take.

The block logic runs on NumPy's own bundled OpenBLAS (its ILP64 CBLAS), so it is tested
on every machine; MKL's, where gpuad loaded it, is tested the same way."""
import ctypes
import glob
import os

import numpy as np
import pytest

import gpuad
from gpuad.backends import cpu_blas

SHAPES = [(1, 1, 1), (3, 5, 7), (128, 784, 256), (1024, 64, 10), (10, 64, 1024), (2, 300, 3)]


def _numpy_openblas():
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs",
                                  "libscipy_openblas64_*.so"))
    if not libs:
        return None
    lib = ctypes.CDLL(libs[0])
    try:
        return cpu_blas.CBLAS("OpenBLAS", lib.scipy_cblas_sgemm64_, lib.scipy_cblas_dgemm64_,
                              ctypes.c_int64)
    except AttributeError:
        return None


LIBS = {"numpy's OpenBLAS": _numpy_openblas(), "loaded": cpu_blas._loaded}


@pytest.fixture(params=[n for n, lib in LIBS.items() if lib is not None])
def lib(request):
    return LIBS[request.param]


@pytest.mark.parametrize("blocks", ["one call", "blocks"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_matmul_matches_numpy(monkeypatch, lib, blocks, dtype, m, k, n):
    monkeypatch.setattr(cpu_blas, "MIN_MACS", 1)
    monkeypatch.setattr(cpu_blas, "PARALLEL_MIN_MACS", 1 << 62 if blocks == "one call" else 0)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    want = a @ b
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for a_ in (a, np.asfortranarray(a)):      # a transposed array is passed as a flag
        for b_ in (b, np.asfortranarray(b)):
            got = cpu_blas.matmul(a_, b_, lib=lib)
            assert got.shape == (m, n) and got.dtype == dtype and got.flags.c_contiguous
            np.testing.assert_allclose(got, want, **tol)


def test_result_array_comes_from_empty(monkeypatch, lib):
    monkeypatch.setattr(cpu_blas, "MIN_MACS", 1)
    a = np.ones((4, 3), np.float32)
    a.flags.writeable = False  # its address is read another way
    made = []

    def empty(shape, dtype):
        made.append(np.full(shape, np.nan, dtype))
        return made[-1]
    got = cpu_blas.matmul(a, a.T, empty, lib)
    assert got is made[0] and (got == 3).all()


@pytest.mark.parametrize("a,b", [
    (np.ones((2, 3, 4), np.float32), np.ones((4, 5), np.float32)),   # batched
    (np.ones((3, 4), np.float32), np.ones(4, np.float32)),           # 1-D
    (np.ones((3, 4), np.int64), np.ones((4, 5), np.int64)),          # integers
    (np.ones((3, 4), np.float32), np.ones((4, 5), np.float64)),      # mixed dtypes
    (np.ones((3, 8), np.float32)[:, ::2], np.ones((4, 5), np.float32)),  # strided
    (np.ones((0, 4), np.float32), np.ones((4, 5), np.float32)),      # empty
    (np.ones((3, 0), np.float32), np.ones((0, 5), np.float32))])     # k = 0
def test_what_gemm_does_not_take_goes_to_numpy(monkeypatch, lib, a, b):
    monkeypatch.setattr(cpu_blas, "MIN_MACS", 1)
    got = cpu_blas.matmul(a, b, lib=lib)
    want = np.matmul(a, b)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_shape_mismatch_raises_numpys_error(monkeypatch, lib):
    monkeypatch.setattr(cpu_blas, "MIN_MACS", 1)
    with pytest.raises(ValueError, match="matmul"):
        cpu_blas.matmul(np.ones((3, 4), np.float32), np.ones((5, 2), np.float32), lib=lib)


def test_describe_names_what_runs():
    text = cpu_blas.describe()
    assert text.startswith("MKL") if cpu_blas._loaded is not None else \
        text.startswith("NumPy matmul")


def test_backend_matmul_gradients_match_numpy():
    """The ops' matmuls (forward and both gradients) run through the backend's."""
    rng = np.random.default_rng(1)
    x = gpuad.tensor(rng.standard_normal((64, 300)).astype(np.float32), requires_grad=True)
    w = gpuad.tensor(rng.standard_normal((200, 300)).astype(np.float32), requires_grad=True)
    y = gpuad.nn.functional.linear(x, w)
    y.sum().backward()
    xs, ws = x.detach().numpy(), w.detach().numpy()
    np.testing.assert_allclose(y.detach().numpy(), xs @ ws.T, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(x.grad.numpy(), np.ones((64, 200), np.float32) @ ws,
                               rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(w.grad.numpy(), np.ones((64, 200), np.float32).T @ xs,
                               rtol=1e-4, atol=1e-3)
