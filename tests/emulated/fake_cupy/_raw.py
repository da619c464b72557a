"""``cupy.RawModule`` / ``RawKernel``: the CUDA source built for the CPU
(``tests/emulated/kernel_build.py``) and launched on host threads, with CuPy's call form
``kernel(grid, block, args, shared_mem=0, stream=None)`` and CuPy 14's argument conversion
(``cupy/cuda/function.pyx``: ``_pointer``; ``cupy/_core/_scalar.pyx``: ``CScalar``):

* a ``cupy.ndarray`` passes its data pointer (its view's start: strides are ignored),
  a ``MemoryPointer`` its address, ``None`` a null pointer;
* a NumPy array of one element passes its value by its dtype; a larger one is refused;
* a Python ``bool`` passes a C bool, ``int`` an int64 (uint64 from 2**63), ``float`` a
  double, ``complex`` a complex128; a NumPy scalar passes its own type.

The kernel then reads each parameter's bytes as its C type, as on a GPU, whatever was
passed. With ``STRICT`` on (the test suite's setting) a launch whose argument types or
count do not match the kernel's parameters, or that passes a non-contiguous array, is
refused with a message instead. Every pointer a launch passes must lie in live memory of
the current device (else cudaErrorIllegalAddress), and after the launch the guard zones
of each array it was given are checked (``KernelFault`` when a kernel wrote past one).
"""
import contextlib
import ctypes
import os

import numpy as np

from .. import kernel_build
from . import _device, _libraries, _memory
from ._device import CUDARuntimeError
from ._ndarray import ndarray

STRICT = False
TIMEOUT_S = float(os.environ.get("GPUAD_EMU_TIMEOUT", "120"))

_C_TYPES = {"bool": "?", "char": "b", "signed char": "b", "unsigned char": "B",
            "short": "h", "unsigned short": "H", "int": "i", "unsigned int": "I",
            "long": "l", "unsigned long": "L", "long long": "q", "unsigned long long": "Q",
            "float": "f", "double": "d"}


class KernelFault(RuntimeError):
    """What a GPU would not report, found by the emulation: a barrier or shuffle misused,
    a write past an array, a launch whose arguments do not fit the kernel."""


class CompileException(Exception):
    """``cupy.cuda.compiler.CompileException``: the source did not build."""


class CUDADriverError(RuntimeError):
    """``cupy.cuda.driver.CUDADriverError``."""


def _value_bytes(arg):
    """CuPy's conversion of one launch argument: (bytes, what it was, dtype or None)."""
    if arg is None:
        return (0).to_bytes(8, "little"), "None", None
    if isinstance(arg, ndarray):
        return arg.data.ptr.to_bytes(8, "little"), "array", arg.dtype
    if isinstance(arg, _memory.MemoryPointer):
        return arg.ptr.to_bytes(8, "little"), "pointer", None
    if isinstance(arg, np.ndarray):
        if arg.size != 1:
            raise TypeError(f"You are trying to pass a numpy.ndarray of shape {arg.shape} as "
                            "a kernel parameter. Only numpy.ndarrays of size one can be "
                            "passed by value. If you meant to pass a pointer to __global__ "
                            "memory, you need to pass a cupy.ndarray instead.")
        return arg.tobytes(), "value", arg.dtype
    from ._ufunc import scalar_dtype
    dtype, _ = scalar_dtype(arg)
    return np.asarray(arg, dtype).tobytes(), "value", dtype


def _strict_check(name, params, args, converted):
    if len(args) != len(params):
        raise KernelFault(f"{name} takes {len(params)} arguments ({', '.join(params)}), "
                          f"{len(args)} given")
    for i, (param, arg, (_, kind, dtype)) in enumerate(zip(params, args, converted)):
        where = f"{name} argument {i} ({param})"
        if param.endswith("*"):
            pointee = param[:-1].replace("const ", "").strip()
            if kind == "value":
                raise KernelFault(f"{where} is a pointer, given a {dtype} value")
            if kind == "array":
                if not arg._a.flags.c_contiguous:
                    raise KernelFault(f"{where}: the array is not C-contiguous (shape "
                                      f"{arg.shape}, strides {arg.strides}); a raw kernel "
                                      "ignores strides")
                if pointee in _C_TYPES and dtype != np.dtype(_C_TYPES[pointee]):
                    raise KernelFault(f"{where} is given a {dtype} array")
        else:
            want = _C_TYPES.get(param)
            if kind != "value" or want is None or dtype != np.dtype(want):
                got = f"a {dtype} value" if kind == "value" else f"a {kind}"
                raise KernelFault(f"{where} is given {got} (CuPy passes a Python float as "
                                  "double, an int as int64: wrap scalars in the C type's "
                                  "NumPy scalar, e.g. numpy.float32(x))")


@contextlib.contextmanager
def _asan_guards(raws):
    """Under AddressSanitizer, the guard zones are poisoned while a kernel runs: any read or
    write of them (not only a write that changes them) stops the process with a report."""
    if kernel_build.sanitizer() != "address":
        yield
        return
    libasan = ctypes.CDLL(None)
    zones = [(z.ctypes.data, z.size) for _, _, raw in raws for _, _, z in raw.guard_zones()]
    for addr, size in zones:
        libasan.__asan_poison_memory_region(ctypes.c_void_p(addr), ctypes.c_size_t(size))
    try:
        yield
    finally:
        for addr, size in zones:
            libasan.__asan_unpoison_memory_region(ctypes.c_void_p(addr), ctypes.c_size_t(size))


