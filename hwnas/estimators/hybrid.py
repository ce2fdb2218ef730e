"""A learned correction on top of an analytic prior: latency = prior(arch) x correction(arch).

The prior (FLOPs fitted on the target samples) carries what it models well, e.g. how latency grows
with the input resolution, which a one-hot encoding cannot see inside a resolution bin or at all in
a bin its training data never filled; the correction (e.g. a predictor fine-tuned on
``latency / prior``) learns only the ratio, what the architecture does beyond its FLOPs.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from hwnas.errors import DataError
from hwnas.estimators.base import LatencyEstimator

#: the smallest prior, as a fraction of the smallest fitted latency (a line through FLOPs can reach <= 0)
PRIOR_FLOOR = 0.05


class ResidualEstimator(LatencyEstimator):
    """``prior`` fitted on the samples, ``correction`` fitted on their latency / prior ratios."""

    name = "residual"
    needs_fit = True

    def __init__(self, prior: LatencyEstimator, fit_correction: Callable[[Sequence, np.ndarray], LatencyEstimator]):
        super().__init__()
        self.prior, self.fit_correction = prior, fit_correction
        self.correction: LatencyEstimator | None = None
        self.floor = 0.0

    def _prior(self, space, archs) -> np.ndarray:
        return np.maximum(self.prior.predict(space, archs), self.floor)

    def fit(self, space, archs: Sequence, latency_ms) -> "ResidualEstimator":
        y = np.asarray(latency_ms, dtype=np.float64)
        if len(y) != len(archs) or not (y > 0).all():
            raise DataError(f"a residual estimator needs one positive latency per architecture; got {len(y)} for "
                            f"{len(archs)} architectures")
        self.prior.fit(space, archs, y)
        self.floor = PRIOR_FLOOR * float(y.min())
        self.correction = self.fit_correction(archs, y / self._prior(space, archs))
        self.fitted = True
        return self

    def _predict(self, space, archs) -> np.ndarray:
        return self._prior(space, archs) * self.correction.predict(space, archs)
