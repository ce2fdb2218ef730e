"""Jobs: one module per job, each exposing ``run(cfg, ctx) -> {metric: number}``.

:func:`run_job` is the only place that knows about run directories, metrics.json and trackers,
so every job honours ``hydra.run.dir`` and the ``{name: number}`` metrics contract the same way.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from hwnas.errors import ConfigError, choices_text
from hwnas.io import ensure_dir, write_metrics
from hwnas.tracking import PrefixedTracker, Tracker, make_tracker


def list_jobs() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


@dataclass
class JobContext:
    """What a job needs beyond its config: where to write, where to log, where the data is."""

    run_dir: Path
    tracker: Tracker = field(default_factory=Tracker)
    data_dir_value: str | None = None

    @property
    def data_dir(self) -> Path:
        from hwnas.data.root import resolve_data_dir

        return resolve_data_dir(self.data_dir_value)

    def path(self, name: str) -> Path:
        return self.run_dir / name


def _run_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path.cwd()


def _sweep_group() -> str | None:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized() and HydraConfig.get().mode.name == "MULTIRUN":
        return str(HydraConfig.get().sweep.dir)
    return None


def run_job(cfg: DictConfig, run_dir: Path | None = None, tracker: Tracker | None = None,
            prefix: str = "") -> dict[str, float]:
    """Run ``cfg.job.name`` in ``run_dir`` (default: Hydra's output dir); write metrics.json.

    With ``tracker`` (a pipeline stage) the job logs into that run under ``prefix`` instead of
    opening its own, and writes its resolved config to ``config.yaml`` in its run dir.
    """
    name = cfg.job.name
    if name not in list_jobs():
        raise ConfigError(f"unknown job {name!r}; allowed: {choices_text(list_jobs())}")
    run_dir = ensure_dir(run_dir or _run_dir())
    module = importlib.import_module(f"hwnas.jobs.{name}")
    config = OmegaConf.to_container(cfg, resolve=True)
    owned = tracker is None
    if owned:
        tracker = make_tracker(cfg.logger, run_dir, name=f"{name}-{run_dir.name}", config=config, group=_sweep_group())
    else:
        from hwnas.io import atomic_write_text

        atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        tracker = PrefixedTracker(tracker, prefix)
    ctx = JobContext(run_dir=run_dir, tracker=tracker, data_dir_value=cfg.paths.get("data_dir"))
    exit_code = 1
    try:
        metrics: dict[str, Any] = module.run(cfg, ctx) or {}
        write_metrics(run_dir / "metrics.json", metrics)
        tracker.log_metrics(metrics)
        exit_code = 0
    finally:
        if owned:
            tracker.finish(exit_code)
    print(f"hwnas: {name} finished; run dir: {run_dir}", file=sys.stderr)
    return metrics
