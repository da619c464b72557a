"""The CuPy stand-in (tests/emulated/fake_cupy) behaves like CuPy 14 where gpuad could get
CuPy wrong: no implicit conversion to NumPy, 0-d results, CuPy's dtypes and loop tables,
wrapped integer indices, NumPy arrays refused, memory from the installed allocator with
guard zones, two devices with CuPy's current-device rules, and stream capture that records
work and replays it on poisoned outputs. Each behaviour cites what it follows in CuPy's
source (v14.2.0)."""
import warnings

import numpy as np
import pytest

from conftest import MODE

pytestmark = pytest.mark.skipif(MODE != "emulated", reason="GPUAD_TEST_CUDA is not emulated")

if MODE == "emulated":
    import cupy
    import cupyx
    import cupyx.scipy.special
    from emulated import fake_cupy
    from emulated.fake_cupy import NotEmulated, _memory
    CUDARuntimeError = cupy.cuda.runtime.CUDARuntimeError


def test_it_is_cupy_only_inside_the_test_run():
    import subprocess
    import sys
    probe = subprocess.run([sys.executable, "-c", "import cupy, sys; print(cupy.__file__)"],
                           capture_output=True, text=True, cwd="/")
    assert "fake_cupy" not in probe.stdout  # the real one, or none


def test_only_cupys_names_and_unemulated_ones_say_so():
    assert cupy.__version__ == fake_cupy.VERSION and cupy.ndarray.__module__ == "cupy"
    with pytest.raises(NotEmulated, match="cupy.fft exists in CuPy .* does not emulate"):
        cupy.fft  # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute 'tensordot_of_sorts'"):
        cupy.tensordot_of_sorts  # noqa: B018
    with pytest.raises(AssertionError, match="offers names CuPy .* lacks: .'extra'."):
        fake_cupy.Module("cupy.random", {"extra": 1})


def test_no_implicit_conversion_to_numpy():  # core.pyx: ndarray.__array__
    x = cupy.arange(3)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(x)
    host = x.get()
    assert type(host) is np.ndarray and host.tolist() == [0, 1, 2]
    host[0] = 9
    assert x[0].item() == 0  # get() copied


def test_reductions_and_integer_indexing_give_0d_arrays():
    x = cupy.arange(6, dtype=np.float32).reshape(2, 3)
    for r in (x.sum(), x.max(), cupy.mean(x), x[1, 2], x[0][1]):
        assert type(r) is cupy.ndarray and r.shape == ()
    assert float(x.sum()) == 15.0 and x[1, 2].base is not None  # a view, as CuPy's


def test_numpy_operands_are_refused():  # _kernel.pyx: _preprocess_arg -> CScalar
    x = cupy.ones(3)
    for bad in (np.ones(3), np.ones(()), [1.0, 2.0]):
        with pytest.raises(TypeError, match="Unsupported type"):
            cupy.add(x, bad)
    assert (x + np.float32(2)).dtype == np.float64 and (x.astype(np.float32) + 2.0).dtype == \
        np.float32  # NumPy scalars by their dtype, Python scalars weak


def test_loop_tables_are_cupys():
    assert cupyx.scipy.special.erf.types == ["e->d", "f->f", "d->d"]
    assert cupyx.scipy.special.erf(cupy.zeros(2, np.float16)).dtype == np.float64
    assert cupy.exp(cupy.zeros(2, np.float16)).dtype == np.float16
    assert cupy.exp(cupy.zeros(2, np.int32)).dtype == np.float64
    with pytest.raises(TypeError, match="Wrong type"):
        cupy.invert(cupy.zeros(2, np.float32))


