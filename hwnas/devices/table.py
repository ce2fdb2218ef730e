"""Devices backed by a latency table: the published reference data or any user CSV."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import numpy as np

from hwnas.data.root import data_path
from hwnas.data.tables import LATENCY_COLUMN, load_syed, merge_repeats, read_latency_table, read_wide_table
from hwnas.devices.base import Device
from hwnas.devices.specs import descriptor_for
from hwnas.errors import ConfigError, DataError, InvalidArchitecture, choices_text

SOURCES = ("help", "syed")
HELP_SPACES = ("nb201", "fbnet")


class TableDevice(Device):
    """Latencies looked up by architecture string.

    - ``source=help``: a device column of HELP's NB201/FBNet table (``column=pixel3``);
    - ``source=syed``: an OFA/CompOFA dataset of Syed et al. (``column=rtx2080ti_b64``);
    - ``path=<CSV>``: any ``arch, latency_ms`` file (``column`` picks another latency column, or a
      device of a wide ``index, arch, <device>...`` file).
    """

    def __init__(self, path: str | None = None, column: str | None = None, source: str | None = None,
                 space: str | None = None, data_dir: str | None = None, name: str | None = None):
        if path:
            self.table = read_latency_table(path, column or LATENCY_COLUMN, allow_duplicates=True)
            label = column if column and column != LATENCY_COLUMN else Path(path).stem
        elif source == "help":
            if space not in HELP_SPACES:
                raise ConfigError(f"device=help has tables for search_space {choices_text(HELP_SPACES)}; "
                                  f"search_space={space} has none (OFA/CompOFA: device=syed)")
            wide = read_wide_table(data_path(f"{space}/latency_help.csv", data_dir))
            if column not in wide.devices:
                raise ConfigError(f"device.column = {column!r} is not a device of the {space} HELP table; "
                                  f"allowed: {choices_text(wide.devices)}")
            self.table = wide.to_long(column)
            label = column
        elif source == "syed":
            if not column:
                raise ConfigError("device=syed needs device.column=<device>, e.g. note10_lut, rtx2080ti_b64, "
                                  "tesla_p40_b64, xeon_cpu_b64")
            self.table = load_syed(space, column, data_dir)
            label = column
        else:
            raise ConfigError(f"device=table needs device.path=<CSV with arch, latency_ms>, or device.source in "
                              f"{choices_text(SOURCES)}; got path={path!r}, source={source!r}")
        self.name = name or label
        self.descriptor = descriptor_for(label)

    @property
    def source(self) -> str:
        return self.table.source

    def __len__(self) -> int:
        return len(self.table)

    @functools.lru_cache(maxsize=4)
    def _index(self, space) -> dict[str, float]:
        """Canonical arch string -> latency; table strings are re-canonicalized. Repeated rows of one
        architecture are averaged when they agree as re-measurements do, and refused when they disagree
        wildly (:func:`hwnas.data.tables.merge_repeats`)."""
        try:
            archs = space.from_strings(self.table.archs)
        except InvalidArchitecture as exc:
            raise DataError(f"table '{self.source}' holds architectures that are not in search space "
                            f"{space.name}: {exc}") from None
        return merge_repeats([space.to_string(a) for a in archs], self.table.latency_ms, f"table '{self.source}'")

    def archs(self, space) -> list:
        """Every distinct architecture of the table."""
        return space.from_strings(list(self._index(space)))

    def dataset(self, space) -> tuple[list, np.ndarray]:
        """``(archs, latency_ms)`` of every distinct architecture."""
        index = self._index(space)
        return space.from_strings(list(index)), np.fromiter(index.values(), dtype=np.float64, count=len(index))

    def latency(self, space, archs: Sequence) -> np.ndarray:
        index = self._index(space)
        out = np.empty(len(archs), dtype=np.float64)
        for i, arch in enumerate(archs):
            key = space.to_string(arch)
            if key not in index:
                raise DataError(f"architecture {key} is not in the table '{self.source}' ({len(index)} architectures); "
                                f"a table device only knows the architectures it lists")
            out[i] = index[key]
        return out
