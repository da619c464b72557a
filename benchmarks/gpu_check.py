"""The one command to run the moment a GPU machine is lent: the whole test suite on the real
GPU, then the benchmark suite on cuda, each stage time-boxed (450 s in all by default, so
that the whole stays under 8 minutes; it has not run on a GPU yet), each stage's outcome
recorded even when one before it failed.

    PYTHONPATH=. python benchmarks/gpu_check.py [--budget 450] [--site DIR] [--out DIR]
    python benchmarks/gpu_check.py --dry-run    # the same orchestration here, without a GPU

Run it from the checkout with the machine's own Python (CuPy 14, Numba, a CUDA PyTorch: no
venv, nothing installed, no internet needed). ``--site DIR`` adds DIR to every process's
path: a folder of pure-Python packages the image may lack (pytest, hypothesis), made
beforehand with ``pip install --target DIR pytest hypothesis``. Stages:

1. ``environment``: the GPU as CuPy sees it (name, compute capability, memory), driver and
   runtime versions, library versions, ``gpuad.cuda.is_available()`` and why not.
2. ``tests``: ``pytest`` over ``tests/`` with ``GPUAD_TEST_CUDA=real``, the files spread
   over worker processes (one GPU, several cores); each test's outcome is read from the
   workers' logs, so a stage cut short keeps what finished. Left out: the wheel test (it
   installs gpuad's dependencies from the package index) and this script's own test.
3. ``bench``: the MLP rows on cuda, one ``bench_mlp.py`` process per row (gpuad eager and
   compiled, PyTorch, PyTorch with CUDA graphs and the CuPy floor, each in a process of its
   own), then the per-op overhead and the fused kernels; each written as it ends.

Everything goes to ``<out>/<date>-<device>/`` (the device's name from CuPy):
``gpu_check.json`` (rewritten after every stage), ``gpu_check.md`` (the summary), each
stage's logs and JSON, and ``results.json`` / ``results.md`` in ``run.py``'s format.

``--dry-run``: "cuda" is the emulated device of the test suite (``tests/emulated``; the
processes the benchmarks start get it through ``tests/emulated/site``), a few test files,
row T (tiny) with 2 steps, and the overhead and kernel races given a second each (they
time out: that path runs too). ``tests/test_gpu_check.py`` runs it.
"""
import argparse
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: the MLP rows, most telling first (overhead-bound S, compute-bound L)
ROWS = [("S", "sgd"), ("L", "sgd"), ("M", "sgd"), ("S", "adam"), ("L", "adam"), ("M", "adam")]
CONTENDERS = "gpuad,gpuad_compiled,torch,torch_graphs,floor"
#: the wheel test needs the package index; the dry run's test runs this script on the
#: emulated device, not the GPU
LEFT_OUT = ["tests/test_wheel.py", "tests/test_gpu_check.py"]
_OUTCOME = re.compile(r"^(tests/\S.*?::.+?) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b")
_CUDA_LINE = re.compile(r"cuda \((\w+)\): (\d+) of (\d+) device tests passed, (\d+) failed, "
                        r"(\d+) skipped")

ENV_PROBE = r"""
import json, platform
out = {"python": platform.python_version()}
for name in ("numpy", "numba", "cupy", "torch"):
    try:
        out[name] = __import__(name).__version__
    except Exception as e:
        out[name] = f"not importable: {type(e).__name__}: {e}"
import cupy
rt = cupy.cuda.runtime
p = rt.getDeviceProperties(0)
out["device"] = {"name": p["name"].decode(), "count": rt.getDeviceCount(),
                 "compute_capability": f"{p['major']}.{p['minor']}",
                 "memory_gib": round(p["totalGlobalMem"] / 2**30, 1),
                 "multiprocessors": p["multiProcessorCount"]}
out["driver_version"], out["runtime_version"] = rt.driverGetVersion(), rt.runtimeGetVersion()
try:
    import torch
    out["torch_cuda"] = {"available": torch.cuda.is_available(), "cuda": torch.version.cuda}
except Exception as e:
    out["torch_cuda"] = f"{type(e).__name__}: {e}"
import gpuad
out["gpuad_cuda_available"] = gpuad.cuda.is_available()
out["gpuad_unavailable_reason"] = gpuad.cuda.unavailable_reason()
print(json.dumps(out))
"""


