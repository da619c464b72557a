"""gpuad's CUDA kernels executed on the CPU: ``kernels/*.cu`` built with g++ behind
``tests/emulated/cuda_host.h`` and launched through the emulated ``cupy.RawModule`` with
CuPy's call form and argument conversion (``tests/emulated/fake_cupy/_raw.py``), so the
CUDA backend's own launch code (grid and block sizes, argument lists) is what runs. The
device-parametrised suite does this for every fused op on "cuda"; this module checks the
emulation itself (it must stop where a GPU would misbehave) and, by seeding known bugs
into copies of the kernels and of the launch code, that the suite catches them. The table
of which test catches which bug prints with ``pytest -s -k mutation``.

What the emulation cannot show:

* races between blocks: blocks run one after another, so a kernel that needs another
  block's writes (or that two blocks race on) behaves as if they were ordered;
* the GPU memory model: inside a block, threads take turns between synchronisation points
  (a missing ``__syncthreads`` shows as a read of poisoned shared memory, or as a TSan
  report with ``GPUAD_EMU_SANITIZE=thread``), but reordered or cached global memory
  accesses, missing ``__threadfence``, and weak atomics are not modelled;
* CUDA's math: host libm rounding instead of CUDA's (ulp differences in ``expf``, ``erff``,
  ``tanhf``), no fused multiply-add contraction, and no flush-to-zero of denormals, which
  CuPy's RawModule compiles with (``-ftz=true``);
* indices past 2**31 (the test arrays are small) and 64-bit grid-stride arithmetic at scale;
* occupancy, register and shared-memory limits, launch bounds, timing;
* streams run in issue order on the host: work on two streams never overlaps, so a race
  between streams (a block reused across streams) is not shown;
* only what gpuad's kernels use: no dynamic (``extern``) shared memory, ballots, vote or
  ``__syncthreads_count``, cooperative groups, textures; and one warp operation per warp at
  a time (two groups of lanes of one warp in different shuffles with disjoint masks at
  the same moment, legal in CUDA, are reported as an error).

``GPUAD_EMU_SANITIZE=thread`` (ThreadSanitizer) or ``=address`` (AddressSanitizer and
UBSan) rebuild the kernels with the threads of a block as concurrent OS threads:
``GPUAD_EMU_SANITIZE=thread ./dev test tests/test_kernels_emulated.py -k cuda``
(``./dev`` preloads the sanitizer's runtime). The tests that rely on the deterministic
turn order are skipped there.
"""
import importlib.util

import numpy as np
import pytest

from conftest import MODE
from gpuad.backends import cuda_kernels

pytestmark = pytest.mark.skipif(MODE != "emulated", reason="GPUAD_TEST_CUDA is not emulated")

if MODE == "emulated":
    import cupy
    from emulated import kernel_build
    from emulated.fake_cupy import KernelFault, _raw
    SANITIZING = bool(kernel_build.sanitizer())
else:
    SANITIZING = False
turn_order = pytest.mark.skipif(SANITIZING, reason="needs the fibers' deterministic turns")


def _kernel(body, name="k", params="float* out"):
    return cupy.RawModule(code=f'extern "C" __global__ void {name}({params}) {{\n{body}\n}}\n'
                          ).get_function(name)


# --- the execution model ---------------------------------------------------------------------
def test_every_thread_of_every_block_runs_with_its_indices():
    k = _kernel("""
      const int b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
      const int t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
      out[b * blockDim.x * blockDim.y * blockDim.z + t] = b * 1000 + t;""")
    out = cupy.zeros(2 * 3 * 1 * 4 * 2 * 5, dtype=np.float32)
    k((2, 3), (4, 2, 5), (out,))
    got = out.get().reshape(6, 40)
    np.testing.assert_array_equal(got, np.arange(6)[:, None] * 1000 + np.arange(40))


def test_shared_memory_is_poisoned_before_each_block():
    k = _kernel("""
      __shared__ float s[64];
      __shared__ int flag;
      if (threadIdx.x == 0) out[2 * blockIdx.x] = s[5];      // never written: poison
      if (threadIdx.x == 0) out[2 * blockIdx.x + 1] = flag;  // -1 in every block
      __syncthreads();
      s[threadIdx.x] = 1.0f;
      if (threadIdx.x == 0) flag = 7;""")
    out = cupy.zeros(6, dtype=np.float32)
    k((3,), (64,), (out,))
    got = out.get()
    assert np.isnan(got[::2]).all() and (got[1::2] == -1).all()


