"""Tables from multiruns: ``hwnas job=report report.dirs=[multirun/...]``."""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from hwnas.errors import ConfigError
from hwnas.io import atomic_write_text, write_csv
from hwnas.report import (_same, aggregate, collect_runs, collect_wandb_runs, image_links, inject, load_published,
                          make_plots, to_csv_rows, to_markdown, unfinished_runs)


def _listed(value) -> list:
    if value is None:
        return []
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    return [value] if isinstance(value, (str, dict)) else list(value)


#: ``report.source``: where the runs are read from
SOURCES = ("files", "wandb")


def run(cfg, ctx) -> dict[str, float]:
    dirs = _listed(cfg.report.dirs)
    source = cfg.report.get("source") or "files"
    if source not in SOURCES:
        raise ConfigError(f"report.source = {source!r} is not allowed; allowed: files (each run dir's metrics.json and "
                          f".hydra/overrides.yaml) or wandb (the W&B run files under report.dirs)")
    if source == "wandb":
        kinds = sorted({str(dict(p).get("kind")) for p in _listed(cfg.report.get("plots")) if dict(p).get("kind") != "line"})
        if kinds:
            raise ConfigError(f"report.plots kind {', '.join(kinds)} reads a CSV of each run dir, which a W&B run file "
                              f"does not hold; with report.source=wandb the allowed kind is line")
        runs, unfinished = collect_wandb_runs(dirs)
    else:
        runs, unfinished = collect_runs(dirs), unfinished_runs(dirs)
    for run_dir, record in unfinished:  # a sweep's failed jobs are missing from the table: say which
        why = record.get("error") or record.get("signal") or "no result"
        print(f"note: {run_dir} has no result ({record.get('status', 'unknown')}: {why}); it is not in the table")
    for condition in cfg.report.get("where") or []:
        key, sep, value = str(condition).partition("=")
        if not sep:
            raise ConfigError(f"report.where entry {condition!r} must look like key=value, e.g. device.column=pixel3")
        runs = [r for r in runs if r.overrides.get(key) == value]
    rows, metrics, table = aggregate(runs, cfg.report.get("rows"), cfg.report.get("metrics"))
    published = load_published(cfg.report.published, rows, metrics) if cfg.report.get("published") else None
    if published:
        for keys, _ in published.rows:
            if not any(all(_same(label[rows.index(k)], v) for k, v in keys.items()) for label, _ in table):
                print(f"note: published row {keys} matches no row of the table")
    md = to_markdown(rows, metrics, table, int(cfg.report.precision), cfg.report.get("title"), published)
    output = Path(cfg.report.output) if cfg.report.get("output") else ctx.path("report.md")
    plots = make_plots(_listed(cfg.report.get("plots")), runs, rows, metrics, table, output)
    for path, _ in plots:
        ctx.tracker.log_image(f"report/{path.stem}", path)
    with_links = lambda where: md + ("\n" + image_links(plots, where) + "\n" if plots else "")  # noqa: E731
    atomic_write_text(output, with_links(output.parent))
    write_csv(output.with_suffix(".csv"), *to_csv_rows(rows, metrics, table, published))
    if cfg.report.get("readme"):
        section = cfg.report.get("section") or output.stem
        inject(cfg.report.readme, section, with_links(Path(cfg.report.readme).parent))
        print(f"table '{section}' regenerated in {cfg.report.readme}")
    print(md)
    for path, _ in plots:
        print(f"plot -> {path}")
    print(f"report of {len(runs)} runs -> {output}")
    return {"n_runs": len(runs), "n_rows": len(table), "n_plots": len(plots)}
