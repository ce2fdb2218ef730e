"""Error bars whose width follows how far a learned predictor departs from a FLOPs fit on the same samples.

``estimator.interval_method=flops_gap``. A search picks the architectures its latency model
underestimates most: on NB201 a 100-sample MLP called cells fast that run 2-6x slower, cells a FLOPs
fit did not call fast. Quantile heads trained on the same 100 samples cannot see that, but the gap
between the two models can: where a flexible model departs far from the analytic prior, it is
extrapolating. So each architecture's interval is, in log latency,

    log p  +-  q * (|log p - log f| + beta)

with ``p`` the predictor, ``f`` least squares of latency on FLOPs fitted on the predictor's own training
samples, ``beta`` the median gap on the calibration set (a floor: the predictor and the fit agree on
many architectures the predictor still misses), and ``q`` the split-conformal quantile of the score
``|log y - log p| / (gap + beta)`` on held-out measurements (normalized conformal regression,
Papadopoulos et al. 2008; Lei et al. 2018, eq. 14): it covers the requested fraction of architectures
drawn like the calibration set, whatever the gap's worth; the gap decides only where it is wide.

Measured in experiments/search_nb201 (the uncertainty table): against one margin for every cell.
"""
from __future__ import annotations

import numpy as np

from hwnas.errors import ConfigError, DataError
from hwnas.estimators.linear import LinearFit, resolution_of

#: ``estimator.interval_method``: the predictor's two quantile heads, conformalized (CQR), or the gap to a FLOPs fit
INTERVAL_METHODS = ("quantile", "flops_gap")
#: the least latency (ms) a FLOPs fit is taken to predict (a straight line can cross zero at tiny networks)
PRIOR_FLOOR_MS = 1e-3


def check_method(method: str) -> str:
    if method not in INTERVAL_METHODS:
        raise ConfigError(f"estimator.interval_method = {method!r} is not allowed; allowed: quantile (two quantile "
                          f"heads, conformalized) or flops_gap (width from the gap to a FLOPs fit)")
    return method


def conformal_quantile(scores: np.ndarray, coverage: float) -> float:
    """The split-conformal quantile: the ceil((n + 1) * coverage)-th smallest score (finite-sample corrected)."""
    scores = np.asarray(scores, dtype=np.float64)
    level = min(1.0, np.ceil((len(scores) + 1) * float(coverage)) / len(scores))
    return float(np.quantile(scores, level, method="higher"))


def _design(space, archs) -> np.ndarray:
    return np.column_stack([space.costs(archs)["flops"] / 1e6, np.ones(len(archs))])


def fit_prior(space, archs, latency_ms) -> dict:
    """Least squares of latency on FLOPs (one map, and one per input resolution with enough samples), as
    primitives for a checkpoint's hyperparameters."""
    linear = LinearFit(per_group=True).fit(_design(space, archs), latency_ms, resolution_of(archs),
                                           what="estimator.interval_method=flops_gap (its FLOPs fit)")
    return {"coef": [float(c) for c in linear.coef],
            "groups": {str(g): [float(c) for c in coef] for g, coef in linear.group_coef.items()}}


def prior_ms(prior: dict, space, archs) -> np.ndarray:
    linear = LinearFit(per_group=True)
    linear.coef = np.asarray(prior["coef"], dtype=np.float64)
    linear.group_coef = {int(g): np.asarray(c, dtype=np.float64) for g, c in (prior.get("groups") or {}).items()}
    return np.maximum(linear.predict(_design(space, archs), resolution_of(archs)), PRIOR_FLOOR_MS)


def calibrate(predicted_ms, prior, latency_ms, coverage: float) -> tuple[float, float]:
    """``(q, beta)`` that make ``log p +- q (gap + beta)`` cover ``coverage`` of these held-out architectures."""
    y = np.asarray(latency_ms, dtype=np.float64)
    if len(y) < 2:
        raise DataError(f"calibrating an interval needs >= 2 held-out architectures, got {len(y)}")
    if np.any(y <= 0):
        raise DataError("calibrating a flops_gap interval needs positive measured latencies (it works in log latency)")
    logp = np.log(np.maximum(np.asarray(predicted_ms, dtype=np.float64), PRIOR_FLOOR_MS))
    gap = np.abs(logp - np.log(np.asarray(prior, dtype=np.float64)))
    beta = max(float(np.median(gap)), 1e-6)
    return conformal_quantile(np.abs(np.log(y) - logp) / (gap + beta), coverage), beta


def bounds(predicted_ms, prior, q: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """The calibrated ``(low, high)`` latency interval, ms."""
    logp = np.log(np.maximum(np.asarray(predicted_ms, dtype=np.float64), PRIOR_FLOOR_MS))
    half = q * (np.abs(logp - np.log(np.asarray(prior, dtype=np.float64))) + beta)
    return np.exp(logp - half), np.exp(logp + half)
