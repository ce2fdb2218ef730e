"""Timing harness and the append-only, resumable measurement store (locked, with an identity record)."""
from hwnas.measure.harness import Timing, measure_latency
from hwnas.measure.store import MeasurementStore

__all__ = ["Timing", "measure_latency", "MeasurementStore"]
