"""Writes ``cupy_names.json``: the names the real CuPy offers, which bound what the stand-in
(``fake_cupy``) may offer. Run it with the real CuPy wheel installed (it imports without a
GPU): ``python tests/emulated/derive_cupy_names.py`` rewrites the file, ``--check`` exits 1
when the file is not what this CuPy gives.

Recorded: the public names of the modules and classes gpuad can reach, the attributes a
``RandomState`` sets in ``__init__`` (it cannot be made without a GPU), each ufunc's
``nin``, ``nout`` and type table, the integer constants of ``cupy.cuda.curand`` and
``cupy.cuda.runtime``, and the library modules ``cupy.cuda`` loads on first use (its
``__getattr__``: ``cublas``, ``curand``, ...; listed by name, as one whose library is not
installed cannot be imported).
"""
import inspect
import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).with_name("cupy_names.json")
MODULES = ["cupy", "cupy.cuda", "cupy.cuda.runtime", "cupy.cuda.curand", "cupy.cuda.graph",
           "cupy.cuda.memory", "cupy.cuda.compiler", "cupy.cuda.nvrtc", "cupy.random", "cupyx",
           "cupyx.scipy", "cupyx.scipy.special"]
CLASSES = ["cupy.ndarray", "cupy.ufunc", "cupy.RawModule", "cupy.RawKernel",
           "cupy.cuda.Device", "cupy.cuda.Stream", "cupy.cuda.Event", "cupy.cuda.Graph",
           "cupy.cuda.Memory", "cupy.cuda.UnownedMemory", "cupy.cuda.MemoryPointer",
           "cupy.cuda.MemoryPool", "cupy.random.RandomState",
           "cupy.cuda.runtime.CUDARuntimeError"]


def _resolve(dotted):
    import importlib
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for p in parts[1:]:
        obj = getattr(obj, p)
    return obj


def _public(obj):
    return sorted(n for n in dir(obj) if not n.startswith("_") or n in ("__version__",))


def derive():
    import cupy
    import cupyx.scipy.special  # noqa: F401  (imported on use, as gpuad does)
    cupy.cuda.curand  # noqa: B018  (a lazy attribute: listed once touched)
    out = {"version": cupy.__version__, "modules": {}, "classes": {}, "ufuncs": {},
           "constants": {}, "lazy": {"cupy.cuda": sorted(set(re.findall(
               r"key == '(\w+)'", inspect.getsource(cupy.cuda.__getattr__))))}}
    for name in MODULES:
        out["modules"][name] = _public(_resolve(name))
    for name in CLASSES:
        cls = _resolve(name)
        names = set(n for n in dir(cls) if not n.startswith("__"))
        if name == "cupy.random.RandomState":  # instance attributes, from its source
            names |= set(re.findall(r"self\.(\w+)\s*=", inspect.getsource(cls.__init__)))
        out["classes"][name] = sorted(names)
    for module in ("cupy", "cupyx.scipy.special"):
        for n in out["modules"][module]:
            f = getattr(_resolve(module), n)
            if isinstance(f, cupy.ufunc):
                out["ufuncs"][f"{module}.{n}"] = {"nin": f.nin, "nout": f.nout,
                                                  "types": list(f.types)}
    for module in ("cupy.cuda.curand", "cupy.cuda.runtime"):
        m = _resolve(module)
        out["constants"][module] = {n: getattr(m, n) for n in out["modules"][module]
                                    if type(getattr(m, n)) is int}
    return out


def main(argv):
    names = derive()
    text = json.dumps(names, indent=1, sort_keys=True) + "\n"
    if "--check" in argv:
        current = OUT.read_text() if OUT.exists() else ""
        if current != text:
            print(f"{OUT.name} is not what CuPy {names['version']} gives: run "
                  f"`python tests/emulated/{Path(__file__).name}` and commit the result")
            return 1
        print(f"{OUT.name} matches CuPy {names['version']}")
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT} from CuPy {names['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