@turn_order
def test_a_missing_barrier_reads_poison_whatever_the_order():
    """Warp 1 writes what warp 0 reads, with no __syncthreads between: warp 0 runs first in
    one launch and last in the next, and one of the two reads poison."""
    k = _kernel("""
      __shared__ float s[64];
      s[threadIdx.x] = threadIdx.x;
      out[threadIdx.x] = s[63 - threadIdx.x];""")
    seen_poison = False
    for _ in range(2):
        out = cupy.zeros(64, dtype=np.float32)
        k((1,), (64,), (out,))
        seen_poison |= bool(np.isnan(out.get()).any())
    assert seen_poison


@pytest.mark.parametrize("threads,body,match", [
    (64, "if (threadIdx.x < 32)\n  __syncthreads();\nelse\n  __syncthreads();",
     r"different __syncthreads\(\) calls: \d+ at line \d, thread \d+ at line \d"),
    (64, "if (threadIdx.x == 3) return;\n__syncthreads();", "early return before a barrier"),
    (48, "__shfl_xor_sync(0xffffffffu, 1.0f, 1);", "names lanes that do not exist: warp 1 "
                                                 "has 16 lanes"),
    (64, "if (threadIdx.x % 2) __syncthreads(); else __shfl_xor_sync(0xffffffffu, 1.0f, 1);",
     "deadlock"),
    (32, "if (threadIdx.x == 0) return;\n__shfl_xor_sync(0xffffffffu, 1.0f, 1);",
     "returned"),
    (32, "__shfl_down_sync(0x0000ffffu, 1.0f, 1);", "leaves its own lane"),
    (32, "if (threadIdx.x < 16) __shfl_xor_sync(0xffffffffu, 1.0f, 1);\n"
         "else __shfl_down_sync(0xffffffffu, 1.0f, 1);", "different warp operations"),
])
def test_what_a_gpu_leaves_undefined_stops_the_launch(threads, body, match):
    with pytest.raises(KernelFault, match=match):
        _kernel(body)((1,), (threads,), (cupy.zeros(1, np.float32),))


def test_reading_a_lane_outside_the_mask_is_reported():
    k = _kernel("if (threadIdx.x < 16) __shfl_sync(0x0000ffffu, 1.0f, 20);")
    with pytest.raises(KernelFault, match="outside the mask"):
        k((1,), (32,), (cupy.zeros(1, np.float32),))


def test_shuffles_read_the_lanes_cuda_defines():
    k = _kernel("""
      const float v = threadIdx.x;
      out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, v, 5);
      out[32 + threadIdx.x] = __shfl_down_sync(0xffffffffu, v, 3);
      out[64 + threadIdx.x] = __shfl_up_sync(0xffffffffu, v, 2, 8);
      out[96 + threadIdx.x] = __shfl_sync(0xffffffffu, v, 33, 16);""")
    out = cupy.zeros(128, np.float32)
    k((1,), (32,), (out,))
    lane = np.arange(32)
    got = out.get().reshape(4, 32)
    np.testing.assert_array_equal(got[0], lane ^ 5)
    np.testing.assert_array_equal(got[1], np.where(lane + 3 < 32, lane + 3, lane))
    np.testing.assert_array_equal(got[2], np.where(lane % 8 >= 2, lane - 2, lane))
    np.testing.assert_array_equal(got[3], (lane & ~15) + 1)


def test_atomics_add_up_across_threads_and_blocks():
    k = _kernel("atomicAdd(out, 1.0f); atomicMax((int*)(out + 1), (int)threadIdx.x);")
    out = cupy.zeros(2, np.float32)
    out[1:].view(np.int32).fill(0)
    k((5,), (96,), (out,))
    assert out.get()[0] == 480 and out[1:].view(np.int32).get()[0] == 95


@pytest.mark.skipif(SANITIZING and kernel_build.sanitizer() == "address",
                    reason="AddressSanitizer stops the process at the first guard-zone access")
