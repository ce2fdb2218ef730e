"""Experiment tracking: Weights & Biases (offline by default), a CSV log, or nothing.

Every job gets one tracker; it is finished even when the job fails, so an offline W&B run is
always closed and syncable.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from hwnas.errors import ConfigError, choices_text
from hwnas.io import flat_numeric

TRACKERS = ("wandb", "csv", "none")


class Tracker:
    """No-op base: the ``logger=none`` choice."""

    def log_config(self, config: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None: ...

    def log_table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...

    def log_image(self, name: str, path: str | os.PathLike) -> None: ...

    def finish(self, exit_code: int = 0) -> None: ...


class PrefixedTracker(Tracker):
    """A stage's view of its parent's tracker: names get ``prefix``, ``finish`` is the parent's business.

    The pipeline runs its stages as jobs that all log into the pipeline's one W&B run.
    """

    def __init__(self, parent: Tracker, prefix: str):
        self.parent, self.prefix = parent, prefix

    def log_config(self, config):
        pass  # the parent's run already has the pipeline's config; each stage keeps its own in its folder

    def log_metrics(self, metrics, step=None):
        self.parent.log_metrics({f"{self.prefix}{k}": v for k, v in flat_numeric(metrics).items()})

    def log_table(self, name, columns, rows):
        self.parent.log_table(f"{self.prefix}{name}", columns, rows)

    def log_image(self, name, path):
        self.parent.log_image(f"{self.prefix}{name}", path)


class CSVTracker(Tracker):
    """Appends every logged metric as ``step, name, value`` to ``<run_dir>/metrics_log.csv``."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "metrics_log.csv"
        new = not self.path.exists()
        self._fh = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._fh)
        if new:
            self._writer.writerow(["step", "name", "value"])
        self._step = 0

    def log_metrics(self, metrics, step=None):
        step = self._step if step is None else step
        for k, v in flat_numeric(metrics).items():
            self._writer.writerow([step, k, v])
        self._fh.flush()
        self._step = step + 1

    def finish(self, exit_code=0):
        if not self._fh.closed:
            self._fh.close()


class WandbTracker(Tracker):
    def __init__(self, run_dir: Path, project: str, entity: str | None, mode: str, tags, name: str, group: str | None,
                 config: Mapping[str, Any]):
        if mode not in ("offline", "online", "disabled"):
            raise ConfigError(f"logger.mode = {mode!r} is not allowed; allowed: offline, online, disabled")
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        self._wandb = wandb
        self.run = wandb.init(project=project, entity=entity, mode=mode, dir=str(run_dir), name=name, group=group,
                              tags=list(tags or []), config=dict(config), reinit="finish_previous")

    def log_config(self, config):
        self.run.config.update(dict(config), allow_val_change=True)

    def log_metrics(self, metrics, step=None):
        values = flat_numeric(metrics)
        if values:
            self.run.log(values, step=step)
            for k, v in values.items():
                self.run.summary[k] = v

    def log_table(self, name, columns, rows):
        self.run.log({name: self._wandb.Table(columns=list(columns), data=[list(r) for r in rows])})

    def log_image(self, name, path):
        self.run.log({name: self._wandb.Image(str(path))})

    def finish(self, exit_code=0):
        self.run.finish(exit_code=exit_code)


def make_tracker(logger_cfg: Mapping[str, Any], run_dir: Path, name: str, config: Mapping[str, Any],
                 group: str | None = None) -> Tracker:
    kind = logger_cfg.get("kind", "none")
    if kind == "none":
        return Tracker()
    if kind == "csv":
        return CSVTracker(run_dir)
    if kind == "wandb":
        return WandbTracker(run_dir, logger_cfg.get("project", "hwnas"), logger_cfg.get("entity"),
                            logger_cfg.get("mode", "offline"), logger_cfg.get("tags"), name, group, config)
    raise ConfigError(f"logger kind {kind!r} is not allowed; allowed: {choices_text(TRACKERS)}")
