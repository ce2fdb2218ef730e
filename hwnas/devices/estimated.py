"""A device whose latencies are an estimator's: a lookup table that covers the whole space.

OFA's Note10 tables give every architecture of the width-1.2 OFA space a latency (the sum of
its layers), which is what Syed et al.'s ``note10_lut`` "device" is for 10,000 of them. As a
device it verifies a search's picks (``job=search device=lut_note10 search.verify=true``): the
true latency of an architecture no table lists, without measuring on the phone.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hwnas.devices.base import Device
from hwnas.devices.specs import descriptor_for
from hwnas.errors import ConfigError


class EstimatorDevice(Device):
    """Latency from a fitted-free estimator (e.g. ``LookupTableEstimator``) standing in for a device."""

    def __init__(self, estimator, name: str = "estimated"):
        if getattr(estimator, "needs_fit", False) and not getattr(estimator, "fitted", False):
            raise ConfigError(f"device {name!r} needs an estimator that predicts without fitting "
                              f"(a lookup table without calibration); got {type(estimator).__name__}")
        self.estimator, self.name = estimator, str(name)
        self.descriptor = descriptor_for(self.name)

    def latency(self, space, archs: Sequence) -> np.ndarray:
        return np.asarray(self.estimator.predict(space, list(archs)), dtype=np.float64)