def test_random_takes_only_float32_and_float64():  # random/_generator.py
    rs = cupy.random.RandomState(0, method=cupy.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)
    for dtype in (np.float16, np.int32):
        with pytest.raises(TypeError, match="only supports float32 and float64"):
            rs.random_sample((2,), dtype=dtype)
    cupy.cuda.curand.setGeneratorOffset(rs._generator, 40)
    a = rs.standard_normal((5,), dtype=np.float32).get()
    cupy.cuda.curand.setGeneratorOffset(rs._generator, 40)
    assert (rs.standard_normal((5,), dtype=np.float32).get() == a).all()
    u = rs.random_sample((1000,), dtype=np.float64).get()
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.05
    eight, four = cupy.empty(8, np.uint32), cupy.empty(4, np.uint32)
    cupy.cuda.curand.setGeneratorOffset(rs._generator, 4)
    cupy.cuda.curand.generate(rs._generator, eight.data.ptr, 8)
    cupy.cuda.curand.generate(rs._generator, four.data.ptr, 4)  # goes on at offset 12
    assert len(set(eight.tolist() + four.tolist())) == 12
    cupy.cuda.curand.setGeneratorOffset(rs._generator, 8)
    cupy.cuda.curand.generate(rs._generator, four.data.ptr, 4)  # an absolute position
    assert four.tolist() == eight.tolist()[4:]


def test_integer_array_indices_wrap_instead_of_raising():  # _routines_indexing.pyx
    x = cupy.arange(5)
    assert x[cupy.asarray([1, 6, -1, 12])].tolist() == [1, 1, 4, 2]
    x[cupy.asarray([7])] = 50
    assert x.tolist() == [0, 1, 50, 3, 4]
    with pytest.raises(IndexError):
        x[7]  # an int, not an array: checked, as in CuPy
    t = cupy.zeros(3)
    cupy.add.at(t, cupy.asarray([0, 3, 3]), 1.0)
    assert t.tolist() == [3.0, 0.0, 0.0]


def test_copyto_refuses_numpy_sources():  # _manipulation/basic.py: copyto
    dst = cupy.zeros(3, np.float32)
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for copyto"):
        cupy.copyto(dst, np.ones(3, np.float32))
    cupy.copyto(dst, np.ones(1, np.float32))  # one element: taken as a scalar
    with pytest.raises(TypeError, match="Cannot cast"):
        cupy.copyto(cupy.zeros(3, np.int32), cupy.ones(3))
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        dst[...] = np.ones(3, np.float32)
    assert dst.tolist() == [1.0, 1.0, 1.0]


def test_ufunc_at_is_cupys_scatter():  # _kernel.pyx: ufunc.at; _routines_indexing.pyx
    t = cupy.zeros(3, np.float16)
    cupy.add.at(t, cupy.asarray([0, 1, 1]), np.ones(3))  # host values: core.array, cast
    assert t.dtype == np.float16 and t.tolist() == [1.0, 2.0, 0.0]
    with pytest.raises(NotImplementedError, match="multiply.at` is not supported yet"):
        cupy.multiply.at(t, cupy.asarray([0]), 2.0)
    with pytest.raises(TypeError, match="cupy.add.at only supports int32, int64, float16"):
        cupy.add.at(cupy.zeros(3, np.int8), cupy.asarray([0]), 1)
    with pytest.raises(TypeError, match="cupy.subtract.at only supports int32, uint32 "):
        cupy.subtract.at(cupy.zeros(3, np.float32), cupy.asarray([0]), 1.0)
    s = cupy.zeros(3, np.int8)
    cupy.add.at(s, slice(0, 2), 1)  # no integer-array index: the ufunc, in place
    assert s.tolist() == [1, 1, 0]


def test_scatter_add_warns_as_deprecated():  # core.pyx: ndarray.scatter_add
    with pytest.warns(DeprecationWarning, match="use `cupy.add.at`"):
        cupyx.scatter_add(cupy.zeros(2), cupy.asarray([0]), 1.0)


def test_arrays_come_from_the_installed_allocator_with_guard_zones():
    asked = []

    def allocator(nbytes):
        asked.append(nbytes)
        return cupy.cuda.MemoryPointer(cupy.cuda.Memory(nbytes + 64), 0)
    previous = cupy.cuda.get_allocator()
    cupy.cuda.set_allocator(allocator)
    try:
        x = cupy.ones((3, 4), np.float32) * 2
        y = x.sum(axis=0)
    finally:
        cupy.cuda.set_allocator(previous)
    assert 48 in asked and 16 in asked and len(asked) >= 3
    raw = _memory.find(y.data.ptr)
    assert raw.tail == 16 and raw.size == 80
    zone = raw.region(16, 80)
    assert np.isnan(zone.view(np.float32)).all()  # what a kernel reading past y would see


