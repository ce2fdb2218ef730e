"""job=report on a real (tiny) multirun."""
from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from hwnas.errors import DataError
from hwnas.report import aggregate, collect_runs


def test_report_of_a_multirun(tmp_path):
    sweep = tmp_path / "sweep"
    args = [sys.executable, "-m", "hwnas", "-m", "job=profile", "search_space=nb201,fbnet", "profile.n=1", "seed=0,1", "logger=none",
            f"hydra.sweep.dir={sweep}"]
    assert subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300).returncode == 0
    runs = collect_runs([sweep])
    assert len(runs) == 4
    keys, metrics, table = aggregate(runs, metrics=["mflops_median"])
    assert keys == ["search_space"] and [label for label, _ in table] == [("nb201",), ("fbnet",)]
    assert all(cells["mflops_median"][2] == 2 for _, cells in table)  # two seeds each
    out = tmp_path / "r.md"
    done = subprocess.run([sys.executable, "-m", "hwnas", "job=report", f"report.dirs=[{sweep}]", f"report.output={out}",
                           "report.where=['search_space=fbnet']", "report.rows=[search_space]", "logger=none", f"hydra.run.dir={tmp_path}/rep"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "fbnet" in text and "nb201" not in text and " ± " in text
    rows = list(csv.DictReader(open(out.with_suffix(".csv"))))
    assert len(rows) == 1 and float(rows[0]["mflops_median_n"]) == 2
    # the same report again, its run dir beside the sweep (as a study keeps runs/report_<section> beside its sweeps):
    # the first report's metrics.json there is not a run of the table, the second run reads the same 4 runs
    again = [sys.executable, "-m", "hwnas", "job=report", f"report.dirs=[{tmp_path}]", "report.rows=[search_space]",
             f"report.output={tmp_path}/again.md", "logger=none", f"hydra.run.dir={tmp_path}/rep2"]
    for _ in range(2):
        done = subprocess.run(again, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "report of 4 runs" in done.stdout, done.stdout[-2000:]


def test_report_of_nothing(tmp_path):
    with pytest.raises(DataError, match="no metrics.json"):
        collect_runs([tmp_path])
    with pytest.raises(DataError, match="does not exist"):
        collect_runs([tmp_path / "nope"])


def test_inject_regenerates_a_readme_block(tmp_path):
    from hwnas.report import inject

    readme = tmp_path / "README.md"
    readme.write_text("# Study\n\nprose\n<!-- report:main -->\nold table\n<!-- /report:main -->\nmore prose\n")
    inject(readme, "main", "| a |\n|---|\n| 1 |\n")
    assert readme.read_text() == ("# Study\n\nprose\n<!-- report:main -->\n| a |\n|---|\n| 1 |\n<!-- /report:main -->\n"
                                  "more prose\n")
    inject(readme, "main", "| b |")  # idempotent on its own output
    assert "| b |" in readme.read_text() and "| a |" not in readme.read_text()
    with pytest.raises(DataError, match="no block for section 'other'.*<!-- report:other -->"):
        inject(readme, "other", "x")


# ---- published figures and plots on small fabricated multiruns ----------------------------------

def _fake_run(root, name, overrides, metrics, files=None):
    import json

    d = root / name
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (d / "metrics.json").write_text(json.dumps(metrics))
    for fname, text in (files or {}).items():
        (d / fname).write_text(text)
    return d


@pytest.fixture()
def sweep(tmp_path):
    """2 devices x 3 training-set sizes x 2 seeds; predictions.csv and front.csv in every run."""
    root = tmp_path / "sweep"
    i = 0
    for device, scale in (("a", 1.0), ("b", 2.0)):
        for n in (10, 100, 1000):
            for seed in (0, 1):
                rmse = scale / n ** 0.5 + 0.01 * seed
                _fake_run(root, str(i), [f"device.column={device}", f"train.samples={n}", f"seed={seed}"],
                          {"test/rmse_ms": rmse, "n_train": n},
                          {"predictions.csv": "arch,latency_ms,predicted_ms\nx,1.0,1.1\ny,10.0,9.5\n",
                           "front.csv": "arch,accuracy,predicted_latency_ms,true_latency_ms\nx,70,1.0,\ny,75,2.0,2.1\n"})
                i += 1
    return root


def _report(tmp_path, *overrides):
    from hwnas.cli import main  # noqa: F401  (the CLI is what users run)

    return subprocess.run([sys.executable, "-m", "hwnas", "job=report", "logger=none", f"hydra.run.dir={tmp_path}/rep",
                           *overrides], cwd=tmp_path, capture_output=True, text=True, timeout=300)


def _is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_published_figures_beside_their_metric(tmp_path, sweep):
    pub = tmp_path / "published.yaml"
    pub.write_text("source: Someone et al. 2020, Table 1\n"
                   "columns:\n  test/rmse_ms: published RMSE (ms)\n"
                   "  other: {metric: test/rmse_ms, header: Other, ratio: false}\n"
                   "rows:\n  - {device.column: a, train.samples: 100, test/rmse_ms: 0.2, other: 0.3}\n"
                   "  - {device.column: b, test/rmse_ms: 0.4}\n")
    readme = tmp_path / "README.md"
    readme.write_text("# Study\n<!-- report:main -->\n<!-- /report:main -->\nprose\n")
    out = tmp_path / "t.md"
    done = _report(tmp_path, f"report.dirs=[{sweep}]", "report.rows=[device.column,train.samples]",
                   "report.metrics=[test/rmse_ms,n_train]", f"report.published={pub}", f"report.output={out}",
                   f"report.readme={readme}", "report.section=main")
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert head == ["device.column", "train.samples", "test/rmse_ms", "published RMSE (ms)",
                    "ours / published RMSE (ms)", "Other", "n_train"]  # two published columns: the ratio names its own
    cells = {(r[0], r[1]): r for r in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:8])}
    ours = (1.0 / 100 ** 0.5) + 0.005  # mean over seeds 0, 1
    assert cells[("a", "100")][3:6] == ["0.2", f"{ours / 0.2:.2f}", "0.3"]
    assert cells[("a", "10")][3:6] == ["—", "—", "—"]
    assert all(cells[("b", n)][3] == "0.4" for n in ("10", "100", "1000"))  # a published row may name fewer keys
    assert "Published figures: Someone et al. 2020, Table 1" in out.read_text()
    assert "published RMSE (ms)" in readme.read_text() and readme.read_text().endswith("prose\n")
    rows = {(r["device.column"], r["train.samples"]): r for r in csv.DictReader(open(out.with_suffix(".csv")))}
    assert float(rows[("a", "100")]["published_test/rmse_ms"]) == 0.2
    assert float(rows[("a", "100")]["ratio_test/rmse_ms"]) == pytest.approx(ours / 0.2)
    assert rows[("a", "10")]["published_other"] == ""


@pytest.mark.parametrize("yaml_text, message", [
    (None, "report.published '.*' does not exist"),
    ("columns: {test/rmse_ms: x}\nrows:\n  - {search_space: nb201, test/rmse_ms: 1}\n",
     "row 0 has key 'search_space', neither a row column of this report \\(device.column, train.samples\\)"),
    ("columns: {test/acc: x}\nrows: []\n", "metric 'test/acc', which is not a metric of this report; metrics: test/rmse_ms"),
    ("columns: {test/rmse_ms: x}\nrows:\n  - {device.column: a, test/rmse_ms: fast}\n", "'fast', not a number"),
    ("rows: []\n", "needs a 'columns' mapping"),
])
def test_published_figures_bad_input(tmp_path, sweep, yaml_text, message):
    from hwnas.report import aggregate, load_published

    rows, metrics, _ = aggregate(collect_runs([sweep]), ["device.column", "train.samples"], ["test/rmse_ms"])
    pub = tmp_path / "published.yaml"
    if yaml_text is not None:
        pub.write_text(yaml_text)
    with pytest.raises(DataError, match=message):
        load_published(pub, rows, metrics)


def test_report_plots(tmp_path, sweep):
    readme_dir = tmp_path / "study"
    readme_dir.mkdir()
    readme = readme_dir / "README.md"
    readme.write_text("<!-- report:t -->\n<!-- /report:t -->\n")
    out = tmp_path / "tables" / "t.md"
    done = _report(tmp_path, f"report.dirs=[{sweep}]", "report.rows=[device.column,train.samples]",
                   "report.metrics=[test/rmse_ms,n_train]", f"report.output={out}", f"report.readme={readme}",
                   "report.section=t",
                   "report.plots=[{kind: line, x: train.samples, y: test/rmse_ms, logx: true}, {kind: line, x: n_train, "
                   "y: test/rmse_ms, by: [device.column], name: curve}, {kind: predictions}, {kind: pareto, title: Fronts}]")
    assert done.returncode == 0, done.stderr
    names = ["t_line_0.png", "t_curve.png", "t_predictions.png", "t_pareto.png"]
    assert all(_is_png(out.parent / n) for n in names)
    text = out.read_text()
    assert "![Fronts](t_pareto.png)" in text and all(f"]({n})" in text for n in names)
    assert all(f"](../tables/{n})" in readme.read_text() for n in names)  # links relative to the README


def test_line_plot_data(tmp_path, sweep, monkeypatch):
    """The line plot gets one series per group of the other row keys, mean and std over seeds, sorted by x."""
    import hwnas.plots
    from hwnas.report import aggregate, make_plots

    seen = {}
    monkeypatch.setattr(hwnas.plots, "line_plot", lambda path, series, **kw: seen.update(series=series, **kw))
    runs = collect_runs([sweep])
    rows, metrics, table = aggregate(runs, ["device.column", "train.samples"], ["test/rmse_ms"])
    make_plots([{"kind": "line", "x": "train.samples", "y": "test/rmse_ms"}], runs, rows, metrics, table, tmp_path / "t.md")
    (la, xa, ya, ea), (lb, *_rest) = seen["series"]
    assert (la, lb) == ("column=a", "column=b") and list(xa) == [10, 100, 1000]
    assert ya[1] == pytest.approx(0.1 + 0.005) and ea[1] == pytest.approx(0.01 / 2 ** 0.5)
    assert seen["xlabel"] == "train.samples" and seen["ylabel"] == "test/rmse_ms"


@pytest.mark.parametrize("spec, error, message", [
    ({"kind": "histogram"}, "ConfigError", "kind is 'histogram'; allowed: line, predictions, pareto"),
    ({"kind": "line", "x": "train.samples", "y": "test/acc"}, "ConfigError", "y is 'test/acc', not a metric of this report"),
    ({"kind": "line", "x": "lr", "y": "test/rmse_ms"}, "ConfigError", "x is 'lr', neither a row column"),
    ({"kind": "line", "x": "device.column", "y": "test/rmse_ms"}, "DataError", "non-numeric device.column='a'"),
    ({"kind": "pareto", "by": ["seed"]}, "ConfigError", "by names 'seed', not a row column"),
    ({"kind": "pareto", "file": "picks.csv"}, "DataError", "no run of this report has a 'picks.csv'"),
    ({"kind": "predictions", "y": "pred"}, "DataError", "has no column 'pred'; its columns: arch, latency_ms, predicted_ms"),
    ({"kind": "line", "colour": "red"}, "ConfigError", "unknown key 'colour'"),
])
def test_report_plots_bad_input(tmp_path, sweep, spec, error, message):
    import hwnas.errors
    from hwnas.report import aggregate, make_plots

    runs = collect_runs([sweep])
    rows, metrics, table = aggregate(runs, ["device.column", "train.samples"], ["test/rmse_ms"])
    with pytest.raises(getattr(hwnas.errors, error), match=message):
        make_plots([spec], runs, rows, metrics, table, tmp_path / "t.md")


# Studies whose README tables are still typed by hand (shrink this list as they are converted).
def test_study_tables_are_generated():
    """Every Markdown table of experiments/<study>/README.md and benchmarks/README.md lies inside a <!-- report:NAME --> block, i.e.
    is regenerated by job=report (or a study script through hwnas.report.inject), never typed by hand."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "experiments"
    typed = []
    for readme in [*sorted(root.glob("*/README.md")), root.parent / "benchmarks" / "README.md"]:
        block, fenced = None, False
        for n, line in enumerate(readme.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("```"):
                fenced = not fenced
            elif m := re.match(r"<!-- (/?)report:(\S+) -->", line.strip()):
                block = None if m.group(1) else m.group(2)
            elif line.lstrip().startswith("|") and not fenced and block is None:
                typed.append(f"{readme.relative_to(root.parent)}:{n}: {line[:60]}")
    assert not typed, "tables outside a report block (generate them with job=report):\n" + "\n".join(typed)
