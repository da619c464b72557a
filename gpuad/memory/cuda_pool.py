"""CuPy glue: gpuad's caching allocator installed as CuPy's allocator.

Once installed, every CuPy array (gpuad's or not) is carved from a pool block, lent to
CuPy as ``UnownedMemory`` whose owner, a ``_Lease``, hands the block back to the pool
when CuPy drops its last pointer to it. Blocks are tagged with the stream current at the
request (``with cupy.cuda.Stream():`` included) and reused on that stream only, as CuPy's
own pool does (``pool.py``). Imported only by the CUDA backend, so CPU installs never
need CuPy.
"""
import cupy

from .pool import CachingAllocator

_CUDA_ERROR_MEMORY_ALLOCATION = 2   # cudaErrorMemoryAllocation
_pools = {}   # CUDA device id -> CachingAllocator


def _raw_malloc(nbytes):
    try:
        return cupy.cuda.Memory(nbytes)  # cudaMalloc; cudaFree when the pool drops it
    except cupy.cuda.runtime.CUDARuntimeError as e:
        if e.status != _CUDA_ERROR_MEMORY_ALLOCATION:
            raise
        raise MemoryError(str(e)) from None


class _Lease:
    """Owner of one lent block: CuPy keeps it alive while any array uses the block."""

    __slots__ = ("pool", "block")

    def __init__(self, pool, block):
        self.pool, self.block = pool, block

    def __del__(self):
        self.pool.free(self.block)


def pool_for(device_id):
    """The pool of GPU ``device_id`` (created on first use)."""
    pool = _pools.get(device_id)
    if pool is None:  # setdefault is atomic: two threads asking first share one pool
        pool = _pools.setdefault(device_id, CachingAllocator(
            f"cuda:{device_id}", _raw_malloc, stream=_current_stream, capturing=_capturing))
    return pool


def _current_stream():
    return cupy.cuda.get_current_stream().ptr


def _capturing():
    return cupy.cuda.get_current_stream().is_capturing()


def _allocate(nbytes):
    """CuPy's allocator interface: ``nbytes`` -> ``MemoryPointer`` on the current GPU."""
    device_id = cupy.cuda.runtime.getDevice()
    pool = pool_for(device_id)
    block = pool.malloc(nbytes)
    mem = cupy.cuda.UnownedMemory(block.raw.ptr, block.size, _Lease(pool, block), device_id)
    return cupy.cuda.MemoryPointer(mem, 0)


def install(device_id):
    """Make gpuad's pool CuPy's allocator (once); returns the pool of GPU ``device_id``."""
    if cupy.cuda.get_allocator() is not _allocate:
        cupy.cuda.set_allocator(_allocate)
        # CuPy's own pool gets no new arrays now: give back what it has cached
        cupy.get_default_memory_pool().free_all_blocks()
    return pool_for(device_id)
