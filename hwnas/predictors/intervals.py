"""Per-architecture error bars of a learned predictor that need no quantile heads.

``estimator.interval_method=cv_plus``: CV+ (Barber, Candes, Ramdas & Tibshirani, "Predictive inference with
the jackknife+", Ann. Statist. 2021, section 3.4). The training samples are split into K folds and K more
models are trained, each without one fold; sample i's residual ``R_i = |z_i - z_{-k(i)}(x_i)|`` is its error
under the model that did not see it (transformed units: log latency by default). An architecture's interval
is then ``[the floor((1 - c)(n + 1))-th smallest of z_{-k(i)}(x) - R_i, the ceil(c (n + 1))-th smallest of
z_{-k(i)}(x) + R_i]`` over the n training samples, for coverage c. It needs no held-out measurements: the
folds are the calibration. Where one training sample pulls the full model far (on HELP's NB201 phone tables
a few cells are measured 5-10x faster than their neighbours, and a 100-sample MLP learns to call those
neighbours fast), the model that did not see it disagrees, and the interval widens there.

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
import torch

from hwnas.errors import ConfigError, DataError
from hwnas.estimators.linear import LinearFit, resolution_of

#: ``estimator.interval_method``: the predictor's two quantile heads, conformalized (CQR), the gap to a FLOPs fit,
#: or CV+ over K models each trained without one fold of the samples
INTERVAL_METHODS = ("quantile", "flops_gap", "cv_plus")
#: the least latency (ms) a FLOPs fit is taken to predict (a straight line can cross zero at tiny networks)
PRIOR_FLOOR_MS = 1e-3


def check_method(method: str) -> str:
    if method not in INTERVAL_METHODS:
        raise ConfigError(f"estimator.interval_method = {method!r} is not allowed; allowed: quantile (two quantile "
                          f"heads, conformalized), flops_gap (width from the gap to a FLOPs fit) or cv_plus (CV+ "
                          f"over estimator.interval_folds models each trained without one fold)")
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


# ----------------------------------------------------------------------------- CV+
def cv_folds(n: int, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of each of ``n`` training samples: a seeded permutation dealt round-robin."""
    return (np.random.default_rng(seed).permutation(n) % folds).astype(np.int64)


def cv_ranks(n: int, coverage: float) -> tuple[int, int]:
    """0-based order statistics of CV+'s lower and upper ends over ``n`` training residuals; a DataError when
    ``n`` is too small for the coverage (the upper end would be infinite)."""
    def ranks(m: int) -> tuple[int, int]:  # (1-based; the tolerance keeps 0.1 * 10 from flooring to 0)
        return int(np.floor((1.0 - coverage) * (m + 1) + 1e-9)), int(np.ceil(coverage * (m + 1) - 1e-9))

    lo, hi = ranks(n)
    if lo < 1 or hi > n:
        need = next(m for m in range(1, 10**7) if ranks(m)[0] >= 1 and ranks(m)[1] <= m)
        raise DataError(f"a {coverage:.0%} cv_plus interval needs at least {need} training samples "
                        f"(CV+ takes the ceil({coverage:g} (n + 1))-th of n residuals); got {n}: fit on more samples "
                        f"or lower estimator.interval")
    return lo - 1, hi - 1


def cv_plus_bounds(fold_z, fold_of, residuals, coverage: float):
    """CV+ ``(low, high)`` (transformed units) of a batch: ``fold_z`` ``(folds, batch)`` the fold models'
    predictions, ``fold_of`` and ``residuals`` ``(n,)`` the training samples' folds and out-of-fold errors."""
    fold_of = torch.as_tensor(fold_of, dtype=torch.long)
    r = torch.as_tensor(residuals, dtype=fold_z.dtype)[:, None]
    lo, hi = cv_ranks(len(r), coverage)
    z = fold_z[fold_of]  # (n, batch)
    return (torch.kthvalue(z - r, lo + 1, dim=0).values, torch.kthvalue(z + r, hi + 1, dim=0).values)
