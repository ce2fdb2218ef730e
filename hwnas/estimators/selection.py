"""Choose between a learned estimator and its free baseline on the samples both are fitted on.

A predictor fine-tuned from a few hundred target samples can lose to FLOPs fitted on the same
samples, e.g. where the target's input resolutions fall into encoding bins the base predictor never
saw. :func:`cross_validate` scores each candidate by k-fold cross-validation on the fitting samples
only (out-of-fold RMSE of the log latency) and adds their geometric mean (``blend``); the caller refits the
winner on all samples. Nothing held out for the final score is touched.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from hwnas.errors import ConfigError
from hwnas.estimators.base import LatencyEstimator

#: the candidate that averages the others (geometric mean of their predictions)
BLEND = "blend"
Factory = Callable[[Sequence, np.ndarray], LatencyEstimator]


class Blend(LatencyEstimator):
    """Geometric mean of fitted estimators' predictions."""

    name = BLEND

    def __init__(self, members: Sequence[LatencyEstimator]):
        super().__init__()
        if not members:
            raise ConfigError("a blend needs at least one estimator")
        self.members = list(members)

    def _predict(self, space, archs) -> np.ndarray:
        return geometric_mean([m.predict(space, archs) for m in self.members])


def geometric_mean(predictions: Sequence[np.ndarray]) -> np.ndarray:
    """Per architecture, the geometric mean of several estimators' latencies (ms; <= 0 counted as 1e-9)."""
    return np.exp(np.mean([np.log(np.clip(p, 1e-9, None)) for p in predictions], axis=0))


def rmse_log(pred: np.ndarray, y: np.ndarray) -> float:
    """RMSE of ``log(pred / y)``: scale-free like a relative error, without its blow-up on the tiny latencies of
    near-empty cells (a FLOPs line that predicts <= 0 ms is charged as predicting 1e-9 ms)."""
    return float(np.sqrt(np.mean(np.log(np.clip(pred, 1e-9, None) / y) ** 2)))


def cross_validate(factories: Mapping[str, Factory], space, archs: Sequence, latency_ms, folds: int = 5,
                   seed: int = 0, blend: Sequence[str] | None = None) -> dict[str, float]:
    """Out-of-fold :func:`rmse_log` of each candidate (and of the :class:`Blend` of ``blend``, the names of two or
    more of them; None: of all, when there are several) on ``archs``.

    ``factories[name](archs, latency_ms)`` returns an estimator fitted on those samples.
    """
    y = np.asarray(latency_ms, dtype=np.float64)
    n = len(y)
    folds = min(int(folds), n)
    if folds < 2:
        raise ConfigError(f"cross-validation needs >= 2 folds of the {n} fitting samples")
    order = np.random.default_rng(seed).permutation(n)
    oof = {name: np.empty(n) for name in factories}
    for k in range(folds):
        held = order[k::folds]
        train = np.setdiff1d(order, held)
        fit_archs, held_archs = [archs[i] for i in train], [archs[i] for i in held]
        for name, factory in factories.items():
            oof[name][held] = factory(fit_archs, y[train]).predict(space, held_archs)
    errors = {name: rmse_log(p, y) for name, p in oof.items()}
    members = list(factories) if blend is None else list(blend)
    if len(members) > 1:
        errors[BLEND] = rmse_log(geometric_mean([oof[name] for name in members]), y)
    return errors
