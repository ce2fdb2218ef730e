"""Latency-prediction metrics (torchmetrics), shared by the evaluate job and the Lightning predictors.

RMSE (ms), RMSE % (RMSE / mean true latency), MAPE, Spearman's rho, Kendall's tau, and the share
of predictions within +/-5 % and +/-10 % of the truth (nn-Meter's accuracy metric).
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.regression import (KendallRankCorrCoef, MeanAbsolutePercentageError, MeanSquaredError,
                                     NormalizedRootMeanSquaredError, SpearmanCorrCoef)

from hwnas.errors import ConfigError, DataError


#: Fewest predictions a score is computed on: the rank correlations of two points are always +-1 and of one
#: undefined (torchmetrics fails on one; Spearman is reported as 0.0), so a smaller test set scores nothing.
MIN_SCORED = 3


def require_scorable(n: int, what: str, setting: str = "") -> None:
    """A one-line DataError (ConfigError when ``setting`` names the option that chose ``n``) for a set too small
    to score; ``what`` says which set it is (e.g. "the test split")."""
    if n < MIN_SCORED:
        text = (f"{what} has {n} architecture(s); scoring needs >= {MIN_SCORED} (Spearman and Kendall of two points "
                f"are always +-1, of one undefined)")
        raise (ConfigError(f"{setting}: {text}") if setting else DataError(text))


class WithinRelativeError(Metric):
    """Fraction of predictions with ``|pred - true| / true <= tolerance`` (nn-Meter's "±10 % accuracy")."""

    higher_is_better = True
    full_state_update = False

    def __init__(self, tolerance: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.tolerance = tolerance
        self.add_state("hits", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        rel = (preds - target).abs() / target.abs()
        self.hits += (rel <= self.tolerance).sum()
        self.total += target.numel()

    def compute(self) -> torch.Tensor:
        return self.hits / self.total


def latency_metrics(prefix: str = "") -> MetricCollection:
    """The metric set of every latency estimator, as one torchmetrics collection."""
    # Latency datasets are small (<= 10^5 rows): buffering all predictions for rank metrics is intended.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all targets and predictions in the buffer.*")
        return _collection(prefix)


def _collection(prefix: str) -> MetricCollection:
    return MetricCollection({
        "rmse_ms": MeanSquaredError(squared=False),
        "rmse_pct": NormalizedRootMeanSquaredError(normalization="mean"),  # RMSE / mean true latency
        "mape": MeanAbsolutePercentageError(),
        "spearman": SpearmanCorrCoef(),
        "kendall": KendallRankCorrCoef(),
        "within_5pct": WithinRelativeError(0.05),
        "within_10pct": WithinRelativeError(0.10),
    }, prefix=prefix)


#: metrics torchmetrics computes as fractions and hwnas reports in percent, per epoch and at the end alike
PERCENT = ("rmse_pct", "mape")


def in_percent(values: dict, prefix: str = "") -> dict:
    """``values`` of :func:`latency_metrics` with :data:`PERCENT`'s fractions x 100 (tensors or floats)."""
    return {k: v * 100.0 if k.removeprefix(prefix) in PERCENT else v for k, v in values.items()}


def evaluate_predictions(pred, target, prefix: str = "") -> dict[str, float]:
    """All latency metrics of predictions against the truth, as plain floats (>= ``MIN_SCORED`` of them)."""
    p = torch.as_tensor(np.asarray(pred, dtype=np.float64), dtype=torch.float64).reshape(-1)
    t = torch.as_tensor(np.asarray(target, dtype=np.float64), dtype=torch.float64).reshape(-1)
    if len(p) != len(t):
        raise DataError(f"{len(p)} predictions for {len(t)} true latencies: each architecture needs one of each")
    require_scorable(len(t), f"{prefix.rstrip('/') or 'the scored set'}")
    metrics = latency_metrics(prefix).to(torch.float64)
    metrics.update(p, t)
    return {k: float(v) for k, v in in_percent(metrics.compute(), prefix).items()}
