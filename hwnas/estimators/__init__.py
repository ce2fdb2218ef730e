"""Latency estimators: FLOPs proxy, lookup table, a CSV of estimates, (learned predictors), direct measurement."""
from hwnas.estimators.base import LatencyEstimator
from hwnas.estimators.flops import FlopsEstimator
from hwnas.estimators.lut import LookupTableEstimator
from hwnas.estimators.table import TableEstimator

__all__ = ["LatencyEstimator", "FlopsEstimator", "LookupTableEstimator", "TableEstimator"]
