"""Matrix products of the CPU backend: NumPy's ``matmul``, or on request MKL's GEMM on
gpuad's threads (``pip install gpuad[mkl]`` and ``GPUAD_CPU_BLAS=mkl``).

MKL's sequential sgemm took 3-7 % less CPU time than NumPy's OpenBLAS on this project's
training steps (benchmarks/NOTES.md). gpuad loads MKL's single dynamic library
(``libmkl_rt``) itself and selects its sequential layer: no OpenMP runtime is loaded and
MKL starts no thread; a product large enough is cut into row (or column) blocks, each one
GEMM call on one of gpuad's worker threads (``cpu_threads``), so its speed depends on no
``OMP_*`` or ``MKL_*`` setting and nothing spins between calls.

It is not the default because it changes the process for others: libmkl_rt loads MKL's
layers into the global symbol scope, and PyTorch, whose statically linked MKL exports its
symbols, binds them to gpuad's sequential MKL when it is imported afterwards (its thread
count measured 2 -> 1). With ``GPUAD_CPU_BLAS=mkl``, import torch before gpuad. gpuad
refuses MKL (and uses NumPy) where an MKL is already loaded. ``describe()`` says which
GEMM runs.
"""
import ctypes
import ctypes.util
import glob
import os
import re
import sys

import numpy as np

from . import cpu_threads

#: Products of fewer multiply-adds (m * n * k) run as one call on the calling thread: the
#: hand-off to a worker costs more than half of such a product saves.
PARALLEL_MIN_MACS = 1 << 22
#: Products of fewer multiply-adds go to NumPy: for them the call's overhead, not the
#: GEMM, is the time, and NumPy's is lower.
MIN_MACS = 1 << 15
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_addressof, _from_buffer = ctypes.addressof, ctypes.c_char.from_buffer


class CBLAS:
    """The ``cblas_sgemm`` / ``cblas_dgemm`` of one library; ``index`` is its integer type
    (``ctypes.c_int`` for LP64, ``ctypes.c_int64`` for ILP64)."""

    def __init__(self, name, sgemm, dgemm, index=ctypes.c_int):
        self.name = name
        self.gemm = {}
        for dtype, fn, real in ((np.float32, sgemm, ctypes.c_float),
                                (np.float64, dgemm, ctypes.c_double)):
            fn.argtypes = [ctypes.c_int] * 3 + [index] * 3 + [
                real, ctypes.c_void_p, index, ctypes.c_void_p, index, real, ctypes.c_void_p,
                index]
            fn.restype = None
            self.gemm[np.dtype(dtype)] = fn


def _layout(x):
    """(CBLAS transpose flag, leading dimension) of a 2-D array, or None when it is
    neither C- nor Fortran-contiguous."""
    if x.flags.c_contiguous:
        return _NO_TRANS, max(1, x.shape[1])
    if x.flags.f_contiguous:
        return _TRANS, max(1, x.shape[0])
    return None


def _address(x, trans):
    """The address of a contiguous array's first element (``x.ctypes.data``, 3x faster)."""
    try:
        return _addressof(_from_buffer(x.T if trans == _TRANS else x))
    except TypeError:  # read-only
        return x.ctypes.data


def matmul(a, b, empty=np.empty, lib=None):
    """``a @ b``: 2-D float32/float64 operands of one dtype, each C- or Fortran-contiguous
    (a transposed array is passed as a flag), by ``lib``'s GEMM (default: the one loaded);
    anything else by ``np.matmul``. ``empty(shape, dtype)`` makes a 2-D result's array."""
    lib = _loaded if lib is None else lib
    if lib is None and empty is np.empty:  # the default: nothing to choose
        return np.matmul(a, b)
    if a.ndim != 2 or b.ndim != 2 or b.dtype != a.dtype or a.shape[1] != b.shape[0]:
        return np.matmul(a, b)
    m, k = a.shape
    n = b.shape[1]
    gemm = None if lib is None else lib.gemm.get(a.dtype)
    # the layouts only once the product is one for the GEMM (they cost ~1 us)
    la = lb = None
    if gemm is not None and m * n * k >= MIN_MACS:
        la, lb = _layout(a), _layout(b)
    if la is None or lb is None:
        return np.matmul(a, b) if empty is np.empty else \
            np.matmul(a, b, out=empty((m, n), a.dtype))
    out = empty((m, n), a.dtype)
    (ta, lda), (tb, ldb) = la, lb
    pa, pb, pc, size = _address(a, ta), _address(b, tb), _address(out, _NO_TRANS), a.itemsize
    if m * n * k < PARALLEL_MIN_MACS or cpu_threads.THREADS == 1:
        gemm(_ROW_MAJOR, ta, tb, m, n, k, 1.0, pa, lda, pb, ldb, 0.0, pc, n)
        return out
    jobs = []
    if m >= n:  # blocks of rows of op(a) and the result
        step_a = lda * size if ta == _NO_TRANS else size
        for r0, r1 in cpu_threads.blocks(m):
            jobs.append((_ROW_MAJOR, ta, tb, r1 - r0, n, k, 1.0, pa + r0 * step_a, lda,
                         pb, ldb, 0.0, pc + r0 * n * size, n))
    else:  # blocks of columns of op(b) and the result
        step_b = size if tb == _NO_TRANS else ldb * size
        for c0, c1 in cpu_threads.blocks(n):
            jobs.append((_ROW_MAJOR, ta, tb, m, c1 - c0, k, 1.0, pa, lda,
                         pb + c0 * step_b, ldb, 0.0, pc + c0 * size, n))
    cpu_threads.run_blocks(gemm, jobs)  # ctypes calls release the GIL
    return out


def describe():
    """Which GEMM the CPU backend's matmul runs, e.g. ``"MKL 2026.2 (sequential, on 2
    gpuad threads)"`` or ``"NumPy matmul"``."""
    if _loaded is None:
        return f"NumPy matmul ({_reason})"
    return f"{_loaded.name} (sequential, on {cpu_threads.THREADS} gpuad threads)"


def _mkl_paths():
    found = []
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        found += sorted(glob.glob(os.path.join(prefix, "lib", "libmkl_rt.so*")))
    name = ctypes.util.find_library("mkl_rt")
    return found + ([name] if name else [])


def _mkl_loaded_already():
    try:
        with open("/proc/self/maps") as f:
            return "libmkl_" in f.read()
    except OSError:
        return False


def _load_mkl():
    """(CBLAS or None, why not)."""
    if os.environ.get("GPUAD_CPU_BLAS", "numpy").lower() != "mkl":
        return None, "the default; GPUAD_CPU_BLAS=mkl selects MKL"
    paths = _mkl_paths()
    if not paths:
        return None, "GPUAD_CPU_BLAS=mkl but MKL is not installed: pip install gpuad[mkl]"
    if _mkl_loaded_already():
        return None, "another library loaded MKL first: gpuad leaves it as it is"
    for path in paths:
        try:
            rt = ctypes.CDLL(path)
        except OSError:
            continue
        # before any other MKL call: the sequential layer, no OpenMP runtime
        if rt.MKL_Set_Threading_Layer(1) != 1:
            return None, f"{path} would not take its sequential layer"
        buf = ctypes.create_string_buffer(256)
        rt.mkl_get_version_string(buf, len(buf))
        version = re.search(r"\d{4}\.\d+(\.\d+)?", buf.value.decode(errors="replace"))
        name = f"MKL {version.group(0)}" if version else "MKL"
        return CBLAS(name, rt.cblas_sgemm, rt.cblas_dgemm), None
    return None, "MKL found but could not be loaded"


_loaded, _reason = _load_mkl()
