"""Timing harness and the append-only, resumable measurement store."""
from hwnas.measure.harness import Timing, measure_latency
from hwnas.measure.store import MeasurementStore

__all__ = ["Timing", "measure_latency", "MeasurementStore"]