def test_writing_past_an_array_is_caught_by_its_guard_zone():
    k = _kernel("out[threadIdx.x] = 1.0f;")
    with pytest.raises(KernelFault, match=r"wrote past its end of argument 0 \(float\*, 28 "
                                          r"bytes\): bytes 28 to 31"):
        k((1,), (8,), (cupy.zeros(7, np.float32),))
    with pytest.raises(KernelFault, match="before its start"):
        _kernel("out[-1] = 1.0f;")((1,), (1,), (cupy.zeros(7, np.float32),))


@pytest.mark.skipif(SANITIZING and kernel_build.sanitizer() == "address",
                    reason="AddressSanitizer stops the process at the first guard-zone access")
def test_a_graph_replay_checks_each_array_as_its_kernel_was_given_it():
    fill = _kernel("out[threadIdx.x] = 1.0f;")
    s = cupy.cuda.Stream(non_blocking=True)
    big, over = cupy.zeros(15, np.float32), cupy.zeros(7, np.float32)
    with s:
        s.begin_capture()
        fill((1,), (15,), (big,))
        fill((1,), (8,), (over,))  # one past the end
        g = s.end_capture()
    tail = _raw._memory.find(big.data.ptr).tail
    _raw._memory.find(big.data.ptr).tail = 48  # a later, smaller tenant of big's block
    try:
        with pytest.raises(KernelFault, match=r"argument 0 \(float\*, 28 bytes\)"):
            g.launch()  # the first launch writes its 60 bytes freely; the second is caught
    finally:
        _raw._memory.find(big.data.ptr).tail = tail


# --- CuPy's launch: call form and argument conversion --------------------------------------
_ECHO = ("double* out, double d, float f, long long q, int i, bool b, const float* p",
         "out[0] = d; out[1] = f; out[2] = q; out[3] = i; out[4] = b; out[5] = p ? p[0] : -7;")


@pytest.fixture
def lenient(monkeypatch):
    monkeypatch.setattr(_raw, "STRICT", False)


def _echo(*args):
    out = cupy.zeros(6, np.float64)
    _kernel(_ECHO[1], params=_ECHO[0])((1,), (1,), (out,) + args)
    return out.get()


def test_arguments_convert_as_cupy_does(lenient):
    p = cupy.full(1, 2.5, np.float32)
    np.testing.assert_array_equal(
        _echo(1.5, np.float32(0.25), 2**40, np.int32(-3), True, p), [1.5, 0.25, 2**40, -3, 1, 2.5])
    np.testing.assert_array_equal(  # NumPy arrays of one element pass their value; None: NULL
        _echo(np.array([1.5]), np.array(0.25, np.float32), 7, np.int32(1), False, None)[[0, 1, 5]],
        [1.5, 0.25, -7])
    # a Python float is a double: a float parameter reads its low half, as a GPU does
    got = _echo(1.5, 0.1, 7, np.int32(1), True, p)[1]
    assert got != np.float32(0.1) and got == np.float64(0.1).view(np.uint64).astype(
        np.uint32).view(np.float32)
    with pytest.raises(TypeError, match="numpy.ndarray of shape"):
        _echo(1.5, np.zeros(3, np.float32), 7, np.int32(1), True, p)
    with pytest.raises(TypeError, match="Unsupported type"):
        _echo(1.5, [0.5], 7, np.int32(1), True, p)
    with pytest.raises(TypeError, match="'grid' has incorrect type"):
        _kernel(_ECHO[1], params=_ECHO[0])([1], (1,), ())


@pytest.mark.parametrize("args,match", [
    ((1.5, 0.25, 7, np.int32(1), True, None), r"argument 2 \(float\) is given a float64 "
                                              r"value.*numpy.float32"),
    ((1.5, np.float32(0.25), 7, 1, True, None), r"argument 4 \(int\) is given a int64"),
    ((1.5, np.float32(0.25), 7), "takes 7 arguments"),
    ((1.5, np.float32(0.25), 7, np.int32(1), True, 3.0), r"argument 6 .*is a pointer"),
])
def test_strict_mode_refuses_arguments_that_do_not_fit(args, match):
    with pytest.raises(KernelFault, match=match):
        _echo(*args)


