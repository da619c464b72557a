"""Builds CUDA C sources for the CPU: g++ with ``cuda_host.h`` in front, one shared library
per source text, linked against the scheduler (``cuda_host_runtime.cpp``, built once), all
cached on disk by a hash of everything that goes into them.

``GPUAD_EMU_SANITIZE=thread`` builds under ThreadSanitizer, ``=address`` under AddressSanitizer
and UBSan (the threads of a block then run as concurrent OS threads); either needs its
runtime preloaded, which ``./dev test`` does. ``GPUAD_EMU_CACHE`` moves the cache (default
``~/.cache/gpuad-emu``).
"""
import concurrent.futures
import ctypes
import functools
import hashlib
import os
import re
import subprocess
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).parent
HEADER, ABI = HERE / "cuda_host.h", HERE / "cuda_host_abi.h"
RUNTIME = HERE / "cuda_host_runtime.cpp"
CXX = os.environ.get("CXX", "g++")
SANITIZERS = {"": [],  # no -g: builds 20% faster, and nothing reads the symbols
              "thread": ["-g", "-fsanitize=thread", "-DGPUAD_EMU_FREE_THREADS"],
              "address": ["-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                          "-fno-omit-frame-pointer", "-DGPUAD_EMU_FREE_THREADS"]}
_FLAGS = ["-std=c++20", "-O1", "-fPIC", "-shared", "-pthread", "-fvisibility=hidden",
          "-fno-gnu-unique", "-Wall", "-Wextra", "-Wno-unused-parameter", f"-I{HERE}"]
_ENTRY = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(')
# function-local statics of these namespaces are the library's, never a kernel's __shared__
_NOT_SHARED = ("St", "9__gnu_cxx", "9gpuad_emu", "10__cxxabiv1")


class BuildError(RuntimeError):
    """g++ rejected a source; the message holds its output."""


def sanitizer():
    """The sanitizer the tests build with: '', 'thread' or 'address'."""
    name = os.environ.get("GPUAD_EMU_SANITIZE", "")
    if name not in SANITIZERS:
        raise ValueError(f"GPUAD_EMU_SANITIZE={name!r}: expected thread, address or nothing")
    return name


def cache_dir():
    path = Path(os.environ.get("GPUAD_EMU_CACHE", Path.home() / ".cache" / "gpuad-emu"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.cache
def _compiler_version():
    return subprocess.run([CXX, "--version"], capture_output=True, text=True,
                          check=True).stdout


def entry_points(code):
    """The names of the ``extern "C" __global__`` kernels in ``code``, read after the
    preprocessor (so macros that define entry points count)."""
    run = subprocess.run([CXX, "-E", "-P", "-x", "c++", "-"], input=code, capture_output=True,
                         text=True)
    if run.returncode:
        raise BuildError(f"the preprocessor rejected the source:\n{run.stderr}")
    return _ENTRY.findall(run.stdout)


class Library:
    """A built source, loaded: its kernels and its ``__shared__`` variables (which the
    scheduler fills with 0xFF bytes before each block)."""

    def __init__(self, path, entries, shared):
        self.path, self.entries = path, entries
        self.lib = ctypes.CDLL(str(path))
        base = ctypes.cast(self.lib.gpuad_emu_set_shared, ctypes.c_void_p).value - \
            shared.pop("gpuad_emu_set_shared")[0]
        n = len(shared)
        # kept on self: the module reads them at every launch
        self._ptrs = (ctypes.c_void_p * n)(*[base + off for off, _ in shared.values()])
        self._sizes = (ctypes.c_ulonglong * n)(*[size for _, size in shared.values()])
        self.lib.gpuad_emu_set_shared(self._ptrs, self._sizes, n)
        self.shared_variables = list(shared)

    def signature(self, name):
        """The C parameter types of kernel ``name``, as g++ saw them."""
        out = ctypes.create_string_buffer(8192)
        getattr(self.lib, f"gpuad_emu_signature_{name}")(out)
        text = out.value.decode()
        return text.split(",") if text else []

    def launcher(self, name):
        """``launch(args, dims, timeout_s, err, errlen) -> 0 or 1``: ``args`` points at each
        argument's bytes, ``dims`` is grid x y z then block x y z."""
        fn = getattr(self.lib, f"gpuad_emu_launch_{name}")
        fn.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_uint),
                       ctypes.c_double, ctypes.c_char_p, ctypes.c_int]
        fn.restype = ctypes.c_int
        return fn


def _shared_symbols(path):
    """``{mangled name: (offset, size)}`` of the library's function-local statics (the
    ``__shared__`` variables), plus ``gpuad_emu_set_shared`` to find the load address."""
    out = subprocess.run(["nm", "-S", "--defined-only", str(path)], capture_output=True,
                         text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == "gpuad_emu_set_shared":
            found[parts[3]] = (int(parts[0], 16), 0)
        elif len(parts) == 4 and parts[2] in "bBdD" and parts[3].startswith("_ZZ"):
            owner = parts[3][3:].lstrip("N").lstrip("KV")
            if not owner.startswith(_NOT_SHARED):
                found[parts[3]] = (int(parts[0], 16), int(parts[1], 16))
    return found


def _key(parts):
    h = hashlib.sha256()
    for part in parts + [_compiler_version()]:
        data = part.encode()
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()[:32]


def _gxx(args, what):
    run = subprocess.run([CXX, *args], capture_output=True, text=True)
    if run.returncode:
        raise BuildError(f"g++ rejected {what}:\n{run.stderr}")


_runtime_lock = threading.Lock()


def _runtime(flags):
    """The scheduler library built with ``flags`` (once; parallel builds wait for it)."""
    key = _key([RUNTIME.read_text(), ABI.read_text(), " ".join(flags)])
    out = cache_dir() / f"libgpuad_emu_runtime_{key}.so"
    with _runtime_lock:
        if not out.exists():
            with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
                lib = Path(tmp) / out.name
                _gxx([*flags, str(RUNTIME), "-o", str(lib)], RUNTIME.name)
                os.replace(lib, out)
    return out


def _compile(code, filename, key, flags):
    out, listed = cache_dir() / f"{key}.so", cache_dir() / f"{key}.entries"
    if not out.exists():
        runtime = _runtime(flags)
        entries = entry_points(code)
        if not entries:
            raise BuildError(f'{filename}: no extern "C" __global__ kernel found')
        with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
            src = Path(tmp) / f"{Path(filename).stem}.cpp"
            src.write_text(f'#include "cuda_host.h"\n#line 1 "{filename}"\n{code}\n'
                           + "".join(f"GPUAD_EMU_ENTRY({e})\n" for e in entries))
            lib = Path(tmp) / "module.so"
            _gxx([*flags, str(src), "-o", str(lib), str(runtime),
                  f"-Wl,-rpath,{runtime.parent}"], filename)
            (Path(tmp) / "entries").write_text("\n".join(entries))
            os.replace(Path(tmp) / "entries", listed)
            os.replace(lib, out)
    return out, listed.read_text().split(), _shared_symbols(out)


_pool = concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2)
_builds = {}     # key -> Future of _compile's result
_libraries = {}  # key -> Library
_lock = threading.Lock()


def start(code, filename="module.cu", sanitize=None):
    """Start building ``code`` in the background (sources build in parallel); returns its
    key. ``sanitize`` overrides ``GPUAD_EMU_SANITIZE``."""
    flags = _FLAGS + SANITIZERS[sanitizer() if sanitize is None else sanitize]
    key = _key([HEADER.read_text(), ABI.read_text(), RUNTIME.read_text(), code,
                " ".join(flags)])
    with _lock:
        if key not in _builds:
            _builds[key] = _pool.submit(_compile, code, filename, key, flags)
    return key


def load(code, filename="module.cu", sanitize=None):
    """``code`` built (now, unless ``start`` began it) and loaded."""
    key = start(code, filename, sanitize)
    with _lock:
        lib = _libraries.get(key)
    if lib is None:
        _check_preloaded(sanitizer() if sanitize is None else sanitize)
        built = _builds[key].result()
        with _lock:
            lib = _libraries.get(key) or _libraries.setdefault(key, Library(*built))
    return lib


def _check_preloaded(name):
    if name and f"lib{name[0]}san" not in os.environ.get("LD_PRELOAD", ""):
        raise RuntimeError(
            f"GPUAD_EMU_SANITIZE={name} needs the sanitizer's runtime loaded first: run "
            f"`GPUAD_EMU_SANITIZE={name} ./dev test ...`, which preloads it")
