"""Readers for the published tables: latency (wide and long), accuracy, zero-cost proxies, OFA LUTs.

Every reader validates what it returns, so the rest of the code can trust a table: the columns
it needs exist, every latency is a finite positive number of milliseconds, and each architecture
appears once (unless the caller says repeats are expected). A bad file fails here, with the file,
the column, the row and the value in one line, rather than as a NaN somewhere in a fit.

Rows are counted from 1 after the header; ``line`` is the line in the file (header = line 1).
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import yaml

from hwnas.data.root import data_path
from hwnas.errors import ConfigError, DataError, choices_text

LATENCY_COLUMN = "latency_ms"

NB201_LATENCY = "nb201/latency_help.csv"
FBNET_LATENCY = "fbnet/latency_help.csv"
NB201_ACCURACY = "nb201/accuracy_200ep.csv"
FBNET_PROXIES = "fbnet/zero_cost_proxies.csv"
SYED_DIR = "ofa/syed"

#: Syed et al. sampled their CompOFA fixed-kernel dataset with replacement from its 1,215
#: networks (243 x 5 resolutions), so its 10,000 rows repeat architectures by construction.
SYED_SPACES_WITH_REPEATS = frozenset({"compofa_fixed"})

_LATENCY_RULE = "latencies must be finite and > 0 ms"


# ---------------------------------------------------------------------------- table types
@dataclass(frozen=True)
class LatencyTable:
    """One latency per architecture: ``archs[i]`` took ``latency_ms[i]`` milliseconds."""

    archs: list[str]
    latency_ms: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""

    def __len__(self) -> int:
        return len(self.archs)


@dataclass(frozen=True)
class WideTable:
    """Many devices per architecture: ``latency_ms[i, j]`` is ``archs[i]`` on ``devices[j]``."""

    index: np.ndarray
    archs: list[str]
    devices: list[str]
    latency_ms: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.archs)

    def column(self, device: str) -> np.ndarray:
        return self.latency_ms[:, self._device_position(device)].copy()

    def to_long(self, device: str) -> LatencyTable:
        return LatencyTable(
            archs=list(self.archs),
            latency_ms=self.column(device),
            extra={"index": self.index.copy()},
            source=f"{self.source} [{device}]",
        )

    def _device_position(self, device: str) -> int:
        try:
            return self.devices.index(device)
        except ValueError:
            raise ConfigError(
                f"unknown device '{device}' in latency table '{self.source}'; "
                f"available: {choices_text(self.devices)}"
            ) from None


@dataclass(frozen=True)
class AccuracyTable:
    """Test accuracy in percent per architecture and dataset."""

    index: np.ndarray
    archs: list[str]
    accuracy: dict[str, np.ndarray]
    source: str = ""

    @property
    def datasets(self) -> list[str]:
        return list(self.accuracy)

    def __len__(self) -> int:
        return len(self.archs)

    def column(self, dataset: str) -> np.ndarray:
        return _named_column(self.accuracy, dataset, "dataset", f"accuracy table '{self.source}'")


@dataclass(frozen=True)
class ProxyTable:
    """Zero-cost proxy scores per architecture (any sign; only finiteness is checked)."""

    index: np.ndarray
    archs: list[str]
    proxies: dict[str, np.ndarray]
    source: str = ""

    @property
    def names(self) -> list[str]:
        return list(self.proxies)

    def __len__(self) -> int:
        return len(self.archs)

    def column(self, name: str) -> np.ndarray:
        return _named_column(self.proxies, name, "proxy", f"proxy table '{self.source}'")


def _named_column(columns: dict[str, np.ndarray], name: str, what: str, where: str) -> np.ndarray:
    if name not in columns:
        raise ConfigError(f"unknown {what} '{name}' in {where}; available: {choices_text(columns)}")
    return columns[name].copy()


# ---------------------------------------------------------------------------- CSV plumbing
def _read_csv(path: str | os.PathLike) -> tuple[pd.DataFrame, Path]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"table '{path}' does not exist")
    try:
        # Only an empty cell is missing; a literal "NaN" stays text so the error can quote it.
        frame = pd.read_csv(path, dtype={"arch": str}, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise DataError(f"table '{path}' is empty; expected a header row and data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"table '{path}' is not a readable CSV: {_one_line(exc)}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame) == 0:
        raise DataError(f"table '{path}' has a header ({choices_text(frame.columns)}) but no data rows")
    return frame, path


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _where(row: int) -> str:
    return f"row {row + 1} (line {row + 2})"


def _require_columns(frame: pd.DataFrame, path: Path, names: Sequence[str]) -> None:
    for name in names:
        if name not in frame.columns:
            raise DataError(
                f"table '{path}' has no column '{name}'; columns present: {choices_text(frame.columns)}"
            )


def _archs(frame: pd.DataFrame, path: Path, allow_duplicates: bool) -> list[str]:
    column = frame["arch"]
    empty = column.isna().to_numpy() | (column.fillna("").str.strip() == "").to_numpy()
    if empty.any():
        raise DataError(f"table '{path}' has an empty 'arch' at {_where(int(np.argmax(empty)))}")
    archs = [str(a) for a in column]
    if not allow_duplicates:
        repeated = column.duplicated(keep=False).to_numpy()
        if repeated.any():
            first = archs[int(np.argmax(repeated))]
            rows = np.flatnonzero(column.to_numpy() == first)
            shown = ", ".join(str(r + 1) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise DataError(
                f"table '{path}' lists architecture {first!r} {len(rows)} times (rows {shown}); "
                f"each architecture must appear once (pass allow_duplicates=True to keep repeats)"
            )
    return archs


def _index(frame: pd.DataFrame, path: Path) -> np.ndarray:
    _require_columns(frame, path, ["index"])
    values = pd.to_numeric(frame["index"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"table '{path}' column 'index' has {_shown(frame['index'].iat[row])} at {_where(row)}; "
            f"expected an integer"
        )
    return values.astype(np.int64)


def _numeric(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """``(rows, len(columns))`` float64; text that is not a number becomes NaN (checked later)."""
    block = frame[list(columns)]
    if all(pd.api.types.is_numeric_dtype(block[c]) for c in columns):
        return block.to_numpy(dtype=np.float64)
    return np.column_stack(
        [pd.to_numeric(block[c], errors="coerce").to_numpy(dtype=np.float64) for c in columns]
    )


def _shown(raw) -> str:
    if isinstance(raw, float) and math.isnan(raw):
        return "an empty value"
    return f"value {raw!r}" if isinstance(raw, str) else f"value {raw}"


def _check_values(
    frame: pd.DataFrame,
    path: Path,
    columns: Sequence[str],
    values: np.ndarray,
    valid: Callable[[np.ndarray], np.ndarray],
    rule: str,
) -> None:
    """The first offending cell in file order (row first, then column) names the problem."""
    with np.errstate(invalid="ignore"):
        bad = ~valid(values)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        name = columns[col]
        raise DataError(
            f"table '{path}' column '{name}' has {_shown(frame[name].iat[row])} at {_where(row)}; {rule}"
        )


def _positive_finite(values: np.ndarray) -> np.ndarray:
    return np.isfinite(values) & (values > 0)


def _check_latency(frame: pd.DataFrame, path: Path, columns: Sequence[str], values: np.ndarray) -> None:
    _check_values(frame, path, columns, values, _positive_finite, _LATENCY_RULE)


def _as_columns(columns: Sequence[str], values: np.ndarray) -> dict[str, np.ndarray]:
    return {name: np.ascontiguousarray(values[:, j]) for j, name in enumerate(columns)}


# ---------------------------------------------------------------------------- readers
def read_wide_table(path: str | os.PathLike, *, allow_duplicates: bool = False) -> WideTable:
    """A ``index, arch, <device>...`` table (HELP's NB201 and FBNet latencies)."""
    frame, path = _read_csv(path)
    _require_columns(frame, path, ["index", "arch"])
    devices = [c for c in frame.columns if c not in ("index", "arch")]
    if not devices:
        raise DataError(
            f"table '{path}' has no device columns; expected the wide layout 'index, arch, <device>...'"
        )
    index = _index(frame, path)
    archs = _archs(frame, path, allow_duplicates)
    latency = _numeric(frame, devices)
    _check_latency(frame, path, devices, latency)
    return WideTable(index=index, archs=archs, devices=devices, latency_ms=latency, source=str(path))


def read_latency_table(
    path: str | os.PathLike, column: str = LATENCY_COLUMN, *, allow_duplicates: bool = False
) -> LatencyTable:
    """A long ``arch, latency_ms[, more]`` table; ``column`` picks another latency column.

    A wide ``index, arch, <device>...`` file is read too when ``column`` names one of its devices,
    so any device of a published table can stand in for a user CSV.
    """
    frame, path = _read_csv(path)
    _require_columns(frame, path, ["arch", column])
    archs = _archs(frame, path, allow_duplicates)
    latency = _numeric(frame, [column])
    _check_latency(frame, path, [column], latency)
    wide = list(frame.columns[:2]) == ["index", "arch"] and LATENCY_COLUMN not in frame.columns
    if wide:
        extra = {"index": _index(frame, path)}
    else:
        others = [
            c for c in frame.columns if c not in ("arch", column) and pd.api.types.is_numeric_dtype(frame[c])
        ]
        extra = _as_columns(others, _numeric(frame, others)) if others else {}
    return LatencyTable(archs=archs, latency_ms=latency[:, 0].copy(), extra=extra, source=str(path))


def _read_metric_table(path, valid, rule: str, what: str):
    frame, path = _read_csv(path)
    _require_columns(frame, path, ["index", "arch"])
    names = [c for c in frame.columns if c not in ("index", "arch")]
    if not names:
        raise DataError(f"table '{path}' has no {what} columns after 'index, arch'")
    index = _index(frame, path)
    archs = _archs(frame, path, allow_duplicates=False)
    values = _numeric(frame, names)
    _check_values(frame, path, names, values, valid, rule)
    return index, archs, _as_columns(names, values), str(path)


def read_accuracy_table(path: str | os.PathLike) -> AccuracyTable:
    """A ``index, arch, <dataset>...`` table of test accuracies in percent."""
    index, archs, columns, source = _read_metric_table(
        path,
        lambda v: np.isfinite(v) & (v >= 0) & (v <= 100),
        "accuracies must be percentages in [0, 100]",
        "dataset",
    )
    return AccuracyTable(index=index, archs=archs, accuracy=columns, source=source)


def read_accuracy_column(path: str | os.PathLike, column: str = "accuracy") -> tuple[list[str], np.ndarray]:
    """``arch`` strings and one accuracy column (percent) of any CSV, e.g. ``arch, accuracy``.

    Repeated architectures are kept (callers average them). A column that looks like fractions
    (every value <= 1) is refused: accuracies are percent everywhere in hwnas.
    """
    frame, path = _read_csv(path)
    _require_columns(frame, path, ["arch", column])
    archs = _archs(frame, path, allow_duplicates=True)
    values = _numeric(frame, [column])
    _check_values(frame, path, [column], values, lambda v: np.isfinite(v) & (v >= 0) & (v <= 100),
                  "accuracies must be percentages in [0, 100]")
    if len(values) > 1 and float(values.max()) <= 1.0:
        raise DataError(f"table '{path}' column '{column}' holds values in [0, 1] (max {float(values.max()):.4g}); "
                        f"accuracies must be percentages in [0, 100]: multiply by 100")
    return archs, values[:, 0].copy()


def read_proxy_table(path: str | os.PathLike) -> ProxyTable:
    """A ``index, arch, <proxy>...`` table of zero-cost proxy scores."""
    index, archs, columns, source = _read_metric_table(
        path, np.isfinite, "proxy scores must be finite numbers", "proxy"
    )
    return ProxyTable(index=index, archs=archs, proxies=columns, source=source)


def read_arch_column(path: str | os.PathLike, setting: str) -> list[str]:
    """The ``arch`` column of any CSV, in row order; ``setting`` names the option in errors."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{setting} '{path}' does not exist")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if "arch" not in (reader.fieldnames or []):
            raise DataError(f"{setting} '{path}' has no 'arch' column; columns: {reader.fieldnames}")
        return [row["arch"] for row in reader]


def read_lut_yaml(path: str | os.PathLike) -> dict[str, dict]:
    """A layer-latency lookup table: ``layer key -> {count, mean, std}`` (ProxylessNAS: ``var``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"lookup table '{path}' does not exist")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as fh:
            table = yaml.load(fh, Loader=loader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DataError(f"lookup table '{path}' is not valid YAML: {_one_line(exc)}") from None
    if not isinstance(table, dict) or not table:
        raise DataError(
            f"lookup table '{path}' is not a non-empty mapping; expected 'layer key: {{count, mean, std}}' entries"
        )
    for key, entry in table.items():
        mean = entry.get("mean") if isinstance(entry, dict) else None
        if isinstance(mean, bool) or not isinstance(mean, (int, float)) or not math.isfinite(mean) or mean < 0:
            raise DataError(
                f"lookup table '{path}' entry '{key}' has mean {mean!r}; "
                f"expected a mapping with a finite 'mean' >= 0 ms (and count, std)"
            )
    return {str(key): dict(entry) for key, entry in table.items()}


# ---------------------------------------------------------------------------- by name
def load_nb201_latency(data_dir: str | os.PathLike | None = None) -> WideTable:
    return read_wide_table(data_path(NB201_LATENCY, data_dir))


def load_fbnet_latency(data_dir: str | os.PathLike | None = None) -> WideTable:
    return read_wide_table(data_path(FBNET_LATENCY, data_dir))


def load_nb201_accuracy(data_dir: str | os.PathLike | None = None) -> AccuracyTable:
    return read_accuracy_table(data_path(NB201_ACCURACY, data_dir))


def load_fbnet_proxies(data_dir: str | os.PathLike | None = None) -> ProxyTable:
    return read_proxy_table(data_path(FBNET_PROXIES, data_dir))


def syed_pairs(data_dir: str | os.PathLike | None = None) -> list[str]:
    """The ``space__device`` tables present in ``ofa/syed``."""
    return sorted(p.stem for p in data_path(SYED_DIR, data_dir).glob("*__*.csv"))


def load_syed(
    space: str,
    device: str,
    data_dir: str | os.PathLike | None = None,
    *,
    allow_duplicates: bool | None = None,
) -> LatencyTable:
    """A Syed et al. OFA/CompOFA latency dataset; repeats are allowed where the sampling made them."""
    pairs = syed_pairs(data_dir)
    key = f"{space}__{device}"
    if key not in pairs:
        raise ConfigError(
            f"no Syed et al. latency table for space '{space}' and device '{device}'; "
            f"available space__device pairs: {choices_text(pairs)}"
        )
    if allow_duplicates is None:
        allow_duplicates = space in SYED_SPACES_WITH_REPEATS
    return read_latency_table(data_path(f"{SYED_DIR}/{key}.csv", data_dir), allow_duplicates=allow_duplicates)


#: Repeated rows of one architecture are re-measurements: averaged when they agree (latency: max/min within
#: x1.5, a device's run-to-run noise; accuracy: within 2 points), averaged with a one-line warning when they
#: disagree moderately (up to x3, 10 points), and refused beyond: a mean of 1 ms and 1000 ms describes neither.
LATENCY_REPEATS = (1.5, 3.0)
ACCURACY_REPEATS = (2.0, 10.0)


def merge_repeats(keys: Sequence[str], values, what: str, latency: bool = True) -> dict[str, float]:
    """``{key: mean value}`` over the rows of each key (row ``i`` is data row ``i + 1`` of ``what``), checking
    that repeated rows agree (:data:`LATENCY_REPEATS` as a ratio, or :data:`ACCURACY_REPEATS` in points)."""
    from hwnas.options import warn

    values = np.asarray(values, dtype=np.float64)
    agree, disagree = LATENCY_REPEATS if latency else ACCURACY_REPEATS
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    moderate = []
    for key, rows in groups.items():
        if len(rows) < 2:
            continue
        v = values[rows]
        spread = float(v.max() / v.min()) if latency else float(v.max() - v.min())
        if spread > agree:
            moderate.append((spread, key, rows))
    if moderate:
        spread, key, rows = max(moderate)
        v = values[rows]
        shown = ", ".join(f"{x:.6g}{' ms' if latency else ' %'} at {_where(r)}" for x, r in zip(v[:5], rows[:5]))
        shown += ", ..." if len(rows) > 5 else ""
        gap = f"max/min {spread:.3g}" if latency else f"{spread:.3g} points apart"
        rule = (f"re-measurements agree within x{agree:g} (averaged up to x{disagree:g})" if latency else
                f"re-evaluations agree within {agree:g} points (averaged up to {disagree:g})")
        text = f"{what} lists architecture {key} {len(rows)} times with values that disagree: {shown} ({gap})"
        if spread > disagree:
            raise DataError(f"{text}; {rule}: fix or drop the wrong rows")
        warn(f"{text}; averaged, but {rule}" + (f"; {len(moderate) - 1} more such architectures"
                                               if len(moderate) > 1 else ""))
    return {key: float(values[rows].mean()) for key, rows in groups.items()}


def mean_by_arch(space, strings: Sequence[str], values: np.ndarray, what: str) -> dict[str, float]:
    """Canonical architecture string -> mean accuracy over repeated rows (``what`` names the table in errors);
    repeats that disagree by more than :data:`ACCURACY_REPEATS` points are refused (see :func:`merge_repeats`)."""
    from hwnas.errors import InvalidArchitecture

    try:
        archs = space.from_strings(strings)
    except InvalidArchitecture as exc:
        raise DataError(f"{what} holds architectures that are not in search space {space.name}: {exc}") from None
    return merge_repeats([space.to_string(a) for a in archs], values, what, latency=False)
