"""Tables from multiruns: ``hwnas job=report report.dirs=[multirun/...]``."""
from __future__ import annotations

from pathlib import Path

from hwnas.errors import ConfigError
from hwnas.io import atomic_write_text, write_csv
from hwnas.report import aggregate, collect_runs, inject, to_csv_rows, to_markdown


def run(cfg, ctx) -> dict[str, float]:
    dirs = list(cfg.report.dirs) if not isinstance(cfg.report.dirs, str) else [cfg.report.dirs]
    runs = collect_runs(dirs)
    for condition in cfg.report.get("where") or []:
        key, sep, value = str(condition).partition("=")
        if not sep:
            raise ConfigError(f"report.where entry {condition!r} must look like key=value, e.g. device.column=pixel3")
        runs = [r for r in runs if r.overrides.get(key) == value]
    rows, metrics, table = aggregate(runs, cfg.report.get("rows"), cfg.report.get("metrics"))
    md = to_markdown(rows, metrics, table, int(cfg.report.precision), cfg.report.get("title"))
    output = Path(cfg.report.output) if cfg.report.get("output") else ctx.path("report.md")
    atomic_write_text(output, md)
    write_csv(output.with_suffix(".csv"), *to_csv_rows(rows, metrics, table))
    if cfg.report.get("readme"):
        section = cfg.report.get("section") or output.stem
        inject(cfg.report.readme, section, md)
        print(f"table '{section}' regenerated in {cfg.report.readme}")
    print(md)
    print(f"report of {len(runs)} runs -> {output}")
    return {"n_runs": len(runs), "n_rows": len(table)}
