"""Latency looked up in a CSV of per-architecture estimates, e.g. the ``predictions.csv`` of
``hwnas job=transfer`` (``device, arch, latency_ms, predicted_ms, ...``), so that a predictor
that only exists as its predictions (a few-shot transferred one) can drive a search.

The table must list every architecture the search reaches (on NB201, transfer predicts all
15,625); an unknown architecture is an error, not a guess. Repeated rows are averaged.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hwnas.data.tables import _archs, _numeric, _read_csv, _require_columns, _where, mean_by_arch
from hwnas.errors import ConfigError, DataError, choices_text
from hwnas.estimators.base import LatencyEstimator


class TableEstimator(LatencyEstimator):
    """``column`` of the CSV at ``path`` by architecture; ``device`` keeps the rows of one device of a
    ``device`` column (job=transfer writes one CSV for all its target devices)."""

    name = "table"

    def __init__(self, path: str | None = None, column: str = "predicted_ms", device: str | None = None,
                 **fit_options):
        super().__init__(**fit_options)
        self.path, self.column, self.device = (str(path) if path else None), str(column), device
        self.strings: list[str] = []
        self.values = np.zeros(0)
        if self.path:
            self._read()
        self._index: dict[str, float] | None = None
        self._space_name: str | None = None

    def _read(self) -> None:
        frame, path = _read_csv(self.path)
        _require_columns(frame, path, ["arch", self.column])
        if self.device is not None:
            _require_columns(frame, path, ["device"])
            known = sorted({str(d) for d in frame["device"]})
            frame = frame[frame["device"].astype(str) == str(self.device)]
            if not len(frame):
                raise ConfigError(f"estimator.device = {self.device!r} has no rows in '{path}'; "
                                  f"devices there: {choices_text(known)}")
            frame = frame.reset_index(drop=True)
        self.strings = _archs(frame, path, allow_duplicates=True)
        self.values = _numeric(frame, [self.column])[:, 0]
        bad = ~np.isfinite(self.values)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"table '{path}' column '{self.column}' has a non-numeric value at {_where(i)}")

    def index(self, space) -> dict[str, float]:
        """Canonical architecture string -> value (mean over repeated rows)."""
        if not self.path:
            raise ConfigError("estimator=table needs estimator.path=<CSV with arch and estimator.column>, "
                              "e.g. the predictions.csv of job=transfer with estimator.device=<its target>")
        if self._index is None or self._space_name != space.name:
            self._index = mean_by_arch(space, self.strings, self.values, f"table '{self.path}'")
            self._space_name = space.name
        return self._index

    def _predict(self, space, archs) -> np.ndarray:
        index = self.index(space)
        out = np.empty(len(archs), dtype=np.float64)
        for i, arch in enumerate(archs):
            key = space.to_string(arch)
            try:
                out[i] = index[key]
            except KeyError:
                raise DataError(f"architecture {key} is not in the table '{Path(self.path).name}' "
                                f"({len(index)} architectures{', device ' + str(self.device) if self.device else ''}); "
                                f"estimator=table only knows the architectures it lists") from None
        return out
