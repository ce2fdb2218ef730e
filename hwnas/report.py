"""Collect the runs of Hydra multiruns and tabulate their metrics (mean ± std over repeats)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from hwnas.errors import DataError, choices_text
from hwnas.runs import RECORD, SUPERSEDED, read_record

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
            if SUPERSEDED in m.relative_to(d).parts[:-1]:
                continue  # results of an earlier config of that run dir (hwnas.runs), not of its config
            if _is_report(m.parent):
                continue  # a job=report's own counts (a study's report dirs sit beside its sweeps under runs/)
            ov_file = m.parent / ".hydra" / "overrides.yaml"
            items = (yaml.safe_load(ov_file.read_text()) or []) if ov_file.exists() else []
            runs.append(Run(m.parent, _overrides(items), json.loads(m.read_text())))
    if not runs:
        raise DataError(f"no metrics.json found under {', '.join(str(d) for d in dirs)}")
    return runs


def _is_report(run_dir: Path) -> bool:
    """Whether ``run_dir`` is a job=report run (its record says so): its metrics describe a table, not a result."""
    return (read_record(run_dir) or {}).get("job") == "report"


def _overrides(items: Sequence[str]) -> dict[str, str]:
    """``{key: value}`` of Hydra's command-line overrides (``+key=value``, ``~key`` included)."""
    out = {}
    for item in items:
        key, _, value = str(item).partition("=")
        out[key.lstrip("+~")] = value.strip("'\"")
    return out


def collect_wandb_runs(dirs: Sequence[str | Path]) -> tuple[list[Run], list[tuple[Path, dict]]]:
    """``report.source=wandb``: the W&B runs under ``dirs`` (``hwnas.wandb_runs``) that finished (exit code 0),
    each with the overrides its config records (a Hydra run's ``overrides``) and the numbers of its summary
    (the job's final metrics); beside them the runs that did not finish, as ``(folder, {status, error})``."""
    from hwnas.wandb_runs import read_run, run_folders, started

    runs, unfinished = [], []
    for d in dirs:
        if not Path(d).is_dir():
            raise DataError(f"report directory '{d}' does not exist")
        for run in sorted((read_run(f) for f in run_folders(d)), key=started):  # a sweep's rows in job order
            folder = run.folder
            if run.exit_code != 0:
                status = "running or killed" if run.exit_code is None else "failed"
                unfinished.append((folder, {"status": status, "error": f"W&B exit code {run.exit_code}"}))
                continue
            metrics = {k: float(v) for k, v in run.summary.items() if not k.startswith("_")
                       and isinstance(v, (int, float)) and not isinstance(v, bool)}
            runs.append(Run(folder, _overrides(run.config.get("overrides") or []), metrics))
    if not runs:
        raise DataError(f"no finished W&B run found under {', '.join(str(d) for d in dirs)} (report.source=wandb "
                        f"reads the run-*.wandb files of runs logged with logger=wandb)")
    return runs, unfinished


def unfinished_runs(dirs: Sequence[str | Path]) -> list[tuple[Path, dict]]:
    """Run dirs under ``dirs`` whose job failed, was interrupted or is still running (no result to report)."""
    out = []
    for d in dirs:
        for rec_file in sorted(Path(d).rglob(RECORD), key=_natural):
            if (SUPERSEDED in rec_file.relative_to(d).parts[:-1] or (rec_file.parent / "metrics.json").exists()
                    or _is_report(rec_file.parent)):
                continue
            record = read_record(rec_file.parent) or {}
            if record.get("status") != "finished":
                out.append((rec_file.parent, record))
    return out


def varying_keys(runs: Sequence[Run]) -> list[str]:
    keys = sorted({k for r in runs for k in r.overrides})
    return [k for k in keys if not k.startswith(IGNORED_OVERRIDES)
            and len({r.overrides.get(k) for r in runs}) > 1]


