"""A stand-in for CuPy 14 that runs on the CPU, for gpuad's tests only.

``install()`` puts it in ``sys.modules`` as ``cupy``, ``cupyx`` and their submodules (the
test run's conftest does, in the emulated mode); nothing else can import it as cupy. It
offers only names the real CuPy has (``cupy_names.json``, derived from the wheel), and a
real name it does not emulate raises ``NotEmulated``. See ``_ndarray`` for the CuPy
behaviour it keeps, ``_device`` for devices, streams and capture, ``_memory`` for device
memory and guard zones, ``_raw`` for kernels, ``_random`` for cuRAND.
"""
import contextlib
import sys

import numpy as np

from . import _device, _libraries, _memory, _ndarray, _random, _raw, _routines, _special
from ._names import NAMES, VERSION, Module, NotEmulated, check_class
from ._ndarray import ndarray
from ._ufunc import ufunc

_ndarray._add_operators()  # they call the ufuncs of _routines

__all__ = ["install", "uninstall", "modules", "NotEmulated", "KernelFault", "missing"]
KernelFault = _raw.KernelFault
missing = _libraries.missing

ndarray.__module__ = ufunc.__module__ = "cupy"
for _cls, _dotted in ((ndarray, "cupy.ndarray"), (ufunc, "cupy.ufunc"),
                      (_device.Device, "cupy.cuda.Device"), (_device.Stream, "cupy.cuda.Stream"),
                      (_device.Event, "cupy.cuda.Event"), (_device.Graph, "cupy.cuda.Graph"),
                      (_memory.Memory, "cupy.cuda.Memory"),
                      (_memory.UnownedMemory, "cupy.cuda.UnownedMemory"),
                      (_memory.MemoryPointer, "cupy.cuda.MemoryPointer"),
                      (_memory.MemoryPool, "cupy.cuda.MemoryPool"),
                      (_random.RandomState, "cupy.random.RandomState"),
                      (_raw.RawModule, "cupy.RawModule"), (_raw.RawKernel, "cupy.RawKernel")):
    check_class(_dotted, _cls)


def _public(module, names):
    return {n: getattr(module, n) for n in names}


def _runtime():
    props = _device.PROPERTIES

    def getDeviceProperties(device):
        return dict(props[_device.check_device(device)])

    def memGetInfo():
        return _device.Device().mem_info

    attrs = dict(NAMES["constants"]["cupy.cuda.runtime"])
    attrs.update(CUDARuntimeError=_device.CUDARuntimeError, is_hip=False,
                 getDevice=_device.get_device_id, setDevice=_device.set_device,
                 getDeviceCount=lambda: _device.DEVICE_COUNT,
                 getDeviceProperties=getDeviceProperties, memGetInfo=memGetInfo,
                 deviceSynchronize=lambda: _device.Device().synchronize(),
                 runtimeGetVersion=lambda: 13000, driverGetVersion=lambda: 13000)
    return Module("cupy.cuda.runtime", attrs)


@contextlib.contextmanager
def using_allocator(allocator=None):
    previous = _memory._allocator
    _memory.set_allocator(allocator)
    try:
        yield
    finally:
        _memory.set_allocator(previous)


def _loaded(name, module):
    def load():
        _libraries.load(name)
        return module
    return load


def _nvrtc_version():
    _libraries.load("nvrtc")
    return 13, 0


def _build():
    runtime = _runtime()
    curand = Module("cupy.cuda.curand", {n: getattr(_random, n) for n in (
        *NAMES["constants"]["cupy.cuda.curand"], "createGenerator", "destroyGenerator",
        "setPseudoRandomGeneratorSeed", "setGeneratorOffset", "generate", "generateUniform",
        "generateUniformDouble", "generateNormal", "generateNormalDouble")})
    memory_names = ("BaseMemory", "Memory", "UnownedMemory", "MemoryPointer", "MemoryPool",
                    "alloc", "set_allocator", "get_allocator")
    memory = Module("cupy.cuda.memory", _public(_memory, memory_names))
    cublas = Module("cupy.cuda.cublas", {}, real=())  # only loaded: gpuad calls none of it
    nvrtc = Module("cupy.cuda.nvrtc", {"getVersion": _nvrtc_version})
    graph = Module("cupy.cuda.graph", {"Graph": _device.Graph})
    compiler = Module("cupy.cuda.compiler", {"CompileException": _raw.CompileException})
    cuda = Module("cupy.cuda", {
        **_public(_memory, memory_names), **_public(_device, ("Device", "Stream", "Event",
                                                              "Graph", "get_current_stream")),
        "get_device_id": _device.get_device_id, "is_available": lambda: True,
        "using_allocator": using_allocator, "runtime": runtime, "nvrtc": nvrtc,
        "memory": memory, "graph": graph, "compiler": compiler},
        lazy={"curand": _loaded("curand", curand), "cublas": _loaded("cublas", cublas)})
    random = Module("cupy.random", {"RandomState": _random.RandomState})
    special = Module("cupyx.scipy.special", {"erf": _special.erf})
    scipy = Module("cupyx.scipy", {"special": special})
    cupyx = Module("cupyx", {"scatter_add": _special.scatter_add, "scipy": scipy})

    attrs = {n: v for n, v in vars(_routines).items()
             if n in NAMES["modules"]["cupy"] and not n.startswith("_") and
             not isinstance(v, type(sys))}
    for n in NAMES["modules"]["cupy"]:  # dtypes, scalar types and constants are NumPy's
        v = getattr(np, n, NotImplemented)
        if n not in attrs and (isinstance(v, (type, float, int)) or v is None or
                               n in ("finfo", "iinfo", "issubdtype")):
            attrs[n] = v
    attrs.update(ndarray=ndarray, ufunc=ufunc, RawModule=_raw.RawModule,
                 RawKernel=_raw.RawKernel, cuda=cuda, random=random,
                 get_default_memory_pool=_memory.get_default_memory_pool, __version__=VERSION)
    cupy = Module("cupy", attrs)
    return {"cupy": cupy, "cupy.cuda": cuda, "cupy.cuda.runtime": runtime,
            "cupy.cuda.curand": curand, "cupy.cuda.memory": memory, "cupy.cuda.graph": graph,
            "cupy.cuda.compiler": compiler, "cupy.random": random, "cupyx": cupyx,
            "cupyx.scipy": scipy, "cupyx.scipy.special": special}


modules = _build()
_saved = {}


def install(target=None):
    """Make ``import cupy`` (and cupyx, and their submodules) give the stand-in."""
    target = sys.modules if target is None else target
    for name, module in modules.items():
        _saved.setdefault(name, target.get(name))
        target[name] = module
    return modules["cupy"]


def uninstall(target=None):
    target = sys.modules if target is None else target
    for name, module in _saved.items():
        if module is None:
            target.pop(name, None)
        else:
            target[name] = module
    _saved.clear()
