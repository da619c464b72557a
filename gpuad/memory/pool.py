"""The caching allocator: one pool of raw blocks per device, whatever the raw allocator.

The raw allocator is injected: ``raw_malloc(nbytes) -> raw``, ``raw_free(raw)`` (or None
when dropping the raw object frees it) and the exception raised when memory runs out, so
the pool logic is the same on every device and is tested on CPU with a fake one. Requests
are rounded up to a size class; a freed block goes back to its class's free list and
serves the next request of that class, so a training step that repeats the same shapes
is served entirely from the cache.

Reuse is stream-ordered, as in CuPy's pool: a block is lent to the stream current at the
request (``stream()``, injected; the CPU has one) and, freed, serves only later requests
on that stream, which run after whatever the block's last tenant queued there. Another
stream gets it only once ``empty_cache`` has given it back (cudaFree waits for the
device). As in CuPy, an array used on a stream other than the one it was made on must be
kept alive until that stream is done with it. While a graph capture is open on the device
(``capturing()``, injected, or a private section), nothing is given back: a cudaFree
would invalidate the capture.
"""
import contextlib
import threading

MIN_BLOCK = 512           # bytes; also the rounding step below LARGE (CuPy's alignment)
LARGE = 1 << 20           # from here on, 4 size classes per power of two (waste < 25%)