def aggregate(runs: Sequence[Run], rows: Sequence[str] | None = None, metrics: Sequence[str] | None = None):
    """``(row keys, metric names, [(row values, {metric: (mean, std, n)})])`` in first-seen order."""
    import pandas as pd

    rows = list(rows) if rows else varying_keys(runs)
    metrics = list(metrics) if metrics else sorted({k for r in runs for k in r.metrics})
    labels = [tuple(r.overrides.get(k, "") for k in rows) for r in runs]
    values = pd.DataFrame([[r.metrics.get(m, np.nan) for m in metrics] for r in runs], columns=metrics, dtype=float)
    # one group per label, in first-seen order; mean, sample std (0 for one run) and count of the runs that have it
    stats = values.groupby(pd.factorize(pd.Series(labels, dtype=object))[0]).agg(["mean", "std", "count"]) \
        if metrics else None
    firsts = list(dict.fromkeys(labels))
    table = []
    for g, label in enumerate(firsts):
        cells = {}
        for m in metrics:
            mean, std, n = (stats.loc[g, (m, k)] for k in ("mean", "std", "count"))
            cells[m] = (float(mean), float(std) if n > 1 else 0.0, int(n)) if n else None
        table.append((label, cells))
    return rows, metrics, table


def _fmt(x: float, digits: int) -> str:
    return f"{x:.{digits}g}" if abs(x) < 10 ** digits else f"{x:.0f}"


def _cell(c, digits: int) -> str:
    if c is None:
        return ""
    if c[2] > 1:
        return f"{_fmt(c[0], digits)} ± {_fmt(c[1], max(1, digits - 1))}"
    return _fmt(c[0], digits)


def _ratio_header(pub: "Published", col: "PublishedColumn") -> str:
    return "ours / published" if len(pub.for_metric(col.metric)) == 1 else f"ours / {col.header}"


def to_markdown(rows, metrics, table, digits: int = 3, title: str | None = None,
                published: "Published | None" = None) -> str:
    """A Markdown table; with ``published``, each published column (and its ratio ours / published)
    right after its metric, "—" where a row has no published figure, and the source under the table."""
    head = list(rows)
    for m in metrics:
        head.append(m)
        for col in published.for_metric(m) if published else []:
            head += [col.header] + ([_ratio_header(published, col)] if col.ratio else [])
    lines = [f"## {title}", ""] if title else []
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, cells in table:
        pub = published.values(rows, label) if published else {}
        vals = []
        for m in metrics:
            vals.append(_cell(cells[m], digits))
            for col in published.for_metric(m) if published else []:
                p = pub.get(col.id)
                vals.append("—" if p is None else f"{p:g}")  # a published figure as published
                if col.ratio:
                    vals.append("—" if p is None or cells[m] is None or p == 0 else f"{cells[m][0] / p:.2f}")
        lines.append("| " + " | ".join([*label, *vals]) + " |")
    if published and published.source:
        lines += ["", f"Published figures: {published.source}"]
    return "\n".join(lines) + "\n"


def to_csv_rows(rows, metrics, table, published: "Published | None" = None):
    header = list(rows)
    for m in metrics:
        header += [f"{m}_mean", f"{m}_std", f"{m}_n"]
        for col in published.for_metric(m) if published else []:
            header += [f"published_{col.id}"] + ([f"ratio_{col.id}"] if col.ratio else [])
    body = []
    for label, cells in table:
        pub = published.values(rows, label) if published else {}
        line = list(label)
        for m in metrics:
            line += list(cells[m]) if cells[m] else ["", "", 0]
            for col in published.for_metric(m) if published else []:
                p = pub.get(col.id)
                line.append("" if p is None else p)
                if col.ratio:
                    line.append("" if p is None or cells[m] is None or p == 0 else cells[m][0] / p)
        body.append(line)
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


# ---- published figures beside ours ------------------------------------------------------------

@dataclass
class PublishedColumn:
    id: str        # key of the value in each published row
    metric: str    # the report's metric column it sits beside
    header: str
    ratio: bool    # add an "ours / published" column


@dataclass
class Published:
    """Published figures of a study (``report.published=<yaml>``), matched to report rows by their
    row keys. The YAML::

        source: "Syed et al., Table 3"        # printed under the table
        columns:                               # published column -> the metric it sits beside
          test/rmse_ms: published RMSE (ms)    #   shorthand: the key is the metric, the value the header
          nasflat: {metric: spearman_mean, header: NASFLAT, ratio: false}   # several per metric
        rows:                                  # row keys of the report (a subset is fine) + values
          - {search_space: ofa_mbv3, device.column: note10_lut, test/rmse_ms: 0.325}
    """
    path: Path
    source: str
    columns: list[PublishedColumn]
    rows: list[tuple[dict[str, str], dict[str, float]]]

    def for_metric(self, metric: str) -> list[PublishedColumn]:
        return [c for c in self.columns if c.metric == metric]

    def values(self, row_keys: Sequence[str], label: Sequence[str]) -> dict[str, float]:
        """The published values of the first published row whose keys all match ``label``."""
        for keys, values in self.rows:
            if all(_same(label[row_keys.index(k)], v) for k, v in keys.items()):
                return values
        return {}


