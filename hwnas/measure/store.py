"""Append-only CSV of measurements that survives interrupts.

Each row is written and flushed to disk (``fsync``) as soon as it is measured. Reopening the
file drops a torn last line (a kill in the middle of a write) and reports which keys are done,
so a rerun measures only what is missing: nothing is lost, nothing is duplicated.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from hwnas.errors import DataError
from hwnas.io import ensure_dir


class MeasurementStore:
    def __init__(self, path: str | os.PathLike, columns: Sequence[str], key: str = "arch"):
        self.path = Path(path)
        self.key = key
        ensure_dir(self.path.parent)
        self.rows: list[dict[str, str]] = []
        if self.path.exists() and self.path.stat().st_size > 0:
            self._repair_torn_tail()
            with open(self.path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                header = list(reader.fieldnames or [])
                self.rows = list(reader)
            missing = [c for c in columns if c not in header]
            if missing:
                raise DataError(f"measurement file '{self.path}' has columns {header}; missing {missing} "
                                f"(it was written by another job or version: choose another output)")
            self.columns = header
        else:
            self.columns = list(columns)
            with open(self.path, "w", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerow(self.columns)
                fh.flush()
                os.fsync(fh.fileno())
        self.done = {row[key] for row in self.rows}

    def _repair_torn_tail(self) -> None:
        with open(self.path, "rb+") as fh:
            data = fh.read()
            if data and not data.endswith(b"\n"):
                fh.truncate(data.rfind(b"\n") + 1)

    def __contains__(self, key: str) -> bool:
        return key in self.done

    def __len__(self) -> int:
        return len(self.rows)

    def missing(self, keys: Iterable[str]) -> list[str]:
        return [k for k in keys if k not in self.done]

    def append(self, row: Mapping[str, object]) -> None:
        """Write one row durably; a row for a key already present is an error (no duplicates)."""
        key = str(row[self.key])
        if key in self.done:
            raise DataError(f"'{key}' is already measured in '{self.path}'")
        buf = io.StringIO()
        csv.writer(buf).writerow([row.get(c, "") for c in self.columns])
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        self.rows.append({c: str(row.get(c, "")) for c in self.columns})
        self.done.add(key)
