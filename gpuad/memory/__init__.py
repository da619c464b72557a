"""``gpuad.memory``: the caching allocator's stats, and what the graph keeps for backward.

On CUDA every CuPy array comes from gpuad's caching allocator. On CPU the pool is off by
default (it did not pay there, see ``cpu_pool``); turned on with ``set_caching(True, "cpu")``
it lends the large arrays made by ``backend.empty`` (2-D matmul results among them), and
the CPU stats count those only.

This package sits below Tensor and autograd: what it shows of the graph
(``saved_activation_bytes``, ``saved_tensors_report``) is computed and added by
``gpuad.autograd.saved`` and ``saved_report``.

>>> gpuad.memory.memory_allocated("cuda"), gpuad.memory.max_memory_allocated("cuda")
>>> gpuad.memory.stats()["saved_activation_bytes"]
"""
from ..backends import backend_for
from ..device import as_device
from .pool import CachingAllocator, OutOfMemoryError, format_bytes, round_size

__all__ = ["stats", "memory_allocated", "max_memory_allocated", "reset_peak_memory_stats",
           "empty_cache", "set_caching", "OutOfMemoryError", "CachingAllocator",
           "round_size", "format_bytes"]

#: Counters the layers above add to ``stats()``: name -> ``fn(device)``.
extra_stats = {}


def _pool(device):
    return backend_for(as_device(device)).pool


def stats(device=None):
    """The pool's counters for ``device`` (default: the default device), PyTorch-style.

    ``allocated_bytes`` (lent to live arrays, rounded to size classes), ``reserved_bytes``
    (allocated + cached), ``peak_allocated_bytes``, ``raw_alloc_calls``,
    ``raw_free_calls``, ``pool_hits``, ``pool_misses``, and ``saved_activation_bytes``
    (distinct arrays that live graph nodes keep for backward, leaf tensors left out).
    """
    dev = as_device(device)
    out = _pool(dev).stats()
    for name, fn in extra_stats.items():
        out[name] = fn(dev)
    return out


def memory_allocated(device=None):
    """Bytes the pool has lent to live arrays on ``device``."""
    return _pool(device).stats()["allocated_bytes"]


def max_memory_allocated(device=None):
    """The peak of ``memory_allocated`` since start or ``reset_peak_memory_stats``."""
    return _pool(device).stats()["peak_allocated_bytes"]


def reset_peak_memory_stats(device=None):
    """Start the peak over from what is allocated now."""
    _pool(device).reset_peak()


def empty_cache(device=None):
    """Give the blocks cached for reuse back to the system (live arrays keep theirs);
    nothing while a CUDA graph capture is open on the device (it would invalidate it)."""
    _pool(device).empty_cache()


def set_caching(enabled, device=None):
    """Turn the caching allocator of ``device`` on or off.

    CUDA: on by default; off, every allocation is a cudaMalloc and every free a cudaFree.
    CPU: off by default; on, ``backend.empty`` (and with it every 2-D matmul result) lends
    large arrays from the pool.
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"set_caching takes True or False, got {enabled!r}")
    pool = _pool(device)
    pool.caching = enabled
    if not enabled:
        pool.empty_cache()
