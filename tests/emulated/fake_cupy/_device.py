"""Devices, streams, events and stream capture of the emulated GPUs.

Two devices, each with its own memory, current stream and properties. Work runs at once,
in program order, unless the current stream is capturing: then it is recorded into the
capture and runs only when the resulting graph is launched. What CUDA refuses during a
capture (a host sync on the capturing stream, a synchronising device call, ``cudaFree``,
work on the legacy stream while a blocking stream captures) raises as CUDA does and
invalidates the capture, so that ``end_capture`` raises ``cudaErrorStreamCaptureInvalidated``.
"""
import itertools
import threading
import warnings

DEVICE_COUNT = 2
TOTAL_MEMORY = (2 << 30, 1 << 30)  # bytes per device: cudaMalloc fails past them
# two SMs on device 0 and one on device 1: a launch sized for the wrong device shows
PROPERTIES = [{"name": f"gpuad emulated GPU {i}".encode(), "multiProcessorCount": 2 - i,
               "totalGlobalMem": TOTAL_MEMORY[i], "major": 9, "minor": 0,
               "maxThreadsPerBlock": 1024, "maxThreadsDim": (1024, 1024, 64),
               "maxGridSize": (2**31 - 1, 65535, 65535), "warpSize": 32,
               "sharedMemPerBlock": 48 << 10, "regsPerBlock": 65536,
               "clockRate": 1_000_000, "l2CacheSize": 1 << 20, "integrated": 0}
              for i in range(DEVICE_COUNT)]

# CUDA error codes the emulation raises
ERRORS = {2: ("cudaErrorMemoryAllocation", "out of memory"),
          101: ("cudaErrorInvalidDevice", "invalid device ordinal"),
          400: ("cudaErrorInvalidResourceHandle", "invalid resource handle"),
          401: ("cudaErrorIllegalState", "the operation cannot be performed in the present "
                "state"),
          700: ("cudaErrorIllegalAddress", "an illegal memory access was encountered"),
          719: ("cudaErrorLaunchFailure", "unspecified launch failure"),
          900: ("cudaErrorStreamCaptureUnsupported", "operation not permitted when stream is "
                "capturing"),
          901: ("cudaErrorStreamCaptureInvalidated", "operation failed due to a previous error "
                "during capture"),
          906: ("cudaErrorStreamCaptureImplicit", "operation would make the legacy stream "
                "depend on a capturing blocking stream")}


class CUDARuntimeError(RuntimeError):
    """``cupy.cuda.runtime.CUDARuntimeError``: a CUDA call failed with ``status``."""

    def __init__(self, status, detail=""):
        self.status = status
        name, text = ERRORS.get(status, (f"cudaError{status}", "unknown error"))
        super().__init__(f"{name}: {text}" + (f" ({detail})" if detail else ""))

    def __reduce__(self):
        return (type(self), (self.status,))


class _ThreadState(threading.local):
    def __init__(self):
        self.device = 0
        self.entered = []  # the devices ``with Device(...)`` left, innermost last
        self.streams = [[] for _ in range(DEVICE_COUNT)]  # per device: the `with` stack


_tls = _ThreadState()
_ptrs = itertools.count(0x1000)
_capturing = {}  # stream ptr -> _Capture


def check_device(i):
    if not (isinstance(i, int) and 0 <= i < DEVICE_COUNT):
        raise CUDARuntimeError(101, f"device {i!r}; this machine has {DEVICE_COUNT}")
    return i


def get_device_id():
    return _tls.device


def set_device(i):
    _tls.device = check_device(i)


class Device:
    """``cupy.cuda.Device``: a context manager that makes a device current."""

    def __init__(self, device=None):
        self.id = get_device_id() if device is None else int(device)

    def __enter__(self):  # CuPy keeps the stack per thread: one Device serves every thread
        check_device(self.id)
        _tls.entered.append(_tls.device)
        _tls.device = self.id
        return self

    def __exit__(self, *exc):
        _tls.device = _tls.entered.pop()

    def use(self):
        set_device(self.id)

    def synchronize(self):
        for cap in list(_capturing.values()):
            if cap.device == self.id:
                cap.invalidate(900, "cudaDeviceSynchronize during a capture")
                raise CUDARuntimeError(900, "cudaDeviceSynchronize during a capture")

    @property
    def compute_capability(self):
        p = PROPERTIES[check_device(self.id)]
        return f"{p['major']}{p['minor']}"

    @property
    def mem_info(self):
        from ._memory import used_bytes
        return TOTAL_MEMORY[self.id] - used_bytes(self.id), TOTAL_MEMORY[self.id]

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(("Device", self.id))

    def __int__(self):
        return self.id

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


