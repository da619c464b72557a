"""The caching allocator's logic on a fake raw allocator, the CPU pool's reclaim, and the
CuPy glue on a fake CuPy."""
import importlib
import sys
import types

import numpy as np
import pytest

import gpuad
from gpuad.backends import backend_for
from gpuad.memory import CachingAllocator, OutOfMemoryError, round_size
from conftest import MODE


class FakeOOM(Exception):
    pass


class FakeRaw:
    """A raw allocator with a fixed capacity that records its calls."""

    def __init__(self, capacity=1 << 30):
        self.capacity, self.used, self.mallocs, self.frees = capacity, 0, [], []

    def malloc(self, n):
        if self.used + n > self.capacity:
            raise FakeOOM(n)
        self.used += n
        self.mallocs.append(n)
        return ("raw", len(self.mallocs), n)

    def free(self, raw):
        self.used -= raw[2]
        self.frees.append(raw)


def make_pool(capacity=1 << 30):
    raw = FakeRaw(capacity)
    return CachingAllocator("fake:0", raw.malloc, raw.free, FakeOOM), raw


@pytest.mark.parametrize("n,size", [(0, 512), (1, 512), (512, 512), (513, 1024),
                                    (1000, 1024), ((1 << 20) - 1, 1 << 20),
                                    (1 << 20, 1 << 20), ((1 << 20) + 1, 5 << 18),
                                    (3_211_264, 7 << 19), (4 << 20, 4 << 20)])
def test_round_size(n, size):
    assert round_size(n) == size


def test_rounding_wastes_under_a_quarter():
    for n in np.unique(np.geomspace(600, 1 << 31, 500).astype(np.int64)).tolist():
        assert n <= round_size(n) < 1.25 * n + 512


def test_freed_block_is_reused_for_its_size_class():
    pool, raw = make_pool()
    a = pool.malloc(1000)
    pool.free(a)
    b = pool.malloc(900)          # same class (1024): served from the cache
    assert b is a and raw.mallocs == [1024]
    c = pool.malloc(3000)         # another class: a new raw block
    assert c is not a and raw.mallocs == [1024, 3072]
    s = pool.stats()
    assert (s["pool_hits"], s["pool_misses"], s["raw_alloc_calls"]) == (1, 2, 2)


def test_private_section_keeps_its_blocks_until_closed():
    """What a CUDA graph captured uses is reused inside its capture only, and joins the
    shared pool when the graph goes."""
    from gpuad.memory.pool import PrivatePool
    pool, raw = make_pool()
    shared = pool.malloc(1000)
    pool.free(shared)
    private = PrivatePool()
    with pool.private(private):
        a = pool.malloc(1000)            # not the shared cached block
        assert a is not shared and a.owner is private
        pool.free(a)
        b = pool.malloc(1000)            # reused inside the section
        assert b is a
        pool.free(b)
        with pytest.raises(RuntimeError, match="already open"):
            with pool.private(PrivatePool()):
                pass
    c = pool.malloc(1000)                # outside: the shared block, never the private one
    assert c is shared
    pool.free(c)
    assert pool.malloc(1000) is shared and pool.stats()["reserved_bytes"] == 2048
    pool.close(private)
    d = pool.malloc(1000)                # closed: its block serves everyone
    assert d is a and d.owner is None and raw.mallocs == [1024, 1024]
    assert pool.stats()["allocated_bytes"] == 2048


def test_empty_cache_leaves_a_private_sections_blocks_counted():
    """empty_cache gives back the shared cache only: what a graph's section holds stays
    cached (and counted) until the section closes; the stats never go negative."""
    from gpuad.memory.pool import PrivatePool
    pool, raw = make_pool()
    pool.free(pool.malloc(5000))                    # a shared cached block
    private = PrivatePool()
    with pool.private(private):
        pool.free(pool.malloc(1000))                # cached in the section
    pool.empty_cache()
    assert raw.frees and pool.stats()["reserved_bytes"] == 1024
    pool.close(private)
    block = pool.malloc(1000)                       # the section's block, now shared
    assert len(raw.mallocs) == 2
    s = pool.stats()
    assert (s["allocated_bytes"], s["reserved_bytes"]) == (1024, 1024)
    pool.free(block)
    pool.empty_cache()
    assert pool.stats()["reserved_bytes"] == 0 and raw.used == 0


