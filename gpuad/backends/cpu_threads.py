"""gpuad's own worker threads for the CPU kernels: a large array is cut into row blocks,
one per thread, each block run by a serial, GIL-free kernel (a Numba twin, a GEMM).

Why not Numba's ``parallel=True`` or an OpenMP BLAS: their worker threads belong to a
process-wide runtime (Numba's threading layer, libgomp) whose thread count and wait
policy are the user's settings, read from ``OMP_*`` variables when it loads. Their
workers spin after each call (for ever under ``OMP_WAIT_POLICY=ACTIVE``), taking the
cores that the next kernel, or PyTorch's OpenMP threads in the same process, need; and
on a loaded machine a spinning team waits a scheduler tick for its last member. These
workers block on a queue between jobs and need nothing from the environment.

>>> parts = run_blocks(kernel, rows, [(a[r0:r1], out[r0:r1]) for r0, r1 in blocks])
"""
import os
import queue
import threading

#: Threads a job is cut for: the CPUs this process may run on (``os.sched_getaffinity``).
THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
    (os.cpu_count() or 1)

_workers = []        # one job queue per worker thread, started on first use
_lock = threading.Lock()


def blocks(n, parts=None):
    """``n`` rows cut into at most ``parts`` (default ``THREADS``) ``(start, stop)``
    ranges of near-equal size, none empty."""
    parts = max(1, min(parts or THREADS, n))
    return [(k * n // parts, (k + 1) * n // parts) for k in range(parts)]


def run_blocks(fn, arg_blocks):
    """``[fn(*args) for args in arg_blocks]``, the first on the calling thread and the
    others on worker threads at the same time; ``fn`` must release the GIL to gain."""
    if len(arg_blocks) == 1:
        return [fn(*arg_blocks[0])]
    workers = _started(len(arg_blocks) - 1)
    done = queue.SimpleQueue()
    for k, (q, args) in enumerate(zip(workers, arg_blocks[1:]), 1):
        q.put((k, fn, args, done))
    results = [fn(*arg_blocks[0])] + [None] * len(workers)
    failed = None
    for _ in workers:
        k, ok, value = done.get()
        results[k] = value
        if not ok:
            failed = value
    if failed is not None:
        raise failed
    return results


def _started(n):
    with _lock:
        while len(_workers) < n:
            q = queue.SimpleQueue()
            threading.Thread(target=_work, args=(q,), daemon=True,
                             name=f"gpuad-cpu-{len(_workers) + 1}").start()
            _workers.append(q)
        return _workers[:n]


def _work(jobs):
    while True:
        k, fn, args, done = jobs.get()
        try:
            done.put((k, True, fn(*args)))
        except BaseException as e:  # handed to the caller, which raises it
            done.put((k, False, e))


def _forget_workers():
    _workers.clear()  # a forked child has none of the parent's threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)
