"""Device memory of the emulated GPUs: ``Memory`` (cudaMalloc), ``UnownedMemory``,
``MemoryPointer``, the allocator hook (``alloc``, ``set_allocator``) and CuPy's default
``MemoryPool``.

A device allocation is host memory at an address that serves as the device pointer, with
guard zones of ``GUARD`` bytes on both sides. New memory, the guard zones, and the slack
between an array's end and the end of the block an allocator lent it are all 0xFF bytes
(NaN in float and double, -1 in integers), so a kernel that reads past an array reads NaN,
and one that writes past it is caught by ``check_guards`` after the launch.
"""
import bisect
import ctypes
import itertools

import numpy as np

from . import _device
from ._device import CUDARuntimeError

GUARD = 256
FILL = 0xFF
_ALIGN = 256  # cudaMalloc's alignment

_starts = []    # sorted device pointers of live allocations
_by_start = {}  # device pointer -> _Raw
_used = [0] * _device.DEVICE_COUNT


class _Raw:
    """One cudaMalloc: ``size`` bytes at ``ptr`` inside the host buffer ``buf``."""

    __slots__ = ("buf", "base", "ptr", "size", "device_id", "tail", "__weakref__")

    def __init__(self, size, device_id):
        self.buf = np.full(size + 2 * GUARD + _ALIGN, FILL, np.uint8)
        self.base = self.buf.ctypes.data
        self.ptr = -(-(self.base + GUARD) // _ALIGN) * _ALIGN
        self.size, self.device_id = size, device_id
        self.tail = size  # where the zone checked as guard starts (an array's end)

    def region(self, start, stop):
        """The bytes [start, stop) relative to ``ptr``, as a uint8 view."""
        off = self.ptr - self.base
        return self.buf[off + start:off + stop]

    def guard_zones(self):
        """(where, first byte relative to ptr, bytes) of the zones a kernel given this
        allocation must leave alone: before it, and past the tenant array's end."""
        off = self.ptr - self.base
        return [("before its start", -GUARD, self.buf[off - GUARD:off]),
                ("past its end", self.tail, self.buf[off + self.tail:off + self.size + GUARD])]

    def snapshot(self):
        return [zone.copy() for _, _, zone in self.guard_zones()]

    def damage(self, before):
        """None, or (where, first, last): the bytes of the guard zones that changed since
        ``before`` (a ``snapshot``). Compared, not checked against the fill byte: inside
        a CUDA graph a block's slack may hold an earlier tenant's data, legitimately."""
        for (where, first, zone), old in zip(self.guard_zones(), before):
            bad = np.flatnonzero(zone != old)
            if bad.size:
                return where, first + int(bad[0]), first + int(bad[-1])
        return None


def malloc(size, device_id):
    if _used[device_id] + size > _device.TOTAL_MEMORY[device_id]:
        raise CUDARuntimeError(2, f"cudaMalloc of {size} bytes on device {device_id}")
    raw = _Raw(size, device_id)
    _used[device_id] += size
    bisect.insort(_starts, raw.ptr)
    _by_start[raw.ptr] = raw
    return raw


def free(raw):
    _device.free_during_capture(raw.device_id)
    _starts.pop(bisect.bisect_left(_starts, raw.ptr))
    del _by_start[raw.ptr]
    _used[raw.device_id] -= raw.size
    raw.buf.fill(FILL)  # a graph or view still reading it reads NaN


def used_bytes(device_id):
    return _used[device_id]


def find(ptr):
    """The live allocation holding device address ``ptr``, or None."""
    i = bisect.bisect_right(_starts, ptr) - 1
    if i >= 0:
        raw = _by_start[_starts[i]]
        if ptr < raw.ptr + max(raw.size, 1):
            return raw
    return None


def host_view(ptr, shape, dtype, strides=None):
    """A NumPy view of device memory at ``ptr``."""
    dtype = np.dtype(dtype)
    if ptr == 0:
        return np.ndarray(shape, dtype, buffer=np.empty(0, np.uint8), strides=strides)
    raw = find(ptr)
    if raw is None:
        raise CUDARuntimeError(700, f"address {ptr:#x} is not in any live device allocation")
    return np.ndarray(shape, dtype, buffer=raw.buf, offset=ptr - raw.base, strides=strides)


def poison(ptr, nbytes):
    raw = find(ptr)
    if raw is not None:
        raw.region(ptr - raw.ptr, ptr - raw.ptr + nbytes).fill(FILL)


def claim(memptr, shape, dtype, nbytes):
    """A C-contiguous view for an array that now occupies the first ``nbytes`` of the
    block ``memptr`` lends: the rest of the block is filled and checked as guard zone."""
    ptr = memptr.ptr
    if ptr == 0:
        return np.ndarray(shape, dtype, buffer=np.empty(0, np.uint8))
    raw = find(ptr)
    if raw is None:
        raise CUDARuntimeError(700, f"address {ptr:#x} is not in any live device allocation")
    if nbytes and ptr == raw.ptr:
        end = min(memptr.mem.ptr + memptr.mem.size, raw.ptr + raw.size) - raw.ptr
        raw.tail = nbytes
        pattern = _guard_pattern(dtype, next(_tenants))
        _fill(raw.region(-GUARD, 0), pattern)
        _fill(raw.region(nbytes, end + (GUARD if end == raw.size else 0)), pattern)
    return np.ndarray(shape, dtype, buffer=raw.buf, offset=ptr - raw.base)


_tenants = itertools.count(1)


def _guard_pattern(dtype, tenant):
    """What fills an array's guard zones: a signalling NaN of its float type, with a payload
    of its own. Read, it gives NaN; any arithmetic on it gives a quiet NaN, and a copy from
    another array carries that array's payload: a write past the end changes the bits
    (a quiet NaN or the 0xFF fill would be written back unchanged)."""
    payload = (tenant * 2654435761) & 0xFFFF or 1
    kind, size = np.dtype(dtype).kind, np.dtype(dtype).itemsize
    if kind == "f" and size == 4:
        return np.array([0x7F800000 | payload], np.uint32)
    if kind == "f" and size == 8:
        return np.array([0x7FF0000000000000 | payload << 16 | 1], np.uint64)
    if kind == "f" and size == 2:
        return np.array([0x7C00 | (payload & 0x1FF) or 1], np.uint16)
    return np.array([0xA5A5A5A5 ^ payload], np.uint32)


def _fill(region, pattern):
    n = region.size // pattern.itemsize
    region[:n * pattern.itemsize].view(pattern.dtype)[:] = pattern[0]
    region[n * pattern.itemsize:] = 0xA5


# --- freeing at deallocation, as CuPy's Cython __dealloc__ does ----------------------------
# Not weakref.finalize or __del__: when garbage collection finds a cycle that holds an
# allocator's lease (gpuad's _Lease), it runs weakref callbacks and __del__ methods of
# everything in it before the lease's __del__ hands the block back to its pool, which
# keeps the Memory alive. A capsule's destructor runs only when the object is really gone.
_DESTRUCTOR = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype, _capsule_new.argtypes = ctypes.py_object, [
    ctypes.c_void_p, ctypes.c_char_p, _DESTRUCTOR]
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype, _capsule_pointer.argtypes = ctypes.c_void_p, [ctypes.c_void_p,
                                                                        ctypes.c_char_p]
_CAPSULE = b"gpuad emulated device memory"
_keys = itertools.count(1)
_on_dealloc = {}  # capsule key -> (fn, args)


@_DESTRUCTOR
def _run_dealloc(capsule):
    try:
        fn, args = _on_dealloc.pop(_capsule_pointer(capsule, _CAPSULE))
    except (KeyError, TypeError, AttributeError):  # interpreter shutdown
        return
    fn(*args)


# capsules may outlive this module at interpreter exit: the callback must never be freed
ctypes.pythonapi.Py_IncRef(ctypes.py_object(_run_dealloc))


def when_deallocated(fn, *args):
    """A token that calls ``fn(*args)`` when it is deallocated: store it on the object."""
    key = next(_keys)
    _on_dealloc[key] = (fn, args)
    return _capsule_new(key, _CAPSULE, _run_dealloc)


class BaseMemory:
    def __init__(self, ptr, size, device_id):
        self.ptr, self.size, self.device_id = ptr, size, device_id

    @property
    def device(self):
        return _device.Device(self.device_id)


class Memory(BaseMemory):
    """``cupy.cuda.Memory``: cudaMalloc on the current device, cudaFree when dropped."""

    def __init__(self, size):
        device_id = _device.get_device_id()
        self._raw = malloc(int(size), device_id) if size > 0 else None
        super().__init__(0 if self._raw is None else self._raw.ptr, int(size), device_id)
        self._freed_with = when_deallocated(free, self._raw) if self._raw else None


class UnownedMemory(BaseMemory):
    """``cupy.cuda.UnownedMemory``: device memory that ``owner`` keeps alive."""

    def __init__(self, ptr, size, owner, device_id=None):
        raw = find(ptr) if size else None
        if size and (raw is None or ptr + size > raw.ptr + raw.size):
            raise CUDARuntimeError(700, f"UnownedMemory({ptr:#x}, {size}) is not inside a "
                                        "live device allocation")
        if device_id is None:
            device_id = raw.device_id if raw else _device.get_device_id()
        super().__init__(ptr, size, device_id)
        self.owner = owner


class MemoryPointer:
    """``cupy.cuda.MemoryPointer``: ``mem`` plus a byte offset."""

    __slots__ = ("mem", "ptr", "device_id", "__weakref__")

    def __init__(self, mem, offset):
        self.mem, self.ptr, self.device_id = mem, mem.ptr + offset, mem.device_id

    @property
    def device(self):
        return _device.Device(self.device_id)

    def __add__(self, offset):
        return MemoryPointer(self.mem, self.ptr - self.mem.ptr + offset)

    def __sub__(self, offset):
        return self + (-offset)

    def __int__(self):
        return self.ptr

    def _bytes(self, size):
        return host_view(self.ptr, (size,), np.uint8)

    def copy_from_device_async(self, src, size, stream=None):
        dst, source = self._bytes(size), src._bytes(size)
        _device.run(lambda: np.copyto(dst, source))

    copy_from_device = copy_from_device_async

    def copy_from_host_async(self, mem, size, stream=None):
        staged = np.ctypeslib.as_array((np.ctypeslib.ctypes.c_uint8 * size).from_address(
            int(mem))).copy()  # a pinned staging copy: a capture keeps this snapshot
        dst = self._bytes(size)
        _device.run(lambda: np.copyto(dst, staged))

    copy_from_host = copy_from_host_async

    def copy_to_host(self, mem, size):
        _device.host_sync("a device-to-host copy")
        out = (np.ctypeslib.ctypes.c_uint8 * size).from_address(int(mem))
        np.ctypeslib.as_array(out)[:] = self._bytes(size)

    copy_to_host_async = copy_to_host

    def memset_async(self, value, size, stream=None):
        dst = self._bytes(size)
        _device.run(lambda: dst.fill(value))

    memset = memset_async


_allocator = None  # None: CuPy's default pool


class MemoryPool:
    """``cupy.cuda.MemoryPool`` (CuPy's default allocator): lends blocks rounded to 512
    bytes, each its own cudaMalloc (the emulation does not cache)."""

    def __init__(self, allocator=None):
        self._used = [0] * _device.DEVICE_COUNT

    def malloc(self, size):
        size = -(-int(size) // 512) * 512
        mem = Memory(size)
        device_id = mem.device_id
        self._used[device_id] += size
        mem._released_with = when_deallocated(self._release, device_id, size)
        return MemoryPointer(mem, 0)

    def _release(self, device_id, size):
        self._used[device_id] -= size

    def free_all_blocks(self, stream=None):
        pass

    def used_bytes(self):
        return self._used[_device.get_device_id()]

    def total_bytes(self):
        return self.used_bytes()

    def free_bytes(self):
        return 0

    def n_free_blocks(self):
        return 0


_default_pool = MemoryPool()


def get_default_memory_pool():
    return _default_pool


def set_allocator(allocator=None):
    """``cupy.cuda.set_allocator``: ``allocator(nbytes) -> MemoryPointer``, or None for
    the default pool."""
    global _allocator
    _allocator = allocator


def get_allocator():
    return _default_pool.malloc if _allocator is None else _allocator


def alloc(size):
    """``cupy.cuda.alloc``: ``size`` bytes from the current allocator."""
    memptr = get_allocator()(size)
    if not isinstance(memptr, MemoryPointer):
        raise TypeError(f"the allocator returned {type(memptr).__name__}, not a "
                        "cupy.cuda.MemoryPointer")
    return memptr
