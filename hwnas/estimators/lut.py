"""Lookup-table estimator: a network's latency is the sum of its layers' profiled latencies (OFA).

Tables are YAML in OFA's format (``key: {count, mean, std}``). A directory of per-resolution
tables (OFA's Note10 set, ``note10_<r>_lookup_table.yaml``) is used as OFA uses it: a network at
resolution r is summed from the table of r. Layers such as the classifier appear in every file
with different timings, so merging the files would mix measurements of different sessions.
``calibrate=global`` (or ``true``) fits ``a * sum + b`` on samples, absorbing per-network
overheads that isolated layer timings miss; ``calibrate=per_resolution`` fits one ``(a, b)`` per
resolution, absorbing the per-table bias of tables profiled at different moments or with
different kernels per shape. ``granularity=kernel`` sums a table of fused kernels (nn-Meter's
view, ``hwnas/spaces/kernels.py``) built with ``job=build_lut build_lut.granularity=kernel``.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from hwnas.data.root import data_path
from hwnas.data.tables import read_lut_yaml
from hwnas.errors import ConfigError, DataError, choices_text
from hwnas.estimators.base import LatencyEstimator
from hwnas.estimators.linear import LinearFit, resolution_of
from hwnas.spaces.kernels import check_granularity, table_units
from hwnas.spaces.slots import SlotSums


STATISTICS = ("mean", "median")
CALIBRATIONS = ("none", "global", "per_resolution")


_RESOLUTION_IN_NAME = re.compile(r"_(\d+)_lookup_table\.ya?ml$")


def load_tables(path: str | Path, data_dir: str | None = None, statistic: str = "mean") -> dict[int | None, dict[str, float]]:
    """``{resolution: {layer key: ms}}`` from a YAML file or every ``*.yaml`` in a directory.

    Files named ``*_<r>_lookup_table.yaml`` are keyed by ``r``; any other file by ``None`` (a
    table for every resolution). A relative path that does not exist here is looked up under
    the data root (``ofa/note10_lut``).
    """
    p = Path(path)
    if not p.exists() and not p.is_absolute():
        p = data_path(path, data_dir)
    files = sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    if not files:
        raise DataError(f"lookup-table directory '{p}' holds no *.yaml tables")
    tables: dict[int | None, dict[str, float]] = {}
    for f in files:
        m = _RESOLUTION_IN_NAME.search(f.name)
        table = tables.setdefault(int(m.group(1)) if m else None, {})
        for key, entry in read_lut_yaml(f).items():
            if statistic not in entry:
                raise DataError(f"lookup table '{f}' entry '{key}' has no '{statistic}' (it has {', '.join(entry)}); "
                                f"use estimator.statistic=mean")
            table[key] = float(entry[statistic])
    return tables


class LookupTableEstimator(LatencyEstimator):
    name = "lut"

    def __init__(self, path: str | None = None, data_dir: str | None = None, calibrate: bool | str = False,
                 statistic: str = "mean", granularity: str = "layer", **fit_options):
        calibrate = {True: "global", False: "none", None: "none"}.get(calibrate, calibrate)
        if calibrate not in CALIBRATIONS:
            raise ConfigError(f"estimator.calibrate = {calibrate!r} is not allowed; allowed: {choices_text(CALIBRATIONS)} "
                              f"(or true/false)")
        self.calibrate = calibrate
        self.needs_fit = calibrate != "none"
        super().__init__(**fit_options)
        if not path:
            raise ConfigError("estimator=lut needs estimator.path=<YAML table or directory of tables>; "
                              "build one with `hwnas job=build_lut`, or use estimator=lut_note10")
        if statistic not in STATISTICS:
            raise ConfigError(f"estimator.statistic = {statistic!r} is not allowed; allowed: mean, median")
        self.granularity = check_granularity(granularity, "estimator.granularity")
        self.path = str(path)
        self.tables = load_tables(path, data_dir, statistic)
        self.linear = LinearFit(per_group=calibrate == "per_resolution")
        self.check_fit_samples()

    def fit_needs(self) -> str:
        return f"with calibrate={self.calibrate} fits a * sum + b"

    def layer_sum(self, space, archs) -> np.ndarray:
        """Each architecture's table sum; vectorized (:class:`~hwnas.spaces.slots.SlotSums`) where the space has layer slots."""
        if self.granularity == "layer" and hasattr(space, "layer_slots") and len(archs):
            sums = self.slot_sums(space)
            ks, e, d, r = space.arrays(archs)
            out = sums(ks, e, d, r)
            bad = np.flatnonzero(np.isnan(out))
            if bad.size:  # a layer missing from the table: the loop names it
                self._loop_sum(space, [archs[bad[0]]])
            return out
        return self._loop_sum(space, archs)

    def slot_sums(self, space) -> SlotSums:
        cache = self.__dict__.setdefault("_slot_cache", {})
        slots = space.layer_slots()
        if id(slots) not in cache:  # (the slots are kept beside their sums, so the id stays theirs)
            cache[id(slots)] = (slots, SlotSums(space, self._table_value))
        return cache[id(slots)][1]

    def _table_value(self, r: int, layer) -> float:
        try:
            return self.table_of(r).get(layer.key, np.nan)
        except DataError:  # no table for r: its sums are NaN, and the loop names the gap
            return np.nan

    def _loop_sum(self, space, archs) -> np.ndarray:
        out = np.empty(len(archs), dtype=np.float64)
        for i, arch in enumerate(archs):
            table = self.table_for(arch)
            total = 0.0
            for layer in table_units(space, arch, self.granularity):
                try:
                    total += table[layer.key]
                except KeyError:
                    hint = (" (OFA's Note10 tables describe the width-1.2 network at resolutions 160..224: "
                            "search_space.width_mult=1.2)" if "note10" in self.path else
                            f" (rebuild the table for this search space with `hwnas job=build_lut "
                            f"build_lut.granularity={self.granularity}`)")
                    raise DataError(f"layer '{layer.key}' of {space.to_string(arch)} is not in the lookup table "
                                    f"'{self.path}' ({len(table)} layers){hint}") from None
            out[i] = total
        return out

    def table_for(self, arch) -> dict[str, float]:
        """The table of the architecture's resolution when tables are per resolution, else the only one."""
        return self.table_of(getattr(arch, "r", None))

    def table_of(self, r: int | None) -> dict[str, float]:
        """The table of resolution ``r`` (None: the space has no resolution gene)."""
        if None in self.tables and len(self.tables) == 1:
            return self.tables[None]
        if r in self.tables:
            return self.tables[r]
        if None in self.tables:
            return self.tables[None]
        raise DataError(f"the lookup tables in '{self.path}' cover resolutions "
                        f"{', '.join(str(k) for k in sorted(self.tables))}; resolution {r} has none")

    def fit(self, space, archs, latency_ms) -> "LookupTableEstimator":
        if self.needs_fit:
            x = self.layer_sum(space, archs)
            self.linear.fit(np.column_stack([x, np.ones_like(x)]), latency_ms, resolution_of(archs),
                            what="estimator=lut calibration")
        self.fitted = True
        return self

    def _predict(self, space, archs) -> np.ndarray:
        x = self.layer_sum(space, archs)
        if not self.needs_fit:
            return x
        return self.linear.predict(np.column_stack([x, np.ones_like(x)]), resolution_of(archs))