def test_strict_mode_refuses_other_dtypes_and_strided_arrays():
    k = _kernel("out[0] = 1;")
    with pytest.raises(KernelFault, match="given a float64 array"):
        k((1,), (1,), (cupy.zeros(2),))
    with pytest.raises(KernelFault, match="not C-contiguous"):
        k((1,), (1,), (cupy.zeros(4, np.float32)[::2],))


def test_pointers_must_be_memory_of_the_current_device():
    with cupy.cuda.Device(1):
        elsewhere = cupy.zeros(4, np.float32)
    with pytest.raises(cupy.cuda.runtime.CUDARuntimeError, match="cudaErrorIllegalAddress.*"
                                                                  "device 1"):
        _kernel("out[0] = 1;")((1,), (1,), (elsewhere,))


def test_launch_limits_are_cudas():
    k = _kernel("out[0] = 1;")
    for grid, block in [((1,), (1025,)), ((1,), (32, 1, 65)), ((1, 65536), (1,))]:
        with pytest.raises(_raw.CUDADriverError, match="INVALID_VALUE"):
            k(grid, block, (cupy.zeros(1, np.float32),))
    k((0,), (0,), (out := cupy.zeros(1, np.float32),))  # CuPy raises 0 to 1
    assert out.get()[0] == 1


def test_kernels_are_built_once_per_source_text():
    code = 'extern "C" __global__ void once(float* o) { o[0] = 3; }'
    a, b = kernel_build.load(code), kernel_build.load(code)
    assert a is b and a.entries == ["once"] and a.signature("once") == ["float*"]
    assert any("warp_results" in n for n in kernel_build.load(
        cuda_kernels.module_source("softmax_xent")).shared_variables)


# --- the mutation test ------------------------------------------------------------------------
# Each entry: (bug, file, original text, mutated text). A file under kernels/ is mutated in
# the source the CUDA backend compiles; gpuad/backends/cuda_kernels.py, the launch code, in
# a fresh copy of that module whose CUDAKernels the backend then uses.
MUTATIONS = [
    ("__syncthreads removed between shared writes and reads", "kernels/softmax_xent.cu",
     "  if (lane == 0) warp_results[threadIdx.x >> 5] = v;\n  __syncthreads();\n",
     "  if (lane == 0) warp_results[threadIdx.x >> 5] = v;\n"),
    ("grid-stride bound i <= n", "kernels/common.cuh", "i < (n);", "i <= (n);"),
    ("warp reduction starting at offset 8, not 16", "kernels/softmax_xent.cu",
     "  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));\n"
     "  const int lane",
     "  for (int o = 8; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));\n"
     "  const int lane"),
    ("early return before a barrier", "kernels/softmax_xent.cu",
     "    const T* xr = x + row * c;\n",
     "    if (threadIdx.x >= c) return;\n    const T* xr = x + row * c;\n"),
    ("block size not a whole number of warps", "gpuad/backends/cuda_kernels.py",
     "return min(THREADS, 32 * -(-c // 32))", "return min(THREADS, c)"),
    ("float32 kernel parameter passed as a Python float", "gpuad/backends/cuda_kernels.py",
     "np.int32(ACTIVATION_CODES[activation]), z.dtype.type(slope)))",
     "np.int32(ACTIVATION_CODES[activation]), slope))"),
    ("off-by-one column in the bias broadcast", "kernels/activation.cu",
     "long long col = i % c;", "long long col = (i + 1) % c;"),
]


