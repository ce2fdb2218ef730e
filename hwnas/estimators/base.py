"""The estimator contract: ``fit`` on measured samples (when it learns), ``predict`` for a batch."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np

from hwnas.errors import ConfigError
from hwnas.options import count, seed

#: the fewest architectures any fit learns from (a proxy that fits more coefficients asks for more)
MIN_FIT_SAMPLES = 2


class LatencyEstimator(ABC):
    """Answers "how long do these architectures take on the target device" in milliseconds.

    ``fit_data`` (a latency CSV) and ``fit_samples`` say where a fitted estimator learns from when a
    job fits it (see :func:`hwnas.estimators.fitting.fit_from_config`).
    """

    name: str = "estimator"
    needs_fit: bool = False

    def __init__(self, fit_data: str | None = None, fit_samples: int = 100, fit_seed: int = 0):
        self.fit_data = fit_data
        self.fit_samples = count(fit_samples, "estimator.fit_samples", MIN_FIT_SAMPLES,
                                 why=f"architectures of a table device it is fitted on; a fit needs >= {MIN_FIT_SAMPLES}")
        self.fit_seed = seed(fit_seed, "estimator.fit_seed")
        self.fitted = not self.needs_fit

    @property
    def min_fit_samples(self) -> int:
        """The fewest architectures a fit of this estimator can learn from."""
        return MIN_FIT_SAMPLES

    def check_fit_samples(self) -> None:
        """``fit_samples`` (when a table device supplies the fit) against :attr:`min_fit_samples`."""
        if self.needs_fit and not self.fit_data and self.fit_samples < self.min_fit_samples:
            raise ConfigError(f"estimator.fit_samples = {self.fit_samples} is too few: estimator={self.name} "
                              f"{self.fit_needs()} and needs >= {self.min_fit_samples} architectures to fit")

    def fit_needs(self) -> str:
        """What a fit determines, for messages (e.g. "fits 2 coefficients")."""
        return "learns from latency samples"

    @property
    def label(self) -> str:
        """The estimator as messages name it (a learned one adds its model, e.g. "predictor (ridge)")."""
        return self.name

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