class Check:
    """One run: the clock, the folder, the record (written after every stage)."""

    def __init__(self, args):
        self.args = args
        self.start = time.monotonic()
        self.deadline = self.start + args.budget
        self.record = {"date": datetime.date.today().isoformat(),
                       "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
                           timespec="seconds"),
                       "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                       "dry_run": args.dry_run, "budget_s": args.budget, "stages": {}}
        self.folder = None
        self.staging = Path(args.out) / f".gpu-check-{os.getpid()}"  # until the name is known
        self.staging.mkdir(parents=True, exist_ok=True)

    def left(self, reserve=0.0):
        return self.deadline - time.monotonic() - reserve

    @property
    def dir(self):
        return self.folder or self.staging

    def name_folder(self, device):
        slug = re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-") or "unknown-gpu"
        folder = Path(self.args.out) / f"{self.record['date']}-{slug}"
        if self.args.dry_run:
            folder = folder.with_name(folder.name + "-dry-run")
        folder.mkdir(parents=True, exist_ok=True)
        for f in self.staging.iterdir():
            f.replace(folder / f.name)
        self.staging.rmdir()
        self.folder = folder

    def env(self, gpu=True):
        """The environment of a stage's processes: this checkout (and --site) first on the
        path; in a dry run, the emulated device."""
        paths = [str(ROOT), *(str(Path(d).resolve()) for d in self.args.site)]
        if self.args.dry_run and gpu:
            paths.insert(0, str(ROOT / "tests" / "emulated" / "site"))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            paths + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
        env["GPUAD_TEST_CUDA"] = "emulated" if self.args.dry_run else "real"
        return env

    def stage(self, name, fn, box):
        """Run stage ``fn(box_s)`` within ``box`` seconds (and the budget) and record how it
        ended, whatever it raised."""
        box = min(box, self.left())
        entry = {"status": "skipped", "reason": "no time left"} if box < 1 else None
        t0 = time.monotonic()
        if entry is None:
            try:
                entry = fn(box)
            except Exception as e:  # noqa: BLE001  (a stage's failure is its record)
                entry = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
        entry["seconds"] = round(time.monotonic() - t0, 1)
        entry["box_s"] = round(box, 1)
        self.record["stages"][name] = entry
        self.save()
        for f in self.dir.iterdir():  # the results are committed: no machine's paths in them
            if f.suffix in (".log", ".json", ".md"):
                f.write_text(scrub(f.read_text(errors="replace")))
        print(f"[gpu_check] {name}: {entry['status']} in {entry['seconds']} s", flush=True)
        return entry

    def save(self):
        self.record["elapsed_s"] = round(time.monotonic() - self.start, 1)
        path = self.dir / "gpu_check.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.record, indent=2))
        tmp.replace(path)


#: this machine's paths, longest first, and what the committed results say instead
_PATHS = sorted({p: name for p, name in [(str(Path.home()), "~"), (sys.base_prefix, "<python>"),
                                         (sys.prefix, "<python>"), (str(ROOT), "<checkout>")]
                 if len(p) > 1}.items(), key=lambda pair: -len(pair[0]))


def scrub(text):
    """``text`` with the checkout's, Python's and the home folder's paths replaced by
    names (``<checkout>``, ``<python>``, ``~``)."""
    for path, name in _PATHS:
        text = text.replace(path, name)
    return text


