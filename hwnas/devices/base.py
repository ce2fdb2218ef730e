"""What a device is to hwnas: a source of latencies plus a hardware descriptor."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class HardwareDescriptor:
    """Published (table devices) or detected (local devices) hardware facts.

    Hardware-generalized predictors consume :meth:`vector`; unknown figures are ``None``.
    """

    name: str
    kind: str  # gpu, cpu, phone, sbc, asic, fpga
    model: str = ""
    cores: float | None = None
    memory_gb: float | None = None
    bandwidth_gbs: float | None = None
    peak_gflops: float | None = None
    batch_size: int = 1
    source: str = ""

    KINDS = ("cpu", "gpu", "phone", "sbc", "asic", "fpga")
    NUMERIC = ("cores", "memory_gb", "bandwidth_gbs", "peak_gflops", "batch_size")

    def vector(self) -> np.ndarray:
        """``[log1p(cores, memory, bandwidth, peak, batch)..., kind one-hot]``; unknowns as 0 with a mask bit."""
        values = [getattr(self, k) for k in self.NUMERIC]
        known = [v is not None for v in values]
        logs = [float(np.log1p(v)) if v is not None else 0.0 for v in values]
        kind = [float(self.kind == k) for k in self.KINDS]
        return np.array(logs + [float(k) for k in known] + kind, dtype=np.float32)


class Device(ABC):
    """Anything that can say how long architectures of a space take."""

    name: str
    descriptor: HardwareDescriptor

    @abstractmethod
    def latency(self, space, archs: Sequence) -> np.ndarray:
        """Latency in ms of each architecture (measured now, or looked up)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