def _twin_tests():
    """The float32 cases of the kernel tests of the suite, as (id, call): what a seeded bug
    must make fail (the first failure stops the run)."""
    import test_kernels_twins as t
    from gpuad.activations import ACTIVATIONS
    cases = []
    for act in ACTIVATIONS:
        for shape, bias in [((7, 5), (5,)), ((3, 4, 1023), (1023,)), ((1023,), (1023,))]:
            cases.append((f"test_bias_act[{act}-{shape}]", lambda a=act, s=shape, b=bias:
                          t.test_bias_act("cuda", np.float32, a, s, b)))
        for size in t.SIZES:
            cases.append((f"test_act_backward[{act}-{size}]",
                          lambda a=act, n=size: t.test_act_backward("cuda", np.float32, a, n)))
        for shape in [(7, 5), (3, 1023)]:
            cases.append((f"test_act_bias_backward[{act}-{shape}]", lambda a=act, s=shape:
                          t.test_act_bias_backward("cuda", np.float32, a, s)))
    for n, c in [(7, 5), (33, 1023)]:
        cases.append((f"test_cross_entropy[{n}x{c}]",
                      lambda n=n, c=c: t.test_cross_entropy("cuda", np.float32, n, c, np.int64)))
    for size in t.SIZES:
        cases.append((f"test_mse_backward[{size}]",
                      lambda n=size: t.test_mse_backward("cuda", np.float32, n)))
        cases.append((f"test_sgd_step[{size}]", lambda n=size: t.test_sgd_step(
            "cuda", np.float32, t.SGD_CASES[1], (n,))))
        cases.append((f"test_adam_step[{size}]", lambda n=size: t.test_adam_step(
            "cuda", np.float32, 0.1, True, (n,))))
    return cases


def _mutant_module(source):
    """A fresh copy of gpuad.backends.cuda_kernels built from ``source``."""
    spec = importlib.util.spec_from_loader("gpuad.backends._mutant_cuda_kernels", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "gpuad.backends"
    exec(compile(source, cuda_kernels.__file__, "exec"), module.__dict__)
    return module


def _seed(monkeypatch, path, old, new):
    from pathlib import Path
    from gpuad.backends import backend_for
    root = Path(cuda_kernels.__file__).resolve().parents[2]
    text = (root / path).read_text()
    assert text.count(old) == 1, f"{path} no longer has {old!r}: update this mutation"
    mutated = text.replace(old, new)
    backend = backend_for("cuda")
    backend.__dict__.pop("kernels", None)  # a fresh DeviceKernels: no module compiled yet
    if path.endswith(".py"):
        mutant = _mutant_module(mutated)
        cls = type("MutantCUDABackend", (mutant.CUDAKernels, type(backend)), {})
        monkeypatch.setattr(backend, "__class__", cls)
        return
    name = Path(path).stem
    real = cuda_kernels.module_source
    if path.endswith(".cuh"):
        def source(module):
            return real(module).replace(old, new)
    else:
        def source(module):
            return real(module).replace(old, new) if module == name else real(module)
    monkeypatch.setattr(cuda_kernels, "module_source", source)


def _first_failure(cases):
    for test_id, run in cases:
        try:
            run()
        except Exception as e:  # noqa: BLE001  (whatever the bug makes fail counts)
            kind = "argument check" if "is given" in str(e) else \
                "KernelFault" if isinstance(e, KernelFault) else \
                "wrong values" if isinstance(e, AssertionError) else type(e).__name__
            lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
            return test_id, kind, (lines[0] if lines else "")[:140]
    return None


def _prebuild(mutations):
    """Start g++ on every mutated kernel source at once (the builds run in parallel)."""
    from pathlib import Path
    from gpuad.kernels_loader import kernels_dir
    modules = [p.stem for p in kernels_dir().glob("*.cu")]
    for _, path, old, new in mutations:
        if path.startswith("kernels/"):
            for m in modules:
                src = cuda_kernels.module_source(m)
                if old in src and (path.endswith(".cuh") or Path(path).stem == m):
                    kernel_build.start(src.replace(old, new), f"{m}.cu")


@turn_order
def test_mutation_every_seeded_bug_fails_the_kernel_tests(monkeypatch):
    from gpuad.backends import backend_for
    backend = backend_for("cuda")
    cases = _twin_tests()
    _prebuild(MUTATIONS)
    assert _first_failure(cases) is None  # the real kernels pass
    rows = []
    for bug, path, old, new in MUTATIONS:
        with monkeypatch.context() as m:
            _seed(m, path, old, new)
            rows.append((bug, path, _first_failure(cases)))
        backend.__dict__.pop("kernels", None)
    width = max(len(bug) for bug, _, _ in rows)
    print("\nseeded bug".ljust(width + 3) + "caught by")
    for bug, _, caught in rows:
        print(f"{bug:<{width}}  {caught[0]}: {caught[1]}: {caught[2]}" if caught else
              f"{bug:<{width}}  NOT CAUGHT")
    assert all(caught for _, _, caught in rows), [bug for bug, _, c in rows if c is None]