def test_two_devices_and_the_current_one():  # cuda/device.pyx, _kernel.pyx
    assert cupy.cuda.runtime.getDeviceCount() == 2
    with cupy.cuda.Device(1):
        b = cupy.ones(3)
        assert cupy.cuda.runtime.getDevice() == 1 and b.device.id == 1
        assert cupy.asarray(cupy.zeros(2)).device.id == 1
    a = cupy.ones(3)
    assert cupy.cuda.runtime.getDevice() == 0 and a.device.id == 0
    with pytest.raises(ValueError, match=r"resides \(1\) is different from the current device "
                                         r"\(0\). Peer access is unavailable"):
        a + b
    assert cupy.asarray(b).device.id == 0  # asarray copies to the current device
    c = b.copy()
    assert c.device.id == 0
    with cupy.cuda.Device(1):
        s = cupy.cuda.Stream(non_blocking=True)
    with pytest.raises(RuntimeError, match=r"created on \(1\) does not match with the current "
                                           r"device \(0\)"):
        with s:
            pass
    with pytest.raises(CUDARuntimeError, match="cudaErrorInvalidDevice"):
        with cupy.cuda.Device(2):
            pass


def test_capture_records_work_and_replays_it_on_poisoned_outputs():
    x = cupy.arange(4, dtype=np.float32)
    s = cupy.cuda.Stream(non_blocking=True)
    with s:
        s.begin_capture()
        y = x * 2          # recorded, not run: y holds the poison
        z = y + 1
        g = s.end_capture()
    assert np.isnan(z.get()).all()
    g.launch()
    assert z.tolist() == [1, 3, 5, 7]
    x += 10               # the graph reads x at each replay
    z.fill(0)
    g.launch()
    assert z.tolist() == [21, 23, 25, 27]


def test_capture_refuses_host_syncs_and_reports_the_invalidation():
    s = cupy.cuda.Stream(non_blocking=True)
    x = cupy.ones(2)
    with s:
        s.begin_capture()
        with pytest.raises(CUDARuntimeError, match="cudaErrorStreamCaptureUnsupported"):
            x.sum().item()
        with pytest.raises(CUDARuntimeError, match="cudaErrorStreamCaptureInvalidated"):
            s.end_capture()
    with pytest.raises(RuntimeError, match="legacy"):
        cupy.cuda.Stream.null.begin_capture()


def test_a_host_to_device_copy_in_a_capture_reads_a_reused_staging_buffer():
    """CuPy stages host data in pinned memory that it gives back once the copy is done:
    a graph's copy reads whatever the buffer holds by then (poison here). A 0-d value is
    a fill kernel's argument, which the graph keeps."""
    host = np.arange(3, dtype=np.float32)
    s = cupy.cuda.Stream(non_blocking=True)
    with s:
        s.begin_capture()
        d, scalar = cupy.asarray(host), cupy.asarray(np.float32(7))
        g = s.end_capture()
    g.launch()
    assert np.isnan(d.get()).all() and scalar.item() == 7


def test_cudafree_during_a_capture_invalidates_it():
    s = cupy.cuda.Stream(non_blocking=True)
    mem = cupy.cuda.Memory(1024)
    with s:
        s.begin_capture()
        with pytest.warns(RuntimeWarning, match="cudaFree during a stream capture"):
            del mem
        with pytest.raises(CUDARuntimeError, match="Invalidated"):
            s.end_capture()


def test_memory_runs_out_as_cudamalloc_does():
    with pytest.raises(CUDARuntimeError, match="cudaErrorMemoryAllocation") as e:
        cupy.cuda.Memory(8 << 30)
    assert e.value.status == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cupy.cuda.Memory(1 << 20)  # and freeing outside a capture says nothing
