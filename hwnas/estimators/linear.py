"""Least squares shared by the fitted proxies: one linear map, or one per input resolution.

A space with elastic resolution (OFA, CompOFA) runs each resolution with different kernels,
so a per-resolution fit (``per_resolution=True``) removes a bias one global map cannot: on this
project's CPU the measured / lookup-table ratio ranged from 0.97 to 1.22 across resolutions
(experiments/local_cpu_latency). Resolutions with fewer samples than coefficients, and
resolutions never seen in fitting, use the global map.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hwnas.errors import DataError


def resolution_of(archs: Sequence) -> np.ndarray:
    """Each architecture's input resolution (``arch.r``); -1 for spaces without one."""
    return np.array([int(getattr(a, "r", -1)) for a in archs], dtype=np.int64)


class LinearFit:
    """``y ~ X @ coef`` by least squares, globally and (optionally) per group."""

    def __init__(self, per_group: bool = False):
        self.per_group = bool(per_group)
        self.coef: np.ndarray | None = None
        self.group_coef: dict[int, np.ndarray] = {}

    def fit(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, what: str = "estimator") -> "LinearFit":
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if len(y) < x.shape[1]:
            raise DataError(f"{what} needs at least {x.shape[1]} latency samples to fit, got {len(y)}")
        self.coef = np.linalg.lstsq(x, y, rcond=None)[0]
        self.group_coef = {}
        if self.per_group and groups is not None:
            for g in np.unique(groups):
                m = groups == g
                if m.sum() >= 2 * x.shape[1]:
                    self.group_coef[int(g)] = np.linalg.lstsq(x[m], y[m], rcond=None)[0]
        return self

    def predict(self, x: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        out = x @ self.coef
        if self.group_coef and groups is not None:
            for g, coef in self.group_coef.items():
                m = groups == g
                out[m] = x[m] @ coef
        return out
