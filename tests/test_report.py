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
