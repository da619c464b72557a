"""NumPy glue: large uninitialised arrays lent from the caching allocator.

A raw block is a uint8 NumPy array kept by the pool; the array lent out is a view of it,
and so is every array derived from that one (slices, reshapes, transposes: NumPy points
their ``base`` at the block). A block is free again once nothing but the pool references
it, which is checked lazily: at the next request of its size class, and before stats or
``empty_cache``.
"""
import math
import sys
import threading

import numpy as np

from .pool import CachingAllocator, round_size

#: Arrays smaller than this come straight from NumPy, whose allocator is cheaper for them.
MIN_POOLED_BYTES = 256 << 10


def _raw_malloc(nbytes):
    return np.empty(nbytes, np.uint8)


class CPUPool:
    """``empty(shape, dtype)`` for the CPU backend: pooled when ``caching``, else NumPy's.

    Off by default: glibc already recycles NumPy's freed memory (an M training step
    page-faults 0 times without the pool), and serving the step's matmul outputs from it
    measured within noise of NumPy's allocator (``benchmarks/NOTES.md`` 14). On, the CPU
    backend's 2-D matmul results come from it.
    """

    def __init__(self, device, min_bytes=MIN_POOLED_BYTES):
        self.allocator = CachingAllocator(device, _raw_malloc)
        self.allocator.caching = False
        self.min_bytes = min_bytes
        self._lent = {}   # size class -> blocks lent out
        self._raws = set()  # id of each lent block's raw array
        self._lock = threading.Lock()

    @property
    def caching(self):
        return self.allocator.caching

    @caching.setter
    def caching(self, enabled):
        self.allocator.caching = enabled

    def empty(self, shape, dtype):
        """An uninitialised array of ``shape`` and ``dtype``."""
        if not self.allocator.caching:
            return np.empty(shape, dtype)
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < self.min_bytes:
            return np.empty(shape, dtype)
        with self._lock:
            lent = self._lent.setdefault(round_size(nbytes), [])
            self._reclaim(lent)
            block = self.allocator.malloc(nbytes)
            lent.append(block)
            self._raws.add(id(block.raw))
        return block.raw[:nbytes].view(dtype).reshape(shape)

    def sole_view(self, arr):
        """Whether ``arr`` lies on a block this pool lent and no other array views that
        block: its memory is its own, as an array NumPy allocated would be."""
        # 3 references: the block's, arr.base and getrefcount's argument
        return id(arr.base) in self._raws and sys.getrefcount(arr.base) == 3

    def collect(self):
        """Take back every lent block that no array references any more."""
        with self._lock:
            for lent in self._lent.values():
                self._reclaim(lent)

    def _reclaim(self, lent):
        kept = []
        for block in lent:
            # 2 references: the block's own and getrefcount's argument; more are views
            if sys.getrefcount(block.raw) > 2:
                kept.append(block)
            else:
                self._raws.discard(id(block.raw))
                self.allocator.free(block)
        lent[:] = kept

    # --- the allocator's interface, on what the arrays still reference ----------------
    def stats(self):
        self.collect()
        return self.allocator.stats()

    def reset_peak(self):
        self.collect()
        self.allocator.reset_peak()

    def empty_cache(self):
        self.collect()
        self.allocator.empty_cache()
