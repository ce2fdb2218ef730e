"""Checking a search against ground truth: true latency of its picks, regret, hypervolume ratio.

True latency comes from the device (its table, or a fresh measurement on a local device). Where
the whole space is known exactly (every architecture in both the device table and an accuracy
table: NAS-Bench-201 with a HELP device and its accuracy table), the true optimum under each
budget and the true accuracy-latency front are computed by enumeration, giving

- **regret**: true best accuracy among architectures whose *true* latency meets the budget, minus
  the pick's true accuracy (a pick that violates the budget still has a regret; its violation is
  reported beside it);
- **hypervolume ratio**: hypervolume of the found front (re-scored with true accuracy and true
  latency) over that of the true front, in (accuracy, latency) space with one fixed reference point.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import numpy as np

from hwnas.devices import LocalDevice, TableDevice
from hwnas.errors import DataError
from hwnas.search.margin import underestimate
from hwnas.search.pareto import hypervolume, pareto_front


def true_latency(device, space, archs: Sequence) -> np.ndarray:
    """Device latency (ms) of each architecture; NaN where a table device does not list it."""
    if not len(archs):
        return np.zeros(0)
    if isinstance(device, TableDevice):
        try:
            return np.asarray(device.latency(space, list(archs)), dtype=np.float64)
        except DataError:  # some are not in the table: look them up one by one
            out = np.full(len(archs), np.nan)
            for i, arch in enumerate(archs):
                try:
                    out[i] = device.latency(space, [arch])[0]
                except DataError:
                    pass
            return out
    return np.asarray(device.latency(space, list(archs)), dtype=np.float64)


@dataclass
class GroundTruth:
    """Accuracy (%) and latency (ms) of every architecture of the space."""

    keys: list[str]
    accuracy: np.ndarray
    latency_ms: np.ndarray

    @classmethod
    def build(cls, space, device, accuracy_source) -> "GroundTruth | None":
        """The enumerated space, or None unless both accuracy and latency are known for all of it."""
        if isinstance(device, LocalDevice):
            return None
        accuracy = accuracy_source.ground_truth(space)
        if accuracy is None or len(accuracy) < space.size():
            return None
        archs, lat = device.dataset(space)
        latency = dict(zip((space.to_string(a) for a in archs), lat.tolist()))
        keys = [k for k in accuracy if k in latency]
        if len(keys) < space.size():
            return None
        return cls(keys, np.array([accuracy[k] for k in keys]), np.array([latency[k] for k in keys]))

    @cached_property
    def position(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.keys)}

    def lookup(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        idx = np.array([self.position[k] for k in keys], dtype=np.int64)
        return self.accuracy[idx], self.latency_ms[idx]

    def best_under(self, budget_ms: float) -> tuple[float, str | None]:
        ok = np.flatnonzero(self.latency_ms <= budget_ms)
        if not len(ok):
            return float("nan"), None
        i = ok[np.argmax(self.accuracy[ok])]
        return float(self.accuracy[i]), self.keys[i]

    def front(self) -> np.ndarray:
        """Indices of the true accuracy-latency front."""
        return pareto_front(np.column_stack([-self.accuracy, self.latency_ms]))

    def reference(self, budgets: Sequence[float]) -> tuple[float, float]:
        """Default hypervolume reference over the budgets' range: (true best accuracy under half the
        smallest budget, the largest budget). A nadir-based point (the fastest network, ~10 % on
        NB201) would make any search score ~0.99; this one separates good fronts from random ones."""
        floor, _ = self.best_under(min(budgets) / 2)
        if not np.isfinite(floor):
            front = self.front()
            floor = float(self.accuracy[front].min())
        return floor, float(max(budgets))


def hv_ratio(found_accuracy: np.ndarray, found_latency: np.ndarray, truth: GroundTruth,
             reference: tuple[float, float]) -> tuple[float, float, float]:
    """``(found hv / true hv, found hv, true hv)`` with accuracy maximized and latency minimized."""
    ref = np.array([-reference[0], reference[1]])
    found = np.column_stack([-np.asarray(found_accuracy), np.asarray(found_latency)])
    found = found[np.isfinite(found).all(axis=1)]
    front = truth.front()
    true_points = np.column_stack([-truth.accuracy[front], truth.latency_ms[front]])
    hv_found = hypervolume(found, ref) if len(found) else 0.0
    hv_true = hypervolume(true_points, ref)
    return (hv_found / hv_true if hv_true > 0 else float("nan")), hv_found, hv_true


@dataclass
class Verification:
    """Ground-truth view of a search's picks and front (NaN where unknown)."""

    pick_latency_ms: np.ndarray
    pick_accuracy: np.ndarray
    optimum_accuracy: np.ndarray  # true best accuracy under each budget (needs the enumerated space)
    front_latency_ms: np.ndarray
    front_accuracy: np.ndarray
    truth: GroundTruth | None


def verify(space, device, accuracy_source, picks, front_archs: Sequence, front_keys: Sequence[str],
           front: bool | None = None) -> Verification:
    """True latency of the picks from ``device``, and of the front when ``front`` (None: only from a
    table device, since measuring a whole front on a local device can take as long as a measurement
    campaign); true accuracy where the source is a table."""
    found = [i for i, p in enumerate(picks) if p.arch is not None]
    pick_latency = np.full(len(picks), np.nan)
    pick_latency[found] = true_latency(device, space, [picks[i].arch for i in found])
    known = accuracy_source.ground_truth(space) or {}
    pick_accuracy = np.array([known.get(p.key, np.nan) if p.key else np.nan for p in picks], dtype=np.float64)
    front_accuracy = np.array([known.get(k, np.nan) for k in front_keys], dtype=np.float64)
    truth = GroundTruth.build(space, device, accuracy_source)
    optimum = np.array([truth.best_under(p.budget_ms)[0] if truth else np.nan for p in picks], dtype=np.float64)
    if front is None:
        front = isinstance(device, TableDevice)
    front_latency = true_latency(device, space, front_archs) if front else np.full(len(front_archs), np.nan)
    return Verification(pick_latency, pick_accuracy, optimum, front_latency, front_accuracy, truth)


def pick_records(picks, verification: Verification | None, costs: dict[str, dict[str, float]]) -> list[dict]:
    """One flat record per budget: the pick, its costs and, when verified, its ground-truth scores."""
    records = []
    cost_names = list(next(iter(costs.values()))) if costs else []
    for i, p in enumerate(picks):
        r = {"budget_ms": p.budget_ms, "arch": p.key or "", "accuracy": p.values.get("accuracy", np.nan),
             "predicted_latency_ms": p.values.get("latency_ms", np.nan),
             **{c: costs.get(p.key, {}).get(c, np.nan) for c in cost_names}}
        if verification is not None:
            t = verification.pick_latency_ms[i]
            r["true_latency_ms"] = t
            r["violation"] = float(t > p.budget_ms) if np.isfinite(t) else np.nan
            r["violation_pct"] = max(0.0, (t / p.budget_ms - 1) * 100) if np.isfinite(t) else np.nan
            # how far the latency model under-predicted the pick (beyond the search's margin: it may violate)
            r["underestimate_pct"] = float(underestimate(r["predicted_latency_ms"], t) * 100)
            r["true_accuracy"] = verification.pick_accuracy[i]
            if verification.truth is not None:
                r["optimum_accuracy"] = verification.optimum_accuracy[i]
                r["regret"] = r["optimum_accuracy"] - r["true_accuracy"]
        records.append(r)
    return records
