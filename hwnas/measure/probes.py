"""Drift correction and the noise floor from a fixed set of probe networks timed in every session.

A shared machine is not the same machine from one minute to the next: another process, a frequency
change or a noisy neighbour on the host slows everything timed while it lasts. Interleaving
(:func:`hwnas.measure.harness.time_interleaved`) makes the networks of one session comparable; the
probes make sessions comparable. The first ``k`` requested architectures are the probes: their
stored latencies are the reference, every later session times them beside its new networks, and the
new networks' latencies are divided by the session's drift, the median over probes of
``now / reference`` (with fewer than :data:`MIN_PROBES` probes nothing is corrected).

The same re-measurements give the noise floor honestly: each probe's re-measurement is corrected
with the drift of the *other* probes (leave one out), as a new network is, and the noise floor is the
median over probes of the coefficient of variation of its reference and corrected re-measurements.
The uncorrected figure is kept beside it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

#: probes needed for a drift estimate (a median of fewer is one network's noise, not the machine's drift)
MIN_PROBES = 3


def drift(values: Sequence[float], reference: Sequence[float]) -> float:
    """A session's slow-down: the median over probes of ``values / reference`` (1.0 with fewer than
    :data:`MIN_PROBES` probes: nothing to correct by)."""
    reference = np.asarray(reference, dtype=np.float64)
    if len(reference) < MIN_PROBES:
        return 1.0
    return float(np.median(np.asarray(values, dtype=np.float64) / reference))


@dataclass
class ProbeSet:
    """Probe networks (``keys``, ``compiled`` runs) and their reference latencies in ms."""

    keys: list[str]
    compiled: list
    reference: np.ndarray
    log: list[dict] = field(default_factory=list)  # every re-measurement: arch, session, raw, drift (others)

    @classmethod
    def from_log(cls, log: list[dict]) -> "ProbeSet":
        """The probe set a noise file describes (its ``log`` rows; no compiled networks)."""
        keys = list(dict.fromkeys(r["arch"] for r in log))
        reference = np.array([next(r["reference_ms"] for r in log if r["arch"] == k) for k in keys], dtype=np.float64)
        return cls(keys, [], reference, log=list(log))

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def corrects(self) -> bool:
        return len(self) >= MIN_PROBES

    def drift(self, values: Sequence[float]) -> float:
        """This session's slow-down relative to the reference (1.0: no correction possible or needed)."""
        return drift(values, self.reference)

    def record(self, values: Sequence[float], session: str) -> None:
        """Log one session's probe latencies, each with the drift estimated from the other probes."""
        values = np.asarray(values, dtype=np.float64)
        ratios = values / self.reference
        for j, key in enumerate(self.keys):
            others = np.delete(ratios, j)
            drift = float(np.median(others)) if len(others) >= MIN_PROBES - 1 and self.corrects else 1.0
            self.log.append({"arch": key, "session": session, "reference_ms": float(self.reference[j]),
                             "raw_ms": float(values[j]), "drift": drift, "corrected_ms": float(values[j]) / drift})

    def noise_floor(self) -> tuple[float, float]:
        """``(corrected, raw)``: median over probes of the CV of reference + re-measurements (nan: none logged)."""
        if not self.log:
            return float("nan"), float("nan")
        out = []
        for column in ("corrected_ms", "raw_ms"):
            cvs = []
            for j, key in enumerate(self.keys):
                values = [self.reference[j]] + [r[column] for r in self.log if r["arch"] == key]
                if len(values) > 1:
                    cvs.append(float(np.std(values, ddof=1) / np.mean(values)))
            out.append(float(np.median(cvs)) if cvs else float("nan"))
        return out[0], out[1]
