"""The number a Hydra sweeper optimises: one metric of the job, returned by the task.

``objective=<metric>`` names it (a key of the job's ``metrics.json``, e.g. ``val/rmse_pct``); left null,
a job's own primary metric where it has one (``OBJECTIVE`` in its module: job=train_predictor's
``val/rmse_pct``, the validation split, so that a sweeper such as ``hydra/sweeper=optuna`` tunes on
data the reported test figures never saw). A job without one returns nothing, as before.
"""
from __future__ import annotations

import importlib
import math

from hwnas.errors import ConfigError
from hwnas.options import warn


def objective_name(cfg) -> str | None:
    """``objective``, else the job's ``OBJECTIVE``; a ConfigError for a value that is not a metric name."""
    name = cfg.get("objective")
    if name is None:
        try:
            module = importlib.import_module(f"hwnas.jobs.{cfg.job.name}")
        except ImportError:  # an unknown job: run_job names it with the allowed ones
            return None
        return getattr(module, "OBJECTIVE", None)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"objective = {name!r} is not allowed; allowed: the name of one of the job's metrics "
                          f"(a key of its metrics.json, e.g. val/rmse_pct), or null")
    if name.startswith("test/"):
        warn(f"objective = {name!r} is a test-split metric: a sweeper optimising it tunes on the test split; "
             f"the val/ metric of the same name keeps the test figures unseen")
    return name


def objective_value(cfg, metrics: dict) -> float | None:
    """The objective's value in ``metrics`` (None without an objective); a ConfigError naming the metrics there are
    when the job did not report it."""
    name = objective_name(cfg)
    if name is None or (name not in metrics and cfg.get("objective") is None):  # a job's own, not reported: none
        return None
    if name not in metrics:
        numeric = sorted(k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
        raise ConfigError(f"objective = {name!r} is not a metric of job={cfg.job.name}; its metrics: "
                          f"{', '.join(numeric[:40]) or 'none'}{' ...' if len(numeric) > 40 else ''}")
    return float(metrics[name])


def failed_value(cfg) -> float | None:
    """What a failed job of a sweep returns: NaN where there is an objective (Optuna records the trial as failed
    and the study goes on), else None."""
    try:
        return math.nan if objective_name(cfg) is not None else None
    except ConfigError:
        return math.nan
