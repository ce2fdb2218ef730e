"""The task's return value (``objective``), and an Optuna sweep (hydra-optuna-sweeper) that tunes on it."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import yaml
from omegaconf import OmegaConf

from hwnas.errors import ConfigError
from hwnas.objective import failed_value, objective_value


def _cfg(job: str, objective=None):
    return OmegaConf.create({"job": {"name": job}, "objective": objective})


def test_objective_is_the_named_metric_or_the_jobs_own():
    metrics = {"val/rmse_pct": 4.5, "test/rmse_pct": 5.0, "n_train": 100}
    assert objective_value(_cfg("train_predictor"), metrics) == 4.5  # its own: the validation split's
    assert objective_value(_cfg("train_predictor", "n_train"), metrics) == 100.0
    assert objective_value(_cfg("train_predictor"), {"test/rmse_pct": 5.0}) is None  # no validation split
    assert objective_value(_cfg("profile"), {"n_archs": 3}) is None  # a job without one returns nothing
    with pytest.raises(ConfigError, match=r"objective = 'val/rmse' is not a metric of job=train_predictor; its "
                                          r"metrics: n_train, test/rmse_pct, val/rmse_pct"):
        objective_value(_cfg("train_predictor", "val/rmse"), metrics)
    with pytest.raises(ConfigError, match=r"objective = 3 is not allowed; allowed: the name of one of the job's"):
        objective_value(_cfg("train_predictor", 3), metrics)
    assert math.isnan(failed_value(_cfg("train_predictor"))) and failed_value(_cfg("profile")) is None


def test_a_test_split_objective_is_warned_about(capsys):
    assert objective_value(_cfg("train_predictor", "test/rmse_pct"), {"test/rmse_pct": 5.0}) == 5.0
    assert "objective = 'test/rmse_pct' is a test-split metric" in capsys.readouterr().err


def test_optuna_sweep_tunes_the_validation_error(tmp_path, data_dir):
    """hydra/sweeper=optuna over estimator.lr: every trial's objective is its val/rmse_pct, and the best trial Optuna
    reports is the trial with the least of them."""
    sweep = tmp_path / "sweep"
    out = subprocess.run(
        [sys.executable, "-m", "hwnas", "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=3",
         "hydra.sweeper.sampler.seed=0", "hydra.sweeper.direction=minimize", "job=train_predictor",
         "search_space=nb201", "device=help", "device.column=pixel3", f"paths.data_dir={data_dir}",
         "train.samples=100", "estimator.epochs=3", "estimator.hidden=[32]", "estimator.progress_bar=false",
         "estimator.lr=tag(log, interval(1e-4, 1e-1))", "logger=none", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    trials = {}
    for metrics in sweep.glob("*/metrics.json"):
        overrides = yaml.safe_load((metrics.parent / ".hydra" / "overrides.yaml").read_text())
        lr = float(next(o.split("=", 1)[1] for o in overrides if o.startswith("estimator.lr=")))
        trials[lr] = json.loads(metrics.read_text())["val/rmse_pct"]
    assert len(trials) == 3
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(min(trials.values()))
    assert trials[float(best["best_params"]["estimator.lr"])] == pytest.approx(best["best_value"])