class Streams:
    """The current stream and whether it captures, as the pool asks for them."""

    def __init__(self):
        self.current, self.capturing = "null", False


def make_stream_pool(capacity=1 << 30):
    raw, streams = FakeRaw(capacity), Streams()
    pool = CachingAllocator("fake:0", raw.malloc, raw.free, FakeOOM,
                            stream=lambda: streams.current, capturing=lambda: streams.capturing)
    return pool, raw, streams


def test_a_freed_block_is_reused_on_its_own_stream_only():
    pool, raw, streams = make_stream_pool()
    a = pool.malloc(1000)
    pool.free(a)
    streams.current = "side"
    b = pool.malloc(1000)           # another stream: a's last use may still be queued
    assert b is not a and raw.mallocs == [1024, 1024]
    pool.free(b)
    assert pool.malloc(1000) is b   # its own stream: at once, in stream order
    streams.current = "null"
    assert pool.malloc(1000) is a
    assert pool.stats()["reserved_bytes"] == 2048


def test_nothing_is_given_back_while_a_capture_is_open():
    """A cudaFree while a graph is captured on the device invalidates the capture: the
    out-of-memory retry and empty_cache keep the cache then."""
    from gpuad.memory.pool import PrivatePool
    pool, raw, streams = make_stream_pool(capacity=8 << 20)
    pool.free(pool.malloc(6 << 20))
    streams.capturing = True
    with pytest.raises(OutOfMemoryError, match="capture is open on the device"):
        pool.malloc(4 << 20)
    pool.empty_cache()
    assert raw.frees == [] and pool.stats()["reserved_bytes"] == 6 << 20
    streams.capturing = False
    with pool.private(PrivatePool()):   # gpuad's own capture, in any thread
        pool.empty_cache()
        assert raw.frees == []
    pool.malloc(4 << 20)                # no capture: the cache is given back, then retried
    assert len(raw.frees) == 1


def test_stats_and_peak():
    pool, raw = make_pool()
    a, b = pool.malloc(1 << 20), pool.malloc(2 << 20)
    assert pool.stats()["allocated_bytes"] == 3 << 20
    pool.free(b)
    s = pool.stats()
    assert s["allocated_bytes"] == 1 << 20
    assert s["reserved_bytes"] == 3 << 20        # the freed block stays cached
    assert s["peak_allocated_bytes"] == 3 << 20
    pool.reset_peak()
    assert pool.stats()["peak_allocated_bytes"] == 1 << 20
    pool.empty_cache()
    s = pool.stats()
    assert s["reserved_bytes"] == 1 << 20 and s["raw_free_calls"] == 1
    assert raw.used == 1 << 20
    pool.free(a)
    assert pool.stats()["allocated_bytes"] == 0


def test_caching_off_frees_right_away():
    pool, raw = make_pool()
    pool.caching = False
    pool.free(pool.malloc(4096))
    assert raw.used == 0 and len(raw.frees) == 1
    assert pool.stats()["reserved_bytes"] == 0


def test_steady_pattern_is_served_from_cache():
    pool, raw = make_pool()
    sizes = [4 << 20, 4 << 20, 40_000, 3_211_264, 128]
    for _ in range(50):
        blocks = [pool.malloc(n) for n in sizes]
        for b in reversed(blocks):
            pool.free(b)
    assert len(raw.mallocs) == len(sizes)
    assert pool.stats()["pool_hits"] == 49 * len(sizes)


def test_out_of_memory_flushes_the_cache_and_retries():
    pool, raw = make_pool(capacity=8 << 20)
    pool.free(pool.malloc(6 << 20))       # 6 MiB cached, nothing in use
    b = pool.malloc(4 << 20)              # fails raw, cache given back, retry fits
    assert raw.frees and raw.used == 4 << 20 and b.size == 4 << 20
    assert pool.stats()["reserved_bytes"] == 4 << 20


