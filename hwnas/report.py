"""Collect the runs of Hydra multiruns and tabulate their metrics (mean ± std over repeats)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from hwnas.errors import DataError

IGNORED_OVERRIDES = ("seed", "hydra.", "paths.", "logger")


@dataclass
class Run:
    path: Path
    overrides: dict[str, str]
    metrics: dict[str, float]


def _natural(path: Path) -> list:
    """Sort key that puts run 2 before run 10."""
    return [int(part) if part.isdigit() else part for part in path.parts]


def collect_runs(dirs: Sequence[str | Path]) -> list[Run]:
    """Every ``metrics.json`` under ``dirs`` with the overrides of its run (``.hydra/overrides.yaml``)."""
    runs = []
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise DataError(f"report directory '{d}' does not exist")
        for m in sorted(d.rglob("metrics.json"), key=_natural):
            ov_file = m.parent / ".hydra" / "overrides.yaml"
            overrides = {}
            if ov_file.exists():
                for item in yaml.safe_load(ov_file.read_text()) or []:
                    key, _, value = item.partition("=")
                    overrides[key.lstrip("+~")] = value.strip("'\"")
            runs.append(Run(m.parent, overrides, json.loads(m.read_text())))
    if not runs:
        raise DataError(f"no metrics.json found under {', '.join(str(d) for d in dirs)}")
    return runs


def varying_keys(runs: Sequence[Run]) -> list[str]:
    keys = sorted({k for r in runs for k in r.overrides})
    return [k for k in keys if not k.startswith(IGNORED_OVERRIDES)
            and len({r.overrides.get(k) for r in runs}) > 1]


def aggregate(runs: Sequence[Run], rows: Sequence[str] | None = None, metrics: Sequence[str] | None = None):
    """``(row keys, metric names, [(row values, {metric: (mean, std, n)})])`` in first-seen order."""
    rows = list(rows) if rows else varying_keys(runs)
    metrics = list(metrics) if metrics else sorted({k for r in runs for k in r.metrics})
    groups: dict[tuple, list[Run]] = {}
    for r in runs:
        groups.setdefault(tuple(r.overrides.get(k, "") for k in rows), []).append(r)
    table = []
    for label, members in groups.items():
        cells = {}
        for m in metrics:
            vals = np.array([r.metrics[m] for r in members if m in r.metrics], dtype=float)
            cells[m] = (float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0, len(vals)) if len(vals) else None
        table.append((label, cells))
    return rows, metrics, table


def _fmt(x: float, digits: int) -> str:
    return f"{x:.{digits}g}" if abs(x) < 10 ** digits else f"{x:.0f}"


def to_markdown(rows, metrics, table, digits: int = 3, title: str | None = None) -> str:
    head = [*rows, *metrics]
    lines = [f"## {title}", ""] if title else []
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, cells in table:
        vals = []
        for m in metrics:
            c = cells[m]
            if c is None:
                vals.append("")
            elif c[2] > 1:
                vals.append(f"{_fmt(c[0], digits)} ± {_fmt(c[1], max(1, digits - 1))}")
            else:
                vals.append(_fmt(c[0], digits))
        lines.append("| " + " | ".join([*label, *vals]) + " |")
    return "\n".join(lines) + "\n"


def to_csv_rows(rows, metrics, table):
    header = [*rows] + [x for m in metrics for x in (f"{m}_mean", f"{m}_std", f"{m}_n")]
    body = []
    for label, cells in table:
        body.append([*label] + [x for m in metrics for x in (cells[m] if cells[m] else ("", "", 0))])
    return header, body


def inject(readme: str | Path, section: str, markdown: str) -> Path:
    """Replace the block between ``<!-- report:<section> -->`` and ``<!-- /report:<section> -->`` in
    ``readme`` with ``markdown`` (a study's README keeps its prose; its tables are regenerated)."""
    from hwnas.errors import DataError
    from hwnas.io import atomic_write_text

    path = Path(readme)
    if not path.exists():
        raise DataError(f"report.readme '{path}' does not exist")
    text = path.read_text(encoding="utf-8")
    begin, end = f"<!-- report:{section} -->", f"<!-- /report:{section} -->"
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        raise DataError(f"report.readme '{path}' has no block for section {section!r}: add the lines {begin!r} and "
                        f"{end!r} where the table belongs")
    atomic_write_text(path, text[: i + len(begin)] + "\n" + markdown.strip() + "\n" + text[j:])
    return path