def run(cmd, env, timeout, log, cwd=ROOT):
    """``cmd`` in a session of its own, output to ``log``; killed with its children after
    ``timeout`` s. Returns its exit status, or None when it ran out of time."""
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            return proc.wait(timeout=max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None


# --- stage 1 ----------------------------------------------------------------------------
def environment(check, box):
    log = check.dir / "environment.log"
    rc = run([sys.executable, "-c", ENV_PROBE], check.env(), box, log)
    text = log.read_text()
    if rc != 0:
        return {"status": "timed out" if rc is None else "failed",
                "error": text.strip().splitlines()[-1] if text.strip() else f"exit {rc}"}
    info = json.loads(text.strip().splitlines()[-1])
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                          "--format=csv,noheader"], capture_output=True, text=True) \
        if not check.args.dry_run and _has("nvidia-smi") else None
    if smi is not None and smi.returncode == 0:
        info["nvidia_smi"] = smi.stdout.strip()
    check.record["environment"] = info
    ok = info["gpuad_cuda_available"]
    return {"status": "ok" if ok else "failed", "device": info["device"]["name"],
            **({} if ok else {"error": info["gpuad_unavailable_reason"]})}


def _has(program):
    from shutil import which
    return which(program) is not None


# --- stage 2 ----------------------------------------------------------------------------
def test_files(selection):
    if selection:
        return selection
    return [str(p.relative_to(ROOT)) for p in sorted((ROOT / "tests").glob("test_*.py"))
            if str(p.relative_to(ROOT)) not in LEFT_OUT]


def shards(files, workers):
    """The files spread over ``workers`` lists, largest first onto the lightest (file
    size stands in for run time)."""
    sized = sorted(files, key=lambda f: -(ROOT / f.split("::")[0]).stat().st_size
                   if (ROOT / f.split("::")[0]).exists() else 0)
    bins = [[0, []] for _ in range(max(1, min(workers, len(sized))))]
    for f in sized:
        b = min(bins, key=lambda b: b[0])
        path = ROOT / f.split("::")[0]
        b[0] += path.stat().st_size if path.exists() else 1
        b[1].append(f)
    return [files for _, files in bins if files]


def tests(check, box):
    parts = shards(test_files(check.args.tests), check.args.workers)
    env = check.env(gpu=False)
    procs, logs, deadline = [], [], time.monotonic() + box
    for k, files in enumerate(parts):
        log = check.dir / f"tests-{k}.log"
        out = open(log, "w")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", *files], env=env,
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        logs.append((log, out))
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=max(deadline - time.monotonic(), 0.1)))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            codes.append(None)
    for _, out in logs:
        out.close()
    found = parse_test_logs([log for log, _ in logs])
    timed_out = codes.count(None)
    failed = found["counts"].get("FAILED", 0) + found["counts"].get("ERROR", 0)
    bad_exit = [c for c in codes if c not in (0, 1, None)]  # 1: some tests failed
    status = ("timed out" if timed_out else
              "failed" if failed or bad_exit or not found["counts"] else "ok")
    entry = {"status": status, "workers": len(parts), "exit_codes": codes,
             "left_out": LEFT_OUT if not check.args.tests else [], **found}
    if not found["counts"]:  # nothing ran: say why (no pytest: see --site)
        lines = logs[0][0].read_text(errors="replace").strip().splitlines()
        entry["error"] = lines[-1] if lines else f"exit {codes[0]}"
    return entry


def parse_test_logs(logs):
    """Each test's outcome (the worst it printed), the counts, the failures' summary lines
    and the suite's own count of cuda tests, from ``pytest -v`` logs (whole or cut short)."""
    rank = {"PASSED": 0, "XFAIL": 0, "SKIPPED": 0, "XPASS": 1, "FAILED": 2, "ERROR": 2}
    outcomes, summary, cuda, collected = {}, [], [0, 0, 0, 0], 0
    for log in logs:
        for line in Path(log).read_text(errors="replace").splitlines():
            m = _OUTCOME.match(line)
            if m:
                test, what = m.groups()
                if rank[what] >= rank.get(outcomes.get(test), -1):
                    outcomes[test] = what
                continue
            if line.startswith(("FAILED ", "ERROR ")) and "::" in line or \
                    line.startswith("ERROR tests/"):
                summary.append(line[:300])
            c = _CUDA_LINE.search(line)
            if c:
                cuda = [a + int(b) for a, b in zip(cuda, c.groups()[1:])]
            n = re.search(r"collected (\d+) items?", line)
            if n:
                collected += int(n.group(1))
    counts = {}
    for what in outcomes.values():
        counts[what] = counts.get(what, 0) + 1
    return {"collected": collected, "counts": counts, "failures": summary[:100],
            "cuda_tests": dict(zip(("passed", "of", "failed", "skipped"), cuda))}