def test_out_of_memory_error_names_sizes_device_and_fixes():
    pool, raw = make_pool(capacity=8 << 20)
    keep = pool.malloc(5 << 20)
    pool.free(pool.malloc(1 << 20))
    with pytest.raises(OutOfMemoryError) as err:
        pool.malloc(6 << 20)
    e = err.value
    assert (e.device, e.requested, e.allocated, e.cached) == ("fake:0", 6 << 20, 5 << 20,
                                                              1 << 20)
    text = str(e)
    for part in ("fake:0 out of memory", "6.00 MiB", "5.00 MiB", "1.00 MiB", "empty_cache",
                 "smaller batch", "del"):
        assert part in text
    assert isinstance(e, MemoryError)
    pool.free(keep)


def test_negative_size_is_refused():
    pool, _ = make_pool()
    with pytest.raises(ValueError, match="negative"):
        pool.malloc(-1)


@pytest.fixture
def cpu_pool():
    pool = backend_for("cpu").pool
    min_bytes = pool.min_bytes
    gpuad.memory.set_caching(True, "cpu")
    yield pool
    gpuad.memory.set_caching(False, "cpu")
    pool.min_bytes = min_bytes


def test_cpu_pool_lends_views_and_reclaims_unreferenced_blocks(cpu_pool):
    backend = backend_for("cpu")
    before = gpuad.memory.stats("cpu")
    a = backend.empty((512, 1024), np.float32)                 # 2 MiB: pooled
    assert a.shape == (512, 1024) and a.dtype == np.float32 and a.base is not None
    assert gpuad.memory.memory_allocated("cpu") == before["allocated_bytes"] + (2 << 20)
    a_t = a.T                                                  # a view keeps the block
    del a
    b = backend.empty((1024, 512), np.float32)
    assert not np.shares_memory(a_t, b)
    del a_t, b
    c = backend.empty((2 << 20,), np.uint8)                    # both blocks free again
    s = gpuad.memory.stats("cpu")
    assert s["raw_alloc_calls"] - before["raw_alloc_calls"] == 2
    assert s["pool_hits"] - before["pool_hits"] == 1
    del c
    assert gpuad.memory.memory_allocated("cpu") == before["allocated_bytes"]


def test_cpu_pool_leaves_small_arrays_and_disabled_pool_to_numpy(cpu_pool):
    backend = backend_for("cpu")
    small = backend.empty((8, 8), np.float64)
    assert small.base is None
    gpuad.memory.set_caching(False, "cpu")
    big = backend.empty((1024, 1024), np.float32)
    assert big.base is None


def test_set_caching_wants_a_bool():
    with pytest.raises(TypeError, match="True or False"):
        gpuad.memory.set_caching("yes", "cpu")


class FakeCUDAError(Exception):
    def __init__(self, status):
        self.status = status


@pytest.fixture
def cuda_glue(monkeypatch):
    """gpuad.memory.cuda_pool imported against a fake CuPy (the CuPy API it relies on)."""
    installed, capacity = {}, {"left": 8 << 20}

    class Memory:                       # cudaMalloc, raising as CuPy does when memory is out
        def __init__(self, n):
            if n > capacity["left"]:
                raise FakeCUDAError(2)
            capacity["left"] -= n
            self.ptr, self.size = id(self), n

    class UnownedMemory:
        def __init__(self, ptr, size, owner, device_id):
            self.ptr, self.size, self._owner, self.device_id = ptr, size, owner, device_id

    class MemoryPointer:
        def __init__(self, mem, offset):
            self.mem, self.ptr = mem, mem.ptr + offset

    runtime = types.SimpleNamespace(getDevice=lambda: 0, CUDARuntimeError=FakeCUDAError)
    null_stream = types.SimpleNamespace(ptr=0, is_capturing=lambda: False)
    cuda = types.SimpleNamespace(Memory=Memory, UnownedMemory=UnownedMemory,
                                 MemoryPointer=MemoryPointer, runtime=runtime,
                                 get_current_stream=lambda: null_stream,
                                 set_allocator=lambda f: installed.update(f=f),
                                 get_allocator=lambda: installed.get("f"))
    pool_of_cupy = types.SimpleNamespace(free_all_blocks=lambda: installed.update(freed=1))
    fake = types.SimpleNamespace(cuda=cuda, get_default_memory_pool=lambda: pool_of_cupy)
    name = "gpuad.memory.cuda_pool"
    real = sys.modules.pop(name, None)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    try:
        yield importlib.import_module(name), installed
    finally:  # the real glue back, or none: `from ..memory import cuda_pool` reads both
        sys.modules.pop(name, None)
        gpuad.memory.__dict__.pop("cuda_pool", None)
        if real is not None:
            sys.modules[name] = gpuad.memory.cuda_pool = real


