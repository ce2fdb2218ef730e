"""Lookup-table estimator: a network's latency is the sum of its layers' profiled latencies (OFA).

Tables are YAML in OFA's format (``key: {count, mean, std}``); a directory of tables (OFA's
Note10 set: one file per resolution) is merged. ``calibrate=true`` fits ``a * sum + b`` on
samples, absorbing per-network overheads that isolated layer timings miss.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hwnas.data.root import data_path
from hwnas.data.tables import read_lut_yaml
from hwnas.errors import ConfigError, DataError
from hwnas.estimators.base import LatencyEstimator


STATISTICS = ("mean", "median")


def load_tables(path: str | Path, data_dir: str | None = None, statistic: str = "mean") -> dict[str, float]:
    """``layer key -> mean ms`` from a YAML file or every ``*.yaml`` in a directory.

    A relative path that does not exist here is looked up under the data root (``ofa/note10_lut``).
    """
    p = Path(path)
    if not p.exists() and not p.is_absolute():
        p = data_path(path, data_dir)
    files = sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    if not files:
        raise DataError(f"lookup-table directory '{p}' holds no *.yaml tables")
    merged: dict[str, float] = {}
    for f in files:
        for key, entry in read_lut_yaml(f).items():
            if statistic not in entry:
                raise DataError(f"lookup table '{f}' entry '{key}' has no '{statistic}' (it has {', '.join(entry)}); "
                                f"use estimator.statistic=mean")
            merged[key] = float(entry[statistic])
    return merged


class LookupTableEstimator(LatencyEstimator):
    name = "lut"

    def __init__(self, path: str | None = None, data_dir: str | None = None, calibrate: bool = False,
                 statistic: str = "mean", **fit_options):
        self.needs_fit = bool(calibrate)
        super().__init__(**fit_options)
        if not path:
            raise ConfigError("estimator=lut needs estimator.path=<YAML table or directory of tables>; "
                              "build one with `hwnas job=build_lut`, or use estimator=lut_note10")
        if statistic not in STATISTICS:
            raise ConfigError(f"estimator.statistic = {statistic!r} is not allowed; allowed: mean, median")
        self.path = str(path)
        self.table = load_tables(path, data_dir, statistic)
        self.scale, self.offset = 1.0, 0.0

    def layer_sum(self, space, archs) -> np.ndarray:
        out = np.empty(len(archs), dtype=np.float64)
        table = self.table
        for i, arch in enumerate(archs):
            total = 0.0
            for layer in space.layers(arch):
                try:
                    total += table[layer.key]
                except KeyError:
                    hint = (" (OFA's Note10 tables describe the width-1.2 network at resolutions 160..224: "
                            "search_space.width_mult=1.2)" if "note10" in self.path else
                            " (rebuild the table for this search space with `hwnas job=build_lut`)")
                    raise DataError(f"layer '{layer.key}' of {space.to_string(arch)} is not in the lookup table "
                                    f"'{self.path}' ({len(table)} layers){hint}") from None
            out[i] = total
        return out

    def fit(self, space, archs, latency_ms) -> "LookupTableEstimator":
        if self.needs_fit:
            x = self.layer_sum(space, archs)
            (self.scale, self.offset), *_ = np.linalg.lstsq(np.column_stack([x, np.ones_like(x)]),
                                                            np.asarray(latency_ms, float), rcond=None)
        self.fitted = True
        return self

    def _predict(self, space, archs) -> np.ndarray:
        return self.scale * self.layer_sum(space, archs) + self.offset