def round_size(nbytes):
    """The size class (bytes) a request of ``nbytes`` is served from."""
    if nbytes <= MIN_BLOCK:
        return MIN_BLOCK
    step = MIN_BLOCK if nbytes < LARGE else 1 << (nbytes.bit_length() - 3)
    return -(-nbytes // step) * step


def format_bytes(n):
    """``1536`` -> ``'1.50 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024


class OutOfMemoryError(MemoryError):
    """A device ran out of memory even after gpuad's pool gave its cache back."""

    def __init__(self, device, requested, allocated, cached, capturing=False):
        self.device, self.requested = device, requested
        self.allocated, self.cached = allocated, cached
        kept = ("kept: a CUDA graph capture is open on the device, and giving memory back "
                "would invalidate it") if capturing else "given back, then retried once"
        super().__init__(
            f"{device} out of memory: tried to allocate {format_bytes(requested)}; "
            f"{format_bytes(allocated)} is in use by tensors and {format_bytes(cached)} "
            f"was cached by gpuad's pool ({kept}). Free tensors you "
            "no longer need (del them; keep loss.item() rather than the loss tensor), call "
            "gpuad.memory.empty_cache(), use a smaller batch, or wrap parts of the model in "
            "gpuad.checkpoint to trade compute for activation memory")


class Block:
    """A raw allocation of ``size`` bytes that the pool lends out and takes back;
    ``owner`` is the private pool it belongs to (None: the shared one)."""

    __slots__ = ("size", "raw", "owner", "stream")

    def __init__(self, size, raw, owner=None, stream=None):
        self.size, self.raw, self.owner = size, raw, owner
        self.stream = stream  # the stream it is lent on, and reused on once freed


class PrivatePool:
    """Blocks lent while a CUDA graph was captured. The graph keeps using their addresses
    at every replay, so once freed they serve only later requests made inside the same
    private section, never the rest of the program, until ``CachingAllocator.close``."""

    def __init__(self):
        self.free = {}   # size class -> blocks ready for reuse inside the section
        self.closed = False


class CachingAllocator:
    """Lends blocks of rounded sizes and keeps freed ones for reuse.

    >>> pool = CachingAllocator("cpu", bytearray)
    >>> b = pool.malloc(1000); pool.free(b); pool.malloc(900) is b
    True
    """

    def __init__(self, device, raw_malloc, raw_free=None, oom_error=MemoryError,
                 stream=None, capturing=None):
        self.device = str(device)
        self._raw_malloc, self._raw_free, self._oom_error = raw_malloc, raw_free, oom_error
        self._stream = stream          # () -> the current stream's identity; None: one stream
        self._capturing = capturing    # () -> whether the current stream captures a graph
        #: False: every free goes straight back to the raw allocator (nothing is cached).
        self.caching = True
        self._free = {}   # stream -> {size class -> blocks ready for reuse on it}
        #: thread id -> the PrivatePool serving that thread's requests now (a CUDA graph
        #: capture): other threads' arrays never take a block a graph writes to
        self._private = {}
        # re-entrant: a block freed by a destructor that runs during malloc (GC) comes back
        self._lock = threading.RLock()
        self.allocated = self.cached = self.peak = 0
        self.raw_alloc_calls = self.raw_free_calls = self.hits = self.misses = 0

    def malloc(self, nbytes):
        """A block of at least ``nbytes``: from the cache when one of its class is free,
        else from the raw allocator (after giving the cache back once if memory is out)."""
        if nbytes < 0:
            raise ValueError(f"cannot allocate a negative number of bytes ({nbytes})")
        size = round_size(nbytes)
        stream = None if self._stream is None else self._stream()
        with self._lock:
            private = self._private.get(threading.get_ident()) if self._private else None
            free = self._free.get(stream) if private is None else private.free
            blocks = free.get(size) if free else None
            if blocks:
                block = blocks.pop()
                self.cached -= size
                self.hits += 1
            else:
                block = Block(size, self._raw(size, nbytes), private, stream)
                self.misses += 1
            self.allocated += size
            if self.allocated > self.peak:
                self.peak = self.allocated
            return block

    def _raw(self, size, nbytes):
        try:
            raw = self._raw_malloc(size)
        except self._oom_error:
            cached = self.cached
            if self.capture_open():  # no cudaFree now: out of memory, as it stands
                raise OutOfMemoryError(self.device, nbytes, self.allocated, cached,
                                       capturing=True) from None
            self.empty_cache()
            try:
                raw = self._raw_malloc(size)
            except self._oom_error:
                raise OutOfMemoryError(self.device, nbytes, self.allocated, cached) from None
        self.raw_alloc_calls += 1
        return raw

    def free(self, block):
        """Take ``block`` back: cached for reuse (or released when caching is off)."""
        with self._lock:
            self.allocated -= block.size
            owner = block.owner
            if owner is not None and not owner.closed:
                owner.free.setdefault(block.size, []).append(block)
                self.cached += block.size
            elif self.caching or self.capture_open():  # no cudaFree during a capture
                self._free.setdefault(block.stream, {}).setdefault(block.size, []).append(block)
                self.cached += block.size
            else:
                self._release(block)

    @contextlib.contextmanager
    def private(self, pool):
        """Serve every request of the calling thread in this block from (and return every
        block it lends to) the PrivatePool ``pool``: what a CUDA graph captured here uses
        stays its own."""
        me = threading.get_ident()
        with self._lock:
            if me in self._private:
                raise RuntimeError("a private section of the pool is already open")
            self._private[me] = pool
        try:
            yield pool
        finally:
            with self._lock:
                del self._private[me]

    def close(self, pool):
        """The graph that used ``pool`` is gone: its blocks join the shared pool, reused
        on the stream current now (call it where the graph was launched)."""
        stream = None if self._stream is None else self._stream()
        with self._lock:
            pool.closed = True
            free, pool.free = pool.free, {}
            for size, blocks in free.items():
                for block in blocks:
                    block.owner, block.stream = None, stream
                if self.caching:
                    self._free.setdefault(stream, {}).setdefault(size, []).extend(blocks)
                else:
                    self.cached -= size * len(blocks)
                    for block in blocks:
                        self._release(block)

    def capture_open(self):
        """Whether a graph capture is open on the device (a private section, or the
        current stream capturing): no block may be given back to the device then."""
        return bool(self._private) or (self._capturing is not None and self._capturing())

    def empty_cache(self):
        """Give every cached block of the shared pool back to the raw allocator (those a
        graph's private section holds stay until it closes); nothing while a capture is
        open on the device (a cudaFree would invalidate it)."""
        with self._lock:
            if self.capture_open():
                return
            cached, self._free = self._free, {}
            for by_size in cached.values():
                for size, blocks in by_size.items():
                    self.cached -= size * len(blocks)
                    for block in blocks:
                        self._release(block)

    def _release(self, block):
        if self._raw_free is not None:
            self._raw_free(block.raw)
        block.raw = None
        self.raw_free_calls += 1

    def reset_peak(self):
        """Start tracking the peak again from what is allocated now."""
        self.peak = self.allocated

    def stats(self):
        """Counters and byte totals (see ``gpuad.memory.stats``)."""
        with self._lock:
            return {"allocated_bytes": self.allocated,
                    "reserved_bytes": self.allocated + self.cached,
                    "peak_allocated_bytes": self.peak,
                    "raw_alloc_calls": self.raw_alloc_calls,
                    "raw_free_calls": self.raw_free_calls,
                    "pool_hits": self.hits, "pool_misses": self.misses}
