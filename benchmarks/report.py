"""The tables of a benchmark run, from its results.json: the results.md tables and the
README's table (``tests/test_benchmark_claims.py`` checks the README against it).

Ratios are to PyTorch in the same run, of the best blocks: each contender's lowest block
median over the rounds, divided by PyTorch's (``best_ratio``). On a shared machine the
best block is the one least disturbed by other load; the medians over all steps, with
min-max, are in results.md too.
"""
LABELS = {"gpuad": "gpuad", "gpuad_compiled": "gpuad compiled", "torch": "PyTorch",
          "torch_graphs": "PyTorch CUDA graphs", "floor": "NumPy by hand (no autograd)",
          "mygrad": "MyGrad", "autograd": "HIPS autograd",
          "torch_after_gpuad": "PyTorch after gpuad (same process)"}
#: the README table's columns, in order
README_COLUMNS = ("gpuad", "gpuad_compiled", "torch", "floor", "mygrad", "autograd")
OPTIMIZERS = {"sgd": "SGD momentum", "adam": "Adam"}


def ms(v):
    """A time in ms to three significant digits (``2.87``, ``68.4``, ``312``)."""
    return "-" if v is None else f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def best_ratio(row, who, other="torch"):
    """``who``'s best block median over ``other``'s, in one row; None if either is missing."""
    c = row["contenders"]
    if who not in c or other not in c:
        return None
    return min(c[who]["rounds_ms"]) / min(c[other]["rounds_ms"])


def row_label(row):
    sizes = "-".join(map(str, row["sizes"]))
    return (f"{row['config']} {sizes}, batch {row['batch']}, "
            f"{OPTIMIZERS.get(row['optimizer'], row['optimizer'])}")


def readme_table(results, device="cpu"):
    """The README's table: best-block ms per contender, and its ratio to PyTorch."""
    rows = [r for r in results["rows"] if r["device"] == device]
    torch_version = next((c["libraries"].get("torch") for r in rows
                          for w, c in r["contenders"].items() if w == "torch"), None)
    heads = [LABELS[w] + (f" {torch_version.split('+')[0]}" if w == "torch" and torch_version
                          else "") for w in README_COLUMNS]
    lines = ["| MLP training step, ms (x PyTorch) | " + " | ".join(heads) + " |",
             "|---" * (len(heads) + 1) + "|"]
    for r in rows:
        cells = []
        for w in README_COLUMNS:
            c = r["contenders"].get(w)
            if c is None:
                cells.append("")
                continue
            cell = ms(min(c["rounds_ms"]))
            ratio = best_ratio(r, w)
            cells.append(cell if w == "torch" or ratio is None else f"{cell} ({ratio:.2f}x)")
        lines.append(f"| {row_label(r)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _stats(c):
    return f"{ms(c['median_ms'])} [{ms(c['min_ms'])}-{ms(c['max_ms'])}]"


def mlp_table(results):
    """Per row and contender: best block, median [min-max] of all steps, ratios, first
    call, peak memory."""
    lines = ["| config | device | contender | best block ms | median ms [min-max] "
             "| x PyTorch (best blocks) | x PyTorch per round [min-max] | first step ms "
             "| peak MiB |", "|---" * 9 + "|"]
    for r in results["rows"]:
        for w, c in r["contenders"].items():
            ratio = best_ratio(r, w)
            t = r["contenders"].get("torch")
            per_round = "-" if t is None or w == "torch" else "{:.2f}-{:.2f}".format(*_span(
                [a / b for a, b in zip(c["rounds_ms"], t["rounds_ms"])]))
            peak = c.get("peak_mib")
            lines.append(
                f"| {r['config']} {r['optimizer']} | {r['device']} | {LABELS[w]} "
                f"| {ms(min(c['rounds_ms']))} | {_stats(c)} "
                f"| {'-' if ratio is None or w == 'torch' else f'{ratio:.2f}'} | {per_round} "
                f"| {c['first_call_ms']:.1f} | {'-' if peak is None else f'{peak:.1f}'} |")
    return "\n".join(lines)


def _span(values):
    return min(values), max(values)


def libraries_table(results):
    """What each contender's process ran on (versions, BLAS, threads)."""
    lines = ["| contender | libraries | BLAS (threadpoolctl) | threads |", "|---" * 4 + "|"]
    seen = set()
    for r in results["rows"]:
        for w, c in r["contenders"].items():
            if w in seen:
                continue
            seen.add(w)
            lib = c["libraries"]
            versions = ", ".join(f"{k} {v}" for k, v in lib.items()
                                 if isinstance(v, str) and k not in ("torch_blas", "gpuad_blas"))
            pools = lib.get("threadpools") or []
            blas = [f"{p['internal_api']} {p['version']} ({p['num_threads']} threads)"
                    for p in pools]
            if lib.get("gpuad_blas"):
                blas.insert(0, f"gpuad's matmul: {lib['gpuad_blas']}")
            if lib.get("torch_blas"):
                blas.insert(0, f"PyTorch: {lib['torch_blas']}")
            threads = ", ".join(f"{k} {lib[k]}" for k in ("gpuad_threads", "torch_threads")
                                if k in lib)
            lines.append(f"| {LABELS[w]} | {versions} | {'; '.join(blas) or '-'} "
                         f"| {threads or '-'} |")
    return "\n".join(lines)


def overhead_table(ops):
    lines = ["| op (4x4 float32) | device | gpuad us | raw us | overhead us | torch us |",
             "|---" * 6 + "|"]
    for o in ops:
        extra = o["gpuad_us"] - o["raw_us"] if o["raw_us"] is not None else None
        lines.append(f"| {o['op']} | {o['device']} | {o['gpuad_us']:.2f} | "
                     f"{_fmt(o['raw_us'])} | {_fmt(extra)} | {_fmt(o['torch_us'])} |")
    return "\n".join(lines)


def kernels_table(kerns):
    lines = ["| fused op (4M float32) | device | unfused ms | fused ms | speedup "
             "| % of copy bandwidth | used |", "|---" * 7 + "|"]
    for k in kerns:
        lines.append(f"| {k['op'].strip()} | {k['device']} | {k['plain_ms']:.3f} | "
                     f"{k['fused_ms']:.3f} | {k['speedup']:.2f}x | {k['pct_copy']:.0f} % | "
                     f"{'yes' if k['used'] else 'no'} |")
    return "\n".join(lines)


def _fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


README_START = "<!-- benchmark results: written by `python benchmarks/run.py --update-readme` -->"
README_END = "<!-- end of benchmark results -->"


def readme_block(results, folder):
    """The README's results paragraph, table and chart for the run in ``folder``
    (``benchmarks/results/<name>``)."""
    m = results["machine"]
    loads = [l[0] for r in results["rows"] for l in r["load"]]
    return (f"{README_START}\nLatest: CPU, {results['date']}, {m['cpu']}, {m['cores']} cores "
            f"(`{folder}/`, `{results['command']}`; load average {min(loads):.1f}-"
            f"{max(loads):.1f} during the MLP rows):\n\n{readme_table(results)}\n\n"
            f"![MLP step times]({folder}/chart.png)\n{README_END}")


def update_readme(text, results, folder):
    """``text`` (the README) with its results block replaced by this run's."""
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    return text[:start] + readme_block(results, folder) + text[end:]
