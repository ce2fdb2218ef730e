"""Jobs: one module per job, each exposing ``run(cfg, ctx) -> {metric: number}``.

:func:`run_job` is the only place that knows about run directories, metrics.json and trackers,
so every job honours ``hydra.run.dir`` and the ``{name: number}`` metrics contract the same way.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from hwnas.errors import ConfigError, choices_text
from hwnas.io import ensure_dir, write_metrics
from hwnas.tracking import PrefixedTracker, Tracker, make_tracker, run_group, run_tags, with_hydra


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
    """A multirun job's W&B group: its sweep, named by :func:`hwnas.tracking.run_group`."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized() and HydraConfig.get().mode.name == "MULTIRUN":
        return run_group(HydraConfig.get().sweep.dir)
    return None


#: how to set the mandatory values of the jobs (``???`` in their config), for the error that names a missing one
REQUIRED_HINTS = {
    "report.dirs": "a list of run or multirun dirs, e.g. report.dirs=[outputs/multirun/evaluate/2026-12-01_10-00-00]",
    "predict.input": "a CSV with an 'arch' column, e.g. predict.input=archs.csv",
}


def check_config(cfg: DictConfig) -> None:
    """What every job needs before it starts: mandatory values set, an integer seed, usable output paths."""
    from hwnas.options import integer

    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        key = missing[0]
        raise ConfigError(f"{key} is required by job={cfg.job.name} and is not set; give "
                          f"{REQUIRED_HINTS.get(key, key + '=<value>')}")
    integer(cfg.get("seed"), "seed", minimum=0, hint=" (it seeds every random choice of the run)")
    for key, value in _leaves(OmegaConf.to_container(cfg, resolve=True)):
        if key.rsplit(".", 1)[-1] == "output" and value not in (None, ""):
            check_output_file(key, value)


def _leaves(node, prefix: str = ""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, node


def check_output_file(key: str, value) -> Path:
    """An output file path must not be a directory and its folder must be creatable and writable, so that
    nothing computed is lost when the job writes its result at the end."""
    path = Path(str(value)).expanduser()
    if path.is_dir():
        raise ConfigError(f"{key} = '{value}' is a directory; give a file path (e.g. {key}={path / 'result.csv'})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{key} = '{value}': cannot create its folder '{path.parent}': {exc.strerror or exc}") from None
    if not os.access(path.parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"{key} = '{value}' is not writable")
    return path


#: config options naming a file a job reads, and the artifact type of such a file (the writers log the same types:
#: predictor, supernet, measurements, lookup_table), so that a W&B run records what it used (Tracker.use_artifact)
INPUT_FILES = {"estimator.checkpoint": "predictor", "transfer.base": "predictor", "eval_subnets.checkpoint": "supernet",
               "train_subnet.supernet": "supernet", "estimator.path": "lookup_table", "estimator.fit_data": "measurements",
               "search.margin_data": "measurements", "device.path": "measurements",
               "accuracy.checkpoint": "accuracy_predictor", "accuracy.path": "accuracy_table"}


def log_inputs(cfg: DictConfig, tracker: Tracker) -> None:
    """Each existing file named by an :data:`INPUT_FILES` option of ``cfg`` as an input artifact of the job's run."""
    for option, kind in INPUT_FILES.items():
        value = OmegaConf.select(cfg, option, default=None)
        if isinstance(value, str) and value and Path(value).expanduser().is_file():
            tracker.use_artifact(Path(value).expanduser(), kind, option)


def _multirun_info() -> dict | None:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized() and HydraConfig.get().mode.name == "MULTIRUN":
        hc = HydraConfig.get()
        return {"num": int(hc.job.num), "sweep_dir": str(hc.sweep.dir), "overrides": list(hc.overrides.task)}
    return None


def run_job(cfg: DictConfig, run_dir: Path | None = None, tracker: Tracker | None = None,
            prefix: str = "", identity: str = "") -> dict[str, float]:
    """Run ``cfg.job.name`` in ``run_dir`` (default: Hydra's output dir); write metrics.json.

    With ``tracker`` (a pipeline stage) the job logs into that run under ``prefix`` instead of
    opening its own, and writes its resolved config to ``config.yaml`` in its run dir. The run dir's
    record (:mod:`hwnas.runs`) ties its outputs to this config (and ``identity``, e.g. the upstream
    stage): outputs of another config are moved aside before the job starts.
    """
    from hwnas import runs
    from hwnas.interrupts import JobInterrupted, progress

    name = cfg.job.name
    if name not in list_jobs():
        raise ConfigError(f"unknown job {name!r}; allowed: {choices_text(list_jobs())}")
    check_config(cfg)
    run_dir = ensure_dir(run_dir or _run_dir())
    module = importlib.import_module(f"hwnas.jobs.{name}")
    config = OmegaConf.to_container(cfg, resolve=True)
    owned = tracker is None
    note = runs.begin(run_dir, name, config, identity, keep=getattr(module, "KEEPS", ()),
                      multirun=_multirun_info() if owned else None)
    if note:
        print(f"hwnas: note: {note}", file=sys.stderr)
    exit_code = 1
    try:
        if owned:
            tracker = make_tracker(cfg.logger, run_dir, name=f"{name}-{run_dir.name}", config=with_hydra(config),
                                   group=_sweep_group(), job_type=name, tags=run_tags(config))
        else:
            from hwnas.io import atomic_write_text

            atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
            tracker = PrefixedTracker(tracker, prefix)
        log_inputs(cfg, tracker)
        ctx = JobContext(run_dir=run_dir, tracker=tracker, data_dir_value=cfg.paths.get("data_dir"))
        metrics: dict[str, Any] = module.run(cfg, ctx) or {}
        write_metrics(run_dir / "metrics.json", metrics)
        tracker.log_metrics(metrics)
        exit_code = 0
    except JobInterrupted as exc:
        runs.end(run_dir, "interrupted", signal=exc.signal_name, progress=progress())
        raise
    except BaseException as exc:
        from hwnas.errors import user_error_text

        why = user_error_text(exc) if isinstance(exc, Exception) else None
        runs.end(run_dir, "failed", error=(why or f"{type(exc).__name__}: {exc}").splitlines()[0][:500])
        raise
    finally:
        if owned and tracker is not None:
            tracker.finish(exit_code)
    runs.end(run_dir, "finished")
    print(f"hwnas: {name} finished; run dir: {run_dir}", file=sys.stderr)
    return metrics