def _same(ours: str, published: str) -> bool:
    if ours == published:
        return True
    try:
        return float(ours) == float(published)
    except ValueError:
        return False


def load_published(path: str | Path, rows: Sequence[str], metrics: Sequence[str]) -> Published:
    """Read and check a published-figures YAML against the report's row keys and metrics."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"report.published '{path}' does not exist (a YAML with source, columns and rows)")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise DataError(f"report.published '{path}' is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("columns"), dict) or not isinstance(doc.get("rows"), list):
        raise DataError(f"report.published '{path}' needs a 'columns' mapping and a 'rows' list (and a 'source')")
    columns = []
    for cid, spec in doc["columns"].items():
        cid = str(cid)
        spec = {"metric": cid, "header": spec} if not isinstance(spec, dict) else spec
        metric = str(spec.get("metric", cid))
        if metric not in metrics:
            raise DataError(f"report.published '{path}': column '{cid}' sits beside metric '{metric}', which is not a "
                            f"metric of this report; metrics: {choices_text(metrics)}")
        columns.append(PublishedColumn(cid, metric, str(spec.get("header") or f"published {metric}"),
                                       bool(spec.get("ratio", True))))
    ids = {c.id for c in columns}
    parsed = []
    for i, row in enumerate(doc["rows"]):
        if not isinstance(row, dict):
            raise DataError(f"report.published '{path}': row {i} is not a mapping of row keys and values")
        keys, values = {}, {}
        for k, v in row.items():
            k = str(k)
            if k in ids:
                if v is None:
                    continue
                try:
                    values[k] = float(v)
                except (TypeError, ValueError):
                    raise DataError(f"report.published '{path}': row {i} gives '{k}' the value {v!r}, not a number") from None
            elif k in rows:
                keys[k] = str(v)
            else:
                raise DataError(f"report.published '{path}': row {i} has key '{k}', neither a row column of this report "
                                f"({choices_text(rows) or 'none'}) nor a published column ({choices_text(sorted(ids))})")
        parsed.append((keys, values))
    return Published(path, str(doc.get("source") or ""), columns, parsed)


# ---- plots of the report's runs -----------------------------------------------------------------

PLOT_KINDS = {  # kind -> default (file, x, y); line plots read the table, the others a CSV of each run
    "line": (None, None, None),
    "predictions": ("predictions.csv", "latency_ms", "predicted_ms"),
    "pareto": ("front.csv", "predicted_latency_ms", "accuracy"),
}
PLOT_KEYS = ("kind", "x", "y", "by", "file", "title", "name", "logx", "logy")


def _label(keys: Sequence[str], values: Sequence[str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(keys, values))


def _read_columns(path: Path, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    import csv

    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in (x, y) if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"'{path}' has no column {', '.join(repr(c) for c in missing)}; its columns: "
                            f"{choices_text(reader.fieldnames or [])}")
        pairs = [(row[x], row[y]) for row in reader]
    as_float = lambda v: float(v) if v not in ("", None) else np.nan  # noqa: E731
    return (np.array([as_float(a) for a, _ in pairs], dtype=float), np.array([as_float(b) for _, b in pairs], dtype=float))


def make_plots(specs, runs: Sequence[Run], rows: Sequence[str], metrics: Sequence[str], table, output: Path):
    """Draw ``report.plots`` beside ``output``: ``[(png path, caption)]``.

    - ``line``: metric ``y`` vs ``x`` (a numeric row key, or a metric: its mean), one line per group of the
      ``by`` row keys (default: the row keys other than ``x``), error bars = std over seeds;
    - ``predictions``: ``y`` (predicted) vs ``x`` (true) from each run's ``file``, log-log, one colour per
      group of the ``by`` row keys (default: all);
    - ``pareto``: the accuracy-latency fronts of each run's ``file``, one colour per group.
    """
    from hwnas.errors import ConfigError
    from hwnas.plots import fronts_plot, line_plot, predicted_vs_true_plot

    out = []
    kinds = [dict(s).get("kind") for s in specs]
    for i, spec in enumerate(specs):
        spec = dict(spec)
        where = f"report.plots[{i}]"
        kind = spec.get("kind")
        if kind not in PLOT_KINDS:
            raise ConfigError(f"{where}.kind is {kind!r}; allowed: {choices_text(PLOT_KINDS)}")
        unknown = [k for k in spec if k not in PLOT_KEYS]
        if unknown:
            raise ConfigError(f"{where} has unknown key {unknown[0]!r}; allowed: {choices_text(PLOT_KEYS)}")
        file, x, y = (spec.get(k) or d for k, d in zip(("file", "x", "y"), PLOT_KINDS[kind]))
        name = spec.get("name") or (kind if kinds.count(kind) == 1 else f"{kind}_{i}")
        path = output.parent / f"{output.stem}_{name}.png"
        by = list(spec["by"]) if spec.get("by") is not None else [k for k in rows if k != x]
        bad = [k for k in by if k not in rows]
        if bad:
            raise ConfigError(f"{where}.by names {bad[0]!r}, not a row column of this report; row columns: "
                              f"{choices_text(rows) or 'none'}")
        title = spec.get("title") or ""
        if kind == "line":
            if y not in metrics:
                raise ConfigError(f"{where}.y is {y!r}, not a metric of this report; metrics: {choices_text(metrics)}")
            if x not in rows and x not in metrics:
                raise ConfigError(f"{where}.x is {x!r}, neither a row column ({choices_text(rows) or 'none'}) nor a "
                                  f"metric ({choices_text(metrics)}) of this report")
            series: dict[tuple, list] = {}
            for label, cells in table:
                if cells[y] is None or (x in metrics and cells[x] is None):
                    continue
                if x in rows:
                    try:
                        xv = float(label[list(rows).index(x)])
                    except ValueError:
                        raise DataError(f"{where}: row {_label(rows, label)} has the non-numeric {x}="
                                        f"{label[list(rows).index(x)]!r}; use report.where to drop it or a metric as x")
                else:
                    xv = cells[x][0]
                series.setdefault(tuple(label[list(rows).index(k)] for k in by), []).append((xv, cells[y][0], cells[y][1]))
            line_plot(path, [(_legend(by, g), *map(np.array, zip(*pts))) for g, pts in series.items()], xlabel=x, ylabel=y,
                      logx=bool(spec.get("logx")), logy=bool(spec.get("logy")), title=title)
        else:
            groups: dict[tuple, list] = {tuple(label[list(rows).index(k)] for k in by): [] for label, _ in table}
            found = 0
            for r in runs:
                f = r.path / file
                if f.is_file():
                    found += 1
                    groups.setdefault(tuple(r.overrides.get(k, "") for k in by), []).append(_read_columns(f, x, y))
            if not found:
                raise DataError(f"{where} ({kind}): no run of this report has a '{file}' (looked in {len(runs)} run dirs, "
                                f"e.g. {runs[0].path})")
            groups = {g: v for g, v in groups.items() if v}
            if kind == "predictions":
                predicted_vs_true_plot(path, [(_legend(by, g), np.concatenate([a for a, _ in v]), np.concatenate([b for _, b in v]))
                                              for g, v in groups.items()], xlabel=x, ylabel=y, title=title)
            else:
                fronts_plot(path, [(_legend(by, g), v) for g, v in groups.items()], xlabel=x, ylabel=y, title=title)
        out.append((path, title or f"{kind}: {y} vs {x}"))
    return out


def _legend(keys: Sequence[str], values: Sequence[str]) -> str:
    """``key=value`` of a plotted group, the short key name only, empty values left out."""
    parts = [f"{k.rsplit('.', 1)[-1]}={v}" for k, v in zip(keys, values) if v != ""]
    return ", ".join(parts) or "all runs"


def image_links(plots, relative_to: Path) -> str:
    import os

    return "\n".join(f"![{caption}]({Path(os.path.relpath(path, relative_to)).as_posix()})" for path, caption in plots)
