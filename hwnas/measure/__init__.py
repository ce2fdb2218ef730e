"""Timing harness and the append-only, resumable measurement store (locked, with an identity record)."""
from hwnas.measure.harness import Timing, time_interleaved
from hwnas.measure.store import MeasurementStore

__all__ = ["Timing", "time_interleaved", "MeasurementStore"]
