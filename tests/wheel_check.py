"""gpuad as a user installs it: build the wheel, install it into a fresh venv, and from a
folder outside the checkout run the README's first example, a compiled training step and
a check that the installed package holds every module and kernel source of the checkout.

    python tests/wheel_check.py [--work DIR]

The wheel is built the way pip builds it for a user (an isolated build environment, from
a copy of the checkout's files, so nothing is written into the checkout) and installed
with its declared dependencies, so a package left out of the wheel, a kernel source left
out of its data, or a missing dependency fails here. Exits 0 when everything passed;
tests/test_wheel.py runs it (started in the background at collection, see conftest).
"""
import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SKIP = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache", ".hypothesis",
         "runs"}

# run by the fresh venv's Python, from a folder outside the checkout: argv[1] is the JSON
# list of the checkout's modules and kernel files, argv[2] the README's first example
CHECK = textwrap.dedent('''
    import contextlib, importlib, io, json, pkgutil, sys
    from pathlib import Path

    expected = json.loads(sys.argv[1])
    import gpuad
    home = Path(gpuad.__file__).parent
    assert Path(sys.prefix) in home.parents, f"gpuad imported from {home}, not the venv"
    found = sorted(m.name for m in pkgutil.walk_packages([str(home)], "gpuad."))
    missing = sorted(set(expected["modules"]) - set(found) - {"gpuad"})
    assert not missing, f"modules missing from the wheel: {missing}"
    for name in found:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:  # the CUDA glue imports CuPy, not installed here
            if e.name != "cupy":
                raise

    from gpuad.kernels_loader import kernels_dir
    from gpuad.backends.cuda_kernels import module_source
    kdir = kernels_dir()
    assert kdir == home / "kernels", f"kernels loaded from {kdir}, not the installed package"
    shipped = sorted(p.name for p in kdir.iterdir() if p.suffix in (".cu", ".cuh"))
    assert shipped == expected["kernels"], f"kernel sources: {shipped} != {expected['kernels']}"
    for name in shipped:
        if name.endswith(".cu"):
            assert "#include" not in module_source(name[:-3]).replace("#include <", "")

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(sys.argv[2], {})
    first = out.getvalue().splitlines()[0]
    assert first == "tensor(4.) tensor(-4.)", f"the README's first example printed {first!r}"

    from gpuad import nn
    gpuad.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = gpuad.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    @gpuad.compile
    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()
    x, y = gpuad.randn(32, 8), gpuad.randint(0, 3, (32,))
    losses = [step(x, y).item() for _ in range(6)]
    assert step.stats["replayed"] >= 3, step.stats
    assert losses[-1] < losses[0], losses
    print(json.dumps({"gpuad": str(home), "modules": len(found), "kernels": shipped,
                      "compiled": step.stats, "losses": [round(v, 4) for v in losses]}))
''')


def first_example():
    """The Python block under the README's "A first look"."""
    text = (ROOT / "README.md").read_text()
    m = re.search(r"## A first look\s+```python\n(.*?)```", text, re.S)
    if m is None:
        raise SystemExit("README.md has no ```python block under '## A first look'")
    return m.group(1)


def expected():
    """The checkout's modules (``gpuad.*``, kernels/ as ``gpuad.kernels``) and kernel sources."""
    def dotted(path, package):
        name = ".".join((package,) + path.with_suffix("").parts)
        return name[:-len(".__init__")] if name.endswith(".__init__") else name
    modules = [dotted(p.relative_to(ROOT / "gpuad"), "gpuad") for p in (ROOT / "gpuad").rglob("*.py")]
    modules += [dotted(p.relative_to(ROOT / "kernels"), "gpuad.kernels")
                for p in (ROOT / "kernels").glob("*.py")]
    kernels = sorted(p.name for p in (ROOT / "kernels").iterdir() if p.suffix in (".cu", ".cuh"))
    return {"modules": sorted(modules), "kernels": kernels}


def _copy_tree(dest):
    """The checkout's files as a fresh clone would have them (no build outputs)."""
    def ignore(folder, names):
        return [n for n in names if n in _SKIP or n.endswith((".egg-info", ".pyc"))]
    shutil.copytree(ROOT, dest, ignore=ignore)


def _run(cmd, what, **kw):
    print("$ " + " ".join(str(c) if len(str(c)) < 80 else "..." for c in cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode:
        raise SystemExit(f"{what} failed (exit {r.returncode}):\n{r.stdout[-3000:]}\n"
                         f"{r.stderr[-3000:]}")
    return r.stdout


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", help="folder for the copy, the wheel and the venv (default: "
                                  "a temporary one, removed after)")
    args = p.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="gpuad-wheel-"))
    try:
        src, dist, venv, outside = (work / n for n in ("src", "dist", "venv", "outside"))
        for d in (src, dist, venv, outside):
            shutil.rmtree(d, ignore_errors=True)
        _copy_tree(src)
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, src],
             "building the wheel")
        wheel, = dist.glob("gpuad-*.whl")
        _run([sys.executable, "-m", "venv", "--without-pip", venv], "making the venv")
        python = venv / "bin" / "python"
        _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", wheel],
             "installing the wheel and its dependencies")
        outside.mkdir()
        out = _run([python, "-c", CHECK, json.dumps(expected()), first_example()],
                   "the checks from outside the checkout", cwd=outside)
        print(out.strip().splitlines()[-1])
        print(f"wheel check passed: {wheel.name}")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