class Event:
    """``cupy.cuda.Event``; work runs at once, so an event is always done."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.ptr = next(_ptrs)

    def record(self, stream=None):
        return self

    @property
    def done(self):
        return True

    def synchronize(self):
        pass


class Stream:
    """``cupy.cuda.Stream`` of the device current when it is made (the null stream of
    every device when ``null=True``)."""

    def __init__(self, null=False, non_blocking=False, ptds=False, priority=None):
        self.ptr = 0 if null else next(_ptrs)
        self.device_id = -1 if null else get_device_id()
        self.non_blocking = non_blocking

    def _check_device(self):
        if self.device_id not in (-1, _tls.device):
            raise RuntimeError(f"The device that the stream is created on ({self.device_id}) "
                               f"does not match with the current device ({_tls.device})")

    def __enter__(self):
        self._check_device()
        _tls.streams[_tls.device].append(self)
        return self

    def __exit__(self, *exc):
        _tls.streams[_tls.device].pop()

    def use(self):
        self._check_device()
        stack = _tls.streams[_tls.device]
        if stack:
            stack[-1] = self
        else:
            stack.append(self)
        return self

    def record(self, event=None):
        return (event or Event()).record(self)

    def wait_event(self, event):
        pass

    @property
    def done(self):
        return True

    def synchronize(self):
        cap = _capturing.get(self.ptr)
        if cap is not None:
            cap.invalidate(900, "cudaStreamSynchronize on the capturing stream")
            raise CUDARuntimeError(900, "cudaStreamSynchronize on the capturing stream")

    def begin_capture(self, mode=None):
        if self.ptr == 0:
            raise RuntimeError("cannot capture on the default (legacy) stream")
        if self.ptr in _capturing:
            raise CUDARuntimeError(401, "the stream is capturing already")
        _capturing[self.ptr] = _Capture(self)

    def end_capture(self):
        cap = _capturing.pop(self.ptr, None)
        if cap is None:
            raise CUDARuntimeError(401, "cudaStreamEndCapture on a stream that is not "
                                        "capturing")
        if cap.invalidated:
            raise CUDARuntimeError(901)
        return Graph(cap)

    def is_capturing(self):
        return self.ptr in _capturing

    @property
    def is_non_blocking(self):
        return self.non_blocking

    def __eq__(self, other):
        return isinstance(other, Stream) and other.ptr == self.ptr

    def __hash__(self):
        return self.ptr

    def __repr__(self):
        return f"<Stream {self.ptr} (device {self.device_id})>"


Stream.null = Stream(null=True)


def get_current_stream(device_id=-1):
    stack = _tls.streams[_tls.device if device_id == -1 else check_device(device_id)]
    return stack[-1] if stack else Stream.null


class Graph:
    """``cupy.cuda.Graph``: what a capture recorded, run again at each ``launch``. Memory
    the capture allocated is poisoned (0xFF) before each run, so a value the graph reads
    before it writes it is NaN or -1, not a leftover that happens to be right."""

    def __init__(self, capture):
        if not isinstance(capture, _Capture):
            raise NotImplementedError("currently this class cannot be initiated by the user "
                                      "and must be created via stream capture")
        self._work, self._allocated = capture.work, capture.allocated
        self.device = capture.device

    def launch(self, stream=None):
        stream = get_current_stream() if stream is None else stream
        if stream.ptr in _capturing:  # a graph launched in a capture is captured
            _capturing[stream.ptr].record(self._run)
        else:
            self._run()

    def upload(self, stream=None):
        pass

    def _run(self):
        from ._memory import poison
        for ptr, nbytes in self._allocated:
            poison(ptr, nbytes)
        for work in self._work:
            work()


class _Capture:
    def __init__(self, stream):
        self.stream, self.device = stream, stream.device_id
        self.work, self.allocated = [], []
        self.invalidated = None

    def record(self, work):
        self.work.append(work)

    def invalidate(self, status, why):
        if self.invalidated is None:
            self.invalidated = (status, why)


def capture():
    """The capture that work issued now belongs to (None: run it at once). Work on the
    legacy stream while a blocking stream of the device captures is refused, as by CUDA."""
    stream = get_current_stream()
    if not _capturing:
        return None
    cap = _capturing.get(stream.ptr)
    if cap is None and stream.ptr == 0:
        for other in _capturing.values():
            if other.device == _tls.device and not other.stream.non_blocking:
                other.invalidate(906, "work on the legacy stream")
                raise CUDARuntimeError(906)
    return cap


def host_sync(what):
    """A synchronous transfer to the host on the current stream: refused while it captures."""
    cap = capture()
    if cap is not None:
        cap.invalidate(900, what)
        raise CUDARuntimeError(900, f"{what} on a capturing stream")


def free_during_capture(device_id):
    """cudaFree synchronises the device: while a stream of it captures, that capture fails."""
    for cap in _capturing.values():
        if cap.device == device_id:
            cap.invalidate(900, "cudaFree during a capture")
            warnings.warn("emulated CUDA: cudaFree during a stream capture on this device "
                          "invalidates the capture (cudaErrorStreamCaptureUnsupported)",
                          RuntimeWarning, stacklevel=3)


def run(work):
    """Run ``work`` now, or record it into the capture of the current stream."""
    cap = capture()
    if cap is None:
        work()
    else:
        cap.record(work)


def note_allocation(ptr, nbytes):
    """An array allocated now: while the current stream captures, it is poisoned (the
    captured work has not run) and its graph poisons it again before each launch."""
    cap = capture()
    if cap is not None and nbytes:
        from ._memory import poison
        poison(ptr, nbytes)
        cap.allocated.append((ptr, nbytes))