# --- stage 3 ----------------------------------------------------------------------------
def bench(check, box):
    args, deadline = check.args, time.monotonic() + box
    env = check.env()
    rows, outcomes = [], {}
    extras = 0 if args.dry_run else 45  # kept back for the overhead and kernel races
    for config, optimizer in args.rows:
        left = deadline - time.monotonic() - extras
        key = f"{config} {optimizer}"
        if left < 5:
            outcomes[key] = "skipped: no time left"
            continue
        path, t0 = check.dir / f"mlp-{config}-{optimizer}.json", time.monotonic()
        rc = run([sys.executable, str(HERE / "bench_mlp.py"), "--device", "cuda", "--configs",
                  config, "--optimizer", optimizer, "--contenders", args.contenders,
                  "--steps", str(args.steps), "--rounds", str(args.rounds), "--json",
                  str(path)], env, min(args.row_s, left), path.with_suffix(".log"), HERE)
        if rc == 0 and path.exists():
            got = json.loads(path.read_text())["rows"]
            rows += got
            outcomes[key] = "ok: " + ", ".join(
                [f"{w} {c['median_ms']:.2f} ms" for r in got for w, c in r["contenders"].items()]
                + [f"{w} skipped ({why})" for r in got for w, why in r["skipped"].items()])
        else:
            outcomes[key] = "timed out" if rc is None else f"failed (exit {rc}, see " \
                                                          f"{path.with_suffix('.log').name})"
        outcomes[key] += f" [{time.monotonic() - t0:.0f} s]"
        check.record["mlp_rows"] = outcomes
        check.save()
    extra = {}
    for name, cmd, limit in (
            ("overhead", [str(HERE / "bench_overhead.py"), "--device", "cuda"], args.overhead_s),
            ("kernels", [str(HERE / "bench_kernels.py"), "--device", "cuda", "--sizes",
                         *map(str, args.kernel_sizes)], args.kernels_s)):
        left = deadline - time.monotonic()
        path = check.dir / f"{name}.json"
        if left < 2:
            extra[name] = "skipped: no time left"
            continue
        t0 = time.monotonic()
        rc = run([sys.executable, *cmd, "--json", str(path)], env, min(limit, left),
                 path.with_suffix(".log"), HERE)
        extra[name] = ("ok" if rc == 0 else "timed out" if rc is None else
                       f"failed (exit {rc})") + f" [{time.monotonic() - t0:.0f} s]"
    check.record["bench_extras"] = extra
    write_results(check, rows)
    done = sum(v.startswith("ok") for v in outcomes.values())
    status = "ok" if done == len(outcomes) and all(v.startswith("ok") for v in
                                                   extra.values()) else \
        "partial" if done else "failed"
    return {"status": status, "rows": outcomes, **extra}


def write_results(check, rows):
    """results.json and results.md in run.py's format (chart.png where matplotlib is)."""
    sys.path.insert(0, str(HERE))
    import run as suite
    from common import machine_info, write_json
    overhead = _read_json(check.dir / "overhead.json").get("ops", [])
    kernels = [{**r, "device": "cuda"} for r in
               _read_json(check.dir / "kernels.json").get("runs", [])]
    info = machine_info()
    device = check.record.get("environment", {}).get("device", {}).get("name")
    info["gpu"] = info.get("gpu") or device
    results = {"machine": info, "date": check.record["date"], "command": check.record["command"],
               "steps": check.args.steps, "rounds": check.args.rounds, "settle_s": 0.3,
               "rows": rows, "overhead": overhead, "kernels": kernels,
               "load_average_end": os.getloadavg(), "gpu_check": True}
    write_json(str(check.dir / "results.json"), results)
    if rows:
        suite.write_markdown(str(check.dir / "results.md"), results, check.record["command"],
                             f"{info['gpu']}, driver {_versions(check)}")
        try:
            suite.chart(results, f"MLP training step, {info['gpu']}, {results['date']}",
                        str(check.dir / "chart.png"))
        except ImportError:
            pass


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def _versions(check):
    env = check.record.get("environment", {})
    return f"{env.get('driver_version')}, CUDA runtime {env.get('runtime_version')}"


