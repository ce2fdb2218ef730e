"""Experiment tracking: Weights & Biases (offline by default), a CSV log, or nothing.

Every job gets one tracker; it is finished even when the job fails, so an offline W&B run is
always closed and syncable. ``conf/logger/wandb.yaml`` reads WANDB_MODE, WANDB_DIR, WANDB_PROJECT
and WANDB_ENTITY; a run's group is its sweep, its job type the job, its tags the job's choices.
"""
from __future__ import annotations

import csv
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from hwnas.errors import ConfigError, choices_text
from hwnas.io import file_digest, flat_numeric

TRACKERS = ("wandb", "csv", "none")
WANDB_MODES = ("offline", "online", "disabled")

_INTEGER = re.compile(r"[+-]?(0|[1-9][0-9]*)")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def table_cell(value: Any) -> Any:
    """A table cell as W&B should see it: numeric text and numpy scalars as Python numbers, ``""``, None
    and non-finite floats as None (missing), any other value as it is."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)) and getattr(value, "ndim", None) == 0:
        value = value.item()  # numpy scalar
    if value is None or value == "":
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER.fullmatch(text):
            return int(text)
        if _NUMBER.fullmatch(text) and math.isfinite(float(text)):
            return float(text)
    return value


def artifact_name(path: str | os.PathLike, kind: str) -> str:
    """``<kind>-<first 12 hex digits of the file's sha256>``: the run that writes a file and every run that reads it
    name its artifact alike, so W&B links them (lineage) without either knowing the other."""
    return f"{kind}-{file_digest(path)[:12]}"


def run_group(sweep_dir: str | os.PathLike, cwd: str | os.PathLike | None = None) -> str:
    """A sweep's W&B group: its folder relative to ``cwd`` when it lies under it, else its last two parts."""
    cwd = Path(os.path.abspath(cwd or os.getcwd()))
    path = Path(os.path.abspath(cwd / Path(sweep_dir).expanduser()))
    if path != cwd and path.is_relative_to(cwd):
        return path.relative_to(cwd).as_posix()
    return "/".join(path.parts[-2:])


def run_tags(cfg: Mapping[str, Any]) -> list[str]:
    """The automatic tags of a job's run: ``job:``, and ``space:``, ``device:``, ``task:`` where it has them."""
    tags = [f"job:{cfg['job']['name']}"]
    space, device, task = cfg.get("search_space") or {}, cfg.get("device") or {}, cfg.get("task")
    if space.get("name"):
        tags.append(f"space:{space['name']}")
    if device.get("column") or device.get("name"):
        tags.append(f"device:{device.get('column') or device.get('name')}")
    if task:
        tags.append(f"task:{task.get('name') if isinstance(task, Mapping) else task}")
    return tags


