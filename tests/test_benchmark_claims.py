"""The README's benchmark table is the one its results.json gives (benchmarks/report.py
writes both), and the files it points at exist."""
import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _report():
    spec = importlib.util.spec_from_file_location("bench_report",
                                                  ROOT / "benchmarks" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _benchmarks_section():
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Benchmarks")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def test_readme_table_is_the_one_results_json_gives():
    text = (ROOT / "README.md").read_text()
    section = _benchmarks_section()
    folders = set(re.findall(r"benchmarks/results/([\w.-]+)/", section))
    assert len(folders) == 1, f"the README's benchmark section names {folders or 'no'} " \
                              "results folder; it should name exactly the one its table is from"
    name = folders.pop()
    folder = ROOT / "benchmarks" / "results" / name
    results = json.loads((folder / "results.json").read_text())
    report = _report()
    assert report.readme_table(results) in section
    assert report.update_readme(text, results, f"benchmarks/results/{name}") == text, \
        "the README's results block differs from what its results.json gives; run " \
        "`python benchmarks/run.py --update-readme` (or paste its output)"
    assert (folder / "chart.png").is_file() and (folder / "results.md").is_file()


def test_readme_table_reads_the_numbers_it_shows():
    """The check above is not vacuous: a changed figure makes the table differ."""
    report = _report()
    results = {"rows": [{"config": "S", "sizes": [2, 2], "batch": 4, "device": "cpu",
                         "optimizer": "sgd", "contenders": {
                             "gpuad": {"rounds_ms": [2.0, 3.0], "libraries": {}},
                             "torch": {"rounds_ms": [4.0, 5.0],
                                       "libraries": {"torch": "2.13.0+cpu"}}}}]}
    table = report.readme_table(results)
    assert "| S 2-2, batch 4, SGD momentum | 2.00 (0.50x) |  | 4.00 |" in table
    assert "PyTorch 2.13.0 |" in table
    results["rows"][0]["contenders"]["gpuad"]["rounds_ms"] = [2.5, 3.0]
    assert report.readme_table(results) != table
