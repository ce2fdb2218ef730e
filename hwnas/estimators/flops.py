"""FLOPs (and parameter) proxy: latency ~ a * FLOPs [+ b * params] + c, least squares
(``per_resolution=true``: one fit per input resolution).

The baseline every learned estimator must beat. Costs come from each space's layer
decomposition, so fitting or predicting thousands of architectures takes about a second.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hwnas.errors import ConfigError, choices_text
from hwnas.estimators.base import LatencyEstimator
from hwnas.estimators.linear import LinearFit, resolution_of

FEATURES = ("flops", "params", "peak_activation_bytes")


class FlopsEstimator(LatencyEstimator):
    name = "flops"
    needs_fit = True

    def __init__(self, features: Sequence[str] = ("flops",), per_resolution: bool = False, **fit_options):
        super().__init__(**fit_options)
        bad = [f for f in features if f not in FEATURES]
        if bad or not features:
            raise ConfigError(f"estimator.features = {list(features)} is not allowed; choose from {choices_text(FEATURES)}")
        self.features = tuple(features)
        self.linear = LinearFit(per_group=per_resolution)
        self.check_fit_samples()

    @property
    def min_fit_samples(self) -> int:
        return len(self.features) + 1  # one coefficient per feature and the intercept

    def fit_needs(self) -> str:
        return f"with features {list(self.features)} fits {self.min_fit_samples} coefficients"

    def design(self, space, archs) -> np.ndarray:
        costs = space.costs(archs)
        return np.column_stack([costs[f] / 1e6 for f in self.features] + [np.ones(len(archs))])

    def fit(self, space, archs, latency_ms) -> "FlopsEstimator":
        self.linear.fit(self.design(space, archs), latency_ms, resolution_of(archs), what="estimator=flops")
        self.fitted = True
        return self

    def _predict(self, space, archs) -> np.ndarray:
        return self.linear.predict(self.design(space, archs), resolution_of(archs))
