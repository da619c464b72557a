"""Checks gpuad against the real CuPy wheel, which imports and compiles without a GPU:

* every CuPy attribute gpuad's source names (``cupy.X``, ``cupyx.X``, ``<backend>.xp.X``,
  ``self._cupy.X``, ``import cupyx...``) exists in this CuPy;
* every ``kernels/*.cu`` module compiles through NVRTC with the options CuPy's RawModule
  compiles with (``assemble_cupy_compiler_options``, then ``-ftz=true`` and CuPy's
  ``-arch=sm_XX``), for sm_80 and sm_90;
* ``cupy_names.json`` (what the stand-in may offer) is what this CuPy gives.

Run by tests/test_real_cupy.py in a process of its own (the test run's ``cupy`` is the
stand-in); prints one JSON object.
"""
import ast
import concurrent.futures
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARCHS = ("80", "90")


def attributes_gpuad_uses():
    """Dotted CuPy names in gpuad's source, e.g. ``cupy.cuda.curand.setGeneratorOffset``."""
    found = set()
    for path in sorted((ROOT / "gpuad").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.split(".")[0] in
                             ("cupy", "cupyx"))
            if not isinstance(node, ast.Attribute):
                continue
            chain, base = [], node
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            chain.reverse()
            if isinstance(base, ast.Name) and base.id in ("cupy", "cupyx"):
                found.add(".".join([base.id] + chain))
            elif isinstance(base, ast.Name) and base.id == "xp" and chain:
                found.add(".".join(["cupy"] + chain))
            elif "xp" in chain[:-1] or "_cupy" in chain[:-1]:
                k = chain.index("xp") if "xp" in chain[:-1] else chain.index("_cupy")
                found.add(".".join(["cupy"] + chain[k + 1:]))
    return {name for name in found if name.count(".") >= 1 or name in ("cupy", "cupyx")}


def _resolve(dotted):
    import importlib
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, p in enumerate(parts[1:], 1):
        try:
            obj = getattr(obj, p)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[:i + 1]))
    return obj


def check_attributes():
    """``ok`` for each name that resolves; a library module ``cupy.cuda`` loads on first use
    (its ``__getattr__``: cuBLAS, cuRAND, ...) whose library is not installed here is
    ``ok (...)``: the name exists, loading it is what gpuad's backend checks."""
    names = json.loads((Path(__file__).with_name("cupy_names.json")).read_text())
    lazy = {f"cupy.cuda.{n}" for n in names["lazy"]["cupy.cuda"]}
    out = {}
    for name in sorted(attributes_gpuad_uses()):
        try:
            _resolve(name)
            out[name] = "ok"
        except ImportError as e:
            out[name] = (f"ok (its library is not installed here: {e})"
                         if ".".join(name.split(".")[:3]) in lazy else
                         f"{type(e).__name__}: {e}")
        except Exception as e:  # noqa: BLE001  (what failed is the report)
            out[name] = f"{type(e).__name__}: {e}"
    return out


def check_compiles():
    sys.path.insert(0, str(ROOT))
    from cupy._core import core
    from cupy.cuda import compiler
    from gpuad.backends.cuda_kernels import module_source
    # CuPy memoizes this per current device, which needs a GPU; the function itself does
    # not, given the architecture
    compiler._get_arch_for_options_for_nvrtc = \
        compiler._get_arch_for_options_for_nvrtc.__wrapped__
    options = core.assemble_cupy_compiler_options(()) + ("-ftz=true",)
    jobs = {f"{p.stem}.cu sm_{arch}": (module_source(p.stem), arch, p.name)
            for p in sorted((ROOT / "kernels").glob("*.cu")) for arch in ARCHS}

    def compile_one(job):
        source, arch, name = job
        try:
            binary, _ = compiler._compile_using_nvrtc_no_warning(source, options, arch, name)
            return f"ok ({len(binary)} bytes)"
        except Exception as e:  # noqa: BLE001
            return f"{type(e).__name__}: {e}"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # NVRTC releases the GIL
        results = dict(zip(jobs, pool.map(compile_one, jobs.values())))
    return {"options": list(options), "results": results}


def check_names():
    sys.path.insert(0, str(Path(__file__).parent))
    import derive_cupy_names
    current = json.loads(derive_cupy_names.OUT.read_text())
    derived = json.loads(json.dumps(derive_cupy_names.derive()))
    diff = {}
    for section in derived:
        if derived[section] != current.get(section):
            diff[section] = "differs"
    return diff


def main():
    import cupy
    names = check_names()  # first: importing more of CuPy adds names to its modules
    print(json.dumps({"version": cupy.__version__, "names_diff": names,
                      "attributes": check_attributes(), "compiles": check_compiles()}))


if __name__ == "__main__":
    main()