def with_hydra(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` plus Hydra's group choices (``hydra_choices``) and command-line ``overrides`` when Hydra runs."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    config = dict(config)
    if HydraConfig.initialized():
        hc = HydraConfig.get()
        config["hydra_choices"] = dict(OmegaConf.to_container(hc.runtime.choices, resolve=True))
        config["overrides"] = list(hc.overrides.task)
    return config


class Tracker:
    """No-op base: the ``logger=none`` choice."""

    def log_config(self, config: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None: ...

    def log_table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...

    def log_image(self, name: str, path: str | os.PathLike) -> None: ...

    def log_scatter(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], x: str, y: str,
                    title: str) -> None:
        """A scatter plot of columns ``x`` against ``y`` of a table (W&B only)."""

    def log_artifact(self, path: str | os.PathLike, kind: str, metadata: Mapping[str, Any] | None = None) -> None:
        """A file this job wrote (a predictor, supernet, measurements, lookup table), as an artifact (W&B only)."""

    def use_artifact(self, path: str | os.PathLike, kind: str, option: str) -> None:
        """A file this job read (given by config ``option``), as an input artifact (W&B only)."""

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

    def log_scatter(self, name, columns, rows, x, y, title):
        self.parent.log_scatter(f"{self.prefix}{name}", columns, rows, x, y, title)

    def log_artifact(self, path, kind, metadata=None):
        self.parent.log_artifact(path, kind, metadata)

    def use_artifact(self, path, kind, option):
        self.parent.use_artifact(path, kind, option)


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
    """One W&B run; ``dir`` None: the run folder goes in ``run_dir`` (``<dir>/wandb/offline-run-*`` offline)."""

    def __init__(self, run_dir: Path, project: str, entity: str | None, mode: str, tags, name: str, group: str | None,
                 config: Mapping[str, Any], dir: str | os.PathLike | None = None, job_type: str | None = None):
        if mode not in WANDB_MODES:
            raise ConfigError(f"logger.mode = {mode!r} is not allowed; allowed: {choices_text(WANDB_MODES)}")
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        root = Path(dir).expanduser() if dir not in (None, "") else Path(run_dir)
        root.mkdir(parents=True, exist_ok=True)
        self._wandb = wandb
        self.run = wandb.init(project=project, entity=entity, mode=mode, dir=str(root), name=name, group=group,
                              job_type=job_type, tags=list(dict.fromkeys(str(t) for t in tags or [])),
                              config=dict(config), reinit="finish_previous")

    def log_config(self, config):
        self.run.config.update(dict(config), allow_val_change=True)

    def log_metrics(self, metrics, step=None):
        values = flat_numeric(metrics)
        if values:
            self.run.log(values, step=step)
            for k, v in values.items():
                self.run.summary[k] = v

    def _table(self, columns, rows):
        return self._wandb.Table(columns=list(columns), data=[[table_cell(v) for v in r] for r in rows])

    def log_table(self, name, columns, rows):
        self.run.log({name: self._table(columns, rows)})

    def log_scatter(self, name, columns, rows, x, y, title):
        self.run.log({name: self._wandb.plot.scatter(self._table(columns, rows), x, y, title=title)})

    def log_image(self, name, path):
        self.run.log({name: self._wandb.Image(str(path))})

    def _artifact(self, path, kind, metadata=None):
        artifact = self._wandb.Artifact(artifact_name(path, kind), type=kind, metadata=dict(metadata or {}))
        artifact.add_file(str(path))
        return artifact

    def log_artifact(self, path, kind, metadata=None):
        self.run.log_artifact(self._artifact(path, kind, metadata))

    def use_artifact(self, path, kind, option):
        """Online: ``run.use_artifact`` (W&B links it to the run that logged the same file). W&B cannot use artifacts
        offline, so an offline run records the input in its config (``inputs``), the link to make after a sync."""
        if not self.run.offline and self.run.settings.mode != "disabled":
            self.run.use_artifact(self._artifact(path, kind))
            return
        inputs = dict(self.run.config.get("inputs") or {})
        inputs[option] = {"artifact": artifact_name(path, kind), "type": kind, "path": str(path),
                          "sha256": file_digest(path)}
        self.run.config.update({"inputs": inputs}, allow_val_change=True)

    def finish(self, exit_code=0):
        self.run.finish(exit_code=exit_code)


def make_tracker(logger_cfg: Mapping[str, Any], run_dir: Path, name: str, config: Mapping[str, Any],
                 group: str | None = None, job_type: str | None = None, tags: Sequence[str] = ()) -> Tracker:
    """The ``logger`` choice's tracker; ``tags`` are added to the user's ``logger.tags``."""
    kind = logger_cfg.get("kind", "none")
    if kind == "none":
        return Tracker()
    if kind == "csv":
        return CSVTracker(run_dir)
    if kind == "wandb":
        return WandbTracker(run_dir, logger_cfg.get("project", "hwnas"), logger_cfg.get("entity"),
                            logger_cfg.get("mode", "offline"), [*(logger_cfg.get("tags") or []), *tags], name, group,
                            config, dir=logger_cfg.get("dir"), job_type=job_type)
    raise ConfigError(f"logger kind {kind!r} is not allowed; allowed: {choices_text(TRACKERS)}")