class RawKernel:
    """One kernel of a RawModule, launched on the current device."""

    def __init__(self, module, name):
        self._module, self.name, self.__name__ = module, name, name
        self._lib = module._library()
        if name not in self._lib.entries:
            raise CUDADriverError("CUDA_ERROR_NOT_FOUND: named symbol not found "
                                  f"({name!r}; the module has {', '.join(self._lib.entries)})")
        self._launch = self._lib.launcher(name)
        self._params = self._lib.signature(name)

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None,
                 enable_cooperative_groups=False):
        if not isinstance(grid, tuple):
            raise TypeError(f"Argument 'grid' has incorrect type (expected tuple, got "
                            f"{type(grid).__name__})")
        if not isinstance(block, tuple):
            raise TypeError(f"Argument 'block' has incorrect type (expected tuple, got "
                            f"{type(block).__name__})")
        grid = tuple(max(1, int(g)) for g in (grid + (1, 1))[:3])
        block = tuple(max(1, int(b)) for b in (block + (1, 1))[:3])
        if block[0] > 1024 or block[1] > 1024 or block[2] > 64 or np.prod(block) > 1024 or \
                grid[0] > 2**31 - 1 or grid[1] > 65535 or grid[2] > 65535:
            raise CUDADriverError(f"CUDA_ERROR_INVALID_VALUE: invalid argument (grid {grid}, "
                                  f"block {block})")
        if shared_mem:
            raise NotImplementedError("the emulation has no dynamic shared memory")
        args = tuple(args)
        converted = [_value_bytes(a) for a in args]
        if STRICT:
            _strict_check(self.name, self._params, args, converted)
        elif len(args) < len(self._params):
            raise KernelFault(f"{self.name} takes {len(self._params)} arguments, "
                              f"{len(args)} given: the kernel would read past them")
        device = _device.get_device_id()
        raws = self._pointer_targets(converted, device)
        buffers = []
        for data, _, _ in converted[:len(self._params)]:
            buf = ctypes.create_string_buffer(b"\xa5" * 16, 16)  # over-reads see garbage
            ctypes.memmove(buf, data, len(data))
            buffers.append(buf)
        argv = (ctypes.c_void_p * max(1, len(buffers)))(
            *[ctypes.cast(b, ctypes.c_void_p) for b in buffers])
        dims = (ctypes.c_uint * 6)(*grid, *block)
        capture = _device.capture() if stream is None else \
            _device._capturing.get(stream.ptr)

        # each array as the kernel is given it: in a graph replay, a block may have a later,
        # smaller tenant by then (reused in stream order), whose end is not this kernel's
        tails = [raw.tail for _, _, raw in raws]

        def run():
            now = [raw.tail for _, _, raw in raws]
            for (_, _, raw), tail in zip(raws, tails):
                raw.tail = tail
            try:
                before = [raw.snapshot() for _, _, raw in raws]
                err = ctypes.create_string_buffer(4096)
                with _asan_guards(raws):
                    failed = self._launch(argv, dims, TIMEOUT_S, err, len(err))
                if failed:
                    raise KernelFault(f"{self.name}<<<{grid}, {block}>>>: "
                                      f"{err.value.decode(errors='replace')}")
                self._check_guards(raws, before)
            finally:
                for (_, _, raw), tail in zip(raws, now):
                    raw.tail = tail
        if capture is None:
            run()
        else:
            capture.record(run)

    def _pointer_targets(self, converted, device):
        """The allocations the pointer parameters point into (as the kernel reads them)."""
        raws = []
        for i, param in enumerate(self._params):
            if not param.endswith("*") or i >= len(converted):
                continue
            ptr = int.from_bytes(converted[i][0][:8].ljust(8, b"\xa5"), "little")
            if ptr == 0:
                continue
            raw = _memory.find(ptr)
            if raw is None:
                raise CUDARuntimeError(700, f"{self.name} argument {i} ({param}) points at "
                                            f"{ptr:#x}, outside any live device memory")
            if raw.device_id != device:
                raise CUDARuntimeError(700, f"{self.name} launched on device {device} is "
                                            f"given memory of device {raw.device_id} as "
                                            f"argument {i} ({param}); there is no peer access")
            raws.append((i, param, raw))
        return raws

    def _check_guards(self, raws, before):
        for (i, param, raw), old in zip(raws, before):
            hit = raw.damage(old)
            if hit:
                where, first, last = hit
                raise KernelFault(f"{self.name} wrote {where} of argument {i} ({param}, "
                                  f"{raw.tail} bytes): bytes {first} to {last} from its start")


class RawModule:
    """``cupy.RawModule(code=...)``: built for the CPU on first use (in the background
    from construction), cached by its text."""

    def __init__(self, *, code=None, path=None, options=(), backend="nvrtc",
                 translate_cucomplex=False, enable_cooperative_groups=False,
                 name_expressions=None, jitify=None):
        if (code is None) == (path is None):
            raise TypeError("Exactly one of `code` and `path` keyword arguments must be "
                            "given.")
        if path is not None:
            raise NotImplementedError("the emulation builds sources, not cubin/ptx files")
        if not isinstance(options, tuple):
            raise TypeError(f"Argument 'options' has incorrect type (expected tuple, got "
                            f"{type(options).__name__})")
        if name_expressions is not None:
            raise NotImplementedError("the emulation looks kernels up by extern \"C\" name")
        self.code, self.options, self.backend = code, options, backend
        self.name_expressions = None
        self._key = kernel_build.start(self._source(), "module.cu")

    def _source(self):
        defines = [o for o in self.options if o.startswith("-D")]
        head = "".join("#define " + d[2:].replace("=", " ", 1) + "\n" for d in defines)
        return head + self.code

    def _library(self):
        _libraries.load("nvrtc")
        try:
            return kernel_build.load(self._source(), "module.cu")
        except kernel_build.BuildError as e:
            raise CompileException(str(e)) from None

    def compile(self, log_stream=None):
        self._library()

    def get_function(self, name):
        return RawKernel(self, name)