def test_cuda_glue_lends_blocks_back_when_cupy_drops_them(cuda_glue):
    cuda_pool, installed = cuda_glue
    pool = cuda_pool.install(0)
    allocate = installed["f"]
    assert installed["freed"] and cuda_pool.install(0) is pool
    ptr = allocate(1000)
    assert ptr.mem.size == 1024 and ptr.mem.device_id == 0
    assert pool.stats()["allocated_bytes"] == 1024
    first = ptr.ptr
    del ptr                              # CuPy dropped its last pointer: the block is back
    assert pool.stats()["allocated_bytes"] == 0 and pool.stats()["reserved_bytes"] == 1024
    assert allocate(900).ptr == first    # and serves the next request of its class
    keep = allocate(6 << 20)
    with pytest.raises(OutOfMemoryError, match="cuda:0 out of memory"):
        allocate(4 << 20)
    del keep


def test_cpu_pool_serves_matmul_outputs_and_their_gradients_stay_uncopied(cpu_pool):
    """With the CPU pool on, matmul results come from it, and backward keeps a leaf's
    gradient that is alone on its block (no copy), while a view of another array is still
    copied into a .grad of its own."""
    x = gpuad.randn(512, 256, requires_grad=True)
    w = gpuad.randn(256, 512, requires_grad=True)
    y = x @ w
    assert cpu_pool.sole_view(y._data)
    (y * 1.0).sum().backward()
    gx = x.grad._data
    assert cpu_pool.sole_view(gx), "the pooled gradient was copied"
    np.testing.assert_allclose(gx, np.ones((512, 512), np.float32) @ w.detach().numpy().T,
                               rtol=1e-4, atol=1e-3)
    other = gx.reshape(-1)                       # a second view of the same block
    assert not cpu_pool.sole_view(gx) and not cpu_pool.sole_view(other)
    del other
    assert cpu_pool.sole_view(gx)
    g = gpuad.ones(512, 256)
    z = x.detach().requires_grad_()
    z.reshape(-1).backward(g.reshape(-1))        # the leaf's gradient is a view of g
    assert not np.shares_memory(z.grad._data, g._data)


@pytest.mark.skipif(MODE != "emulated", reason="sizes the emulated device's memory")
def test_cuda_pool_reuses_in_stream_order_and_keeps_a_capture_valid(monkeypatch):
    """On the emulated GPU: a block freed on one stream is not lent to another; an
    out-of-memory request inside a capture raises, where a cudaFree would invalidate it."""
    import cupy
    from emulated.fake_cupy import _device
    x = gpuad.ones(12345, device="cuda")
    first = x.data.data.ptr
    del x
    with cupy.cuda.Stream(non_blocking=True):
        y = gpuad.ones(12345, device="cuda")
    assert y.data.data.ptr != first   # the null stream's block is not lent to the side one
    assert gpuad.ones(12345, device="cuda").data.data.ptr == first
    del y
    with cupy.cuda.Device(1):
        side = cupy.cuda.Stream(non_blocking=True)
    monkeypatch.setattr(_device, "TOTAL_MEMORY", (_device.TOTAL_MEMORY[0], 48 << 20))
    gpuad.memory.empty_cache("cuda:1")
    del_me = gpuad.empty(8 << 20, device="cuda:1")   # 32 MiB, cached once dropped
    del del_me
    with cupy.cuda.Device(1):
        with side:
            side.begin_capture()
            with pytest.raises(OutOfMemoryError, match="capture is open"):
                gpuad.empty(6 << 20, device="cuda:1")
            side.end_capture()                        # not invalidated: nothing was freed
    assert gpuad.empty(6 << 20, device="cuda:1").numel() == 6 << 20  # after: freed, retried
