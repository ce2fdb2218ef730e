"""The estimator contract: ``fit`` on measured samples (when it learns), ``predict`` for a batch."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np

from hwnas.errors import ConfigError


class LatencyEstimator(ABC):
    """Answers "how long do these architectures take on the target device" in milliseconds.

    ``fit_data`` (a latency CSV) and ``fit_samples`` say where a fitted estimator learns from when a
    job fits it (see :func:`hwnas.estimators.fitting.fit_from_config`).
    """

    name: str = "estimator"
    needs_fit: bool = False

    def __init__(self, fit_data: str | None = None, fit_samples: int = 100, fit_seed: int = 0):
        self.fit_data = fit_data
        self.fit_samples = int(fit_samples)
        self.fit_seed = int(fit_seed)
        self.fitted = not self.needs_fit

    def fit(self, space, archs: Sequence, latency_ms: np.ndarray) -> "LatencyEstimator":
        self.fitted = True
        return self

    @abstractmethod
    def _predict(self, space, archs: Sequence) -> np.ndarray: ...

    def predict(self, space, archs: Sequence) -> np.ndarray:
        if not self.fitted:
            raise ConfigError(f"estimator={self.name} must be fit on latency samples before predicting: give "
                              f"estimator.fit_data=<CSV with arch, latency_ms> or use a table device")
        return np.asarray(self._predict(space, archs), dtype=np.float64)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