# --- the summary ------------------------------------------------------------------------
def summary(check):
    r, env = check.record, check.record.get("environment", {})
    dev = env.get("device", {})
    lines = [f"# gpuad GPU check, {r['date']}" + (" (dry run: emulated device)" if r["dry_run"]
                                                  else ""), "",
             f"`{r['command']}`, started {r['started']}, {r['elapsed_s']} s of a "
             f"{r['budget_s']} s budget.", "",
             f"Device: {dev.get('name', '?')} (compute capability "
             f"{dev.get('compute_capability', '?')}, {dev.get('memory_gib', '?')} GiB), driver "
             f"{env.get('driver_version', '?')}, CUDA runtime {env.get('runtime_version', '?')}; "
             + ", ".join(f"{k} {env[k]}" for k in ("python", "numpy", "numba", "cupy", "torch")
                         if k in env) + ".", "", "| stage | outcome | seconds |", "|---|---|---|"]
    for name, s in r["stages"].items():
        lines.append(f"| {name} | {s['status']}{': ' + s['error'] if 'error' in s else ''} "
                     f"| {s['seconds']} of {s['box_s']} |")
    t = r["stages"].get("tests", {})
    if "counts" in t:
        c = t["cuda_tests"]
        lines += ["", f"Tests: {t['collected']} collected, " + ", ".join(
            f"{v} {k.lower()}" for k, v in sorted(t["counts"].items())) +
            f"; on cuda: {c['passed']} of {c['of']} passed, {c['failed']} failed, "
            f"{c['skipped']} skipped (workers that finished). Left out: "
            f"{', '.join(t['left_out']) or 'nothing'}."]
        if t["failures"]:
            lines += ["", "Failures:", ""] + [f"- `{f}`" for f in t["failures"]]
    for key, outcome in r.get("mlp_rows", {}).items():
        lines.append(f"- MLP {key}: {outcome}")
    for key, outcome in r.get("bench_extras", {}).items():
        lines.append(f"- {key}: {outcome}")
    (check.dir / "gpu_check.md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=float, default=450, help="seconds for everything")
    p.add_argument("--tests-s", type=float, default=230, help="seconds for the test stage")
    p.add_argument("--row-s", type=float, default=40, help="seconds per MLP row at most")
    p.add_argument("--overhead-s", type=float, default=20)
    p.add_argument("--kernels-s", type=float, default=30)
    p.add_argument("--workers", type=int, default=min(6, os.cpu_count() or 1))
    p.add_argument("--tests", nargs="*", default=None,
                   help="pytest paths or node ids instead of the whole suite")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--contenders", default=CONTENDERS)
    p.add_argument("--site", action="append", default=[],
                   help="a folder of extra packages for every process (pytest, hypothesis)")
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--dry-run", action="store_true",
                   help="here, without a GPU: the emulated device, a few tests, row T")
    args = p.parse_args(argv)
    args.rows, args.kernel_sizes = ROWS, [1 << 20, 1 << 22]
    if args.dry_run:
        args.rows, args.kernel_sizes = [("T", "sgd")], [4096]
        args.steps, args.rounds, args.overhead_s, args.kernels_s = 2, 1, 1, 1
        args.tests = args.tests or ["tests/test_cuda_setup.py"]
    check = Check(args)
    env = check.stage("environment", lambda box: environment(check, box), 60)
    check.name_folder(env.get("device") or "unknown-gpu")
    check.stage("tests", lambda box: tests(check, box), args.tests_s)
    check.stage("bench", lambda box: bench(check, box), check.left(reserve=5))
    check.save()
    summary(check)
    print(f"[gpu_check] wrote {check.dir}/gpu_check.json, gpu_check.md", flush=True)
    return 0 if all(s["status"] == "ok" for s in check.record["stages"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
