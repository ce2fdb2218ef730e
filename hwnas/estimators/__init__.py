"""Latency estimators: FLOPs proxy, lookup table, (learned predictors), direct measurement."""
from hwnas.estimators.base import LatencyEstimator
from hwnas.estimators.flops import FlopsEstimator
from hwnas.estimators.lut import LookupTableEstimator

__all__ = ["LatencyEstimator", "FlopsEstimator", "LookupTableEstimator"]
