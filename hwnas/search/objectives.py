"""Metrics a search can optimize or constrain: accuracy, latency, FLOPs, parameters, peak memory.

A :class:`Metric` is one named column of per-architecture values with a direction, backed by a
:class:`~hwnas.search.cache.MemoCache` so no architecture is estimated twice. Metrics report what
they cost per architecture (measured as the search runs, a prior guess before), which is how
:class:`~hwnas.search.problem.SearchProblem` evaluates cheap metrics before expensive ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hwnas.errors import ConfigError, choices_text
from hwnas.search.cache import MemoCache

#: Columns of ``space.costs`` a search can constrain or optimize.
COSTS = ("flops", "params", "peak_activation_bytes")
UNITS = {"accuracy": "%", "latency_ms": "ms", "flops": "FLOPs", "params": "parameters",
         "peak_activation_bytes": "bytes"}


@dataclass
class Metric:
    """One per-architecture value: ``name`` (e.g. ``accuracy``), read from ``column`` of ``cache``."""

    name: str
    cache: MemoCache
    column: str
    maximize: bool = False
    prior_seconds: float = 1e-5

    def __call__(self, archs: Sequence, keys: Sequence[str]) -> np.ndarray:
        return self.cache(archs, keys)[self.column]

    @property
    def seconds_per_arch(self) -> float:
        """Measured cost of computing one architecture (the prior until something was computed)."""
        measured = self.cache.seconds_per_arch
        return self.prior_seconds if measured is None else measured

    @property
    def unit(self) -> str:
        return UNITS.get(self.name, "")


def accuracy_metric(source, space) -> Metric:
    """Accuracy (%) from an :class:`~hwnas.search.accuracy.AccuracySource`, maximized."""
    cache = MemoCache(lambda archs, keys: {"accuracy": source.predict(space, archs, keys)}, ["accuracy"],
                      name=f"accuracy ({source.name})")
    return Metric("accuracy", cache, "accuracy", maximize=True, prior_seconds=source.prior_seconds)


def latency_metric(estimator, space) -> Metric:
    """Latency (ms) predicted by a fitted :class:`~hwnas.estimators.LatencyEstimator`, minimized."""
    cache = MemoCache(lambda archs, keys: {"latency_ms": estimator.predict(space, archs)}, ["latency_ms"],
                      name=f"latency (estimator={estimator.name})")
    return Metric("latency_ms", cache, "latency_ms", prior_seconds=1e-5)


def upper_latency_metric(estimator, space) -> Metric:
    """The upper end of each architecture's calibrated latency interval (ms), minimized: a search constrained
    by it keeps each pick's own error bar under the budget (``search.latency_margin=uncertainty``)."""
    cache = MemoCache(lambda archs, keys: {"latency_ms": estimator.predict_interval(space, archs)[1]}, ["latency_ms"],
                      name=f"latency (upper end of estimator={estimator.name}'s interval)")
    return Metric("latency_ms", cache, "latency_ms", prior_seconds=2e-5)


def device_latency_metric(device, space) -> Metric:
    """Latency (ms) straight from a device: a table lookup, or a measurement on this machine."""
    from hwnas.devices import LocalDevice

    cache = MemoCache(lambda archs, keys: {"latency_ms": device.latency(space, archs)}, ["latency_ms"],
                      name=f"latency (device={device.name})")
    return Metric("latency_ms", cache, "latency_ms", prior_seconds=1.0 if isinstance(device, LocalDevice) else 1e-6)


def cost_metrics(space, names: Sequence[str] = COSTS) -> dict[str, Metric]:
    """FLOPs, parameters and peak activation bytes from ``space.costs``, sharing one cache."""
    bad = [n for n in names if n not in COSTS]
    if bad:
        raise ConfigError(f"cost metric {bad[0]!r} is not allowed; allowed: {choices_text(COSTS)}")
    cache = MemoCache(lambda archs, keys: space.costs(archs), COSTS, name="costs")
    return {n: Metric(n, cache, n, prior_seconds=1e-4) for n in names}
