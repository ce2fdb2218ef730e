"""Append-only CSV of measurements that survives interrupts and is never shared by mistake.

Each row is written and flushed to disk (``fsync``) as soon as it is measured. Reopening the
file drops a torn last line (a kill in the middle of a write) and reports which keys are done,
so a rerun measures only what is missing: nothing is lost, nothing is duplicated.

The file may be shared between runs (a default output, a pipeline's dataset), so a store holds the
file's writer lock while it is open and appends only rows of the setup the file was created with
(:mod:`hwnas.measure.sharing`). Use it as a context manager (or call :meth:`close`).
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from hwnas.errors import DataError
from hwnas.interrupts import set_progress
from hwnas.io import ensure_dir
from hwnas.measure.sharing import WriterLock, check_identity


class MeasurementStore:
    """Rows keyed by ``key`` in ``path``; ``identity``: what every row depends on besides its key, as
    ``{key: primitive}`` (see :mod:`hwnas.measure.provenance`); ``option``: the config key choosing
    ``path``, named in the messages that refuse it."""

    def __init__(self, path: str | os.PathLike, columns: Sequence[str], identity: Mapping[str, Any],
                 key: str = "arch", option: str = "measure.output"):
        self.path = Path(path)
        self.key = key
        ensure_dir(self.path.parent)
        self._lock = WriterLock(self.path, option)
        try:
            self._open(list(columns), identity, option)
        except BaseException:
            self._lock.release()
            raise

    def _open(self, columns: list[str], identity: Mapping[str, Any], option: str) -> None:
        self.rows: list[dict[str, str]] = []
        header: list[str] = []
        if self.path.exists() and self.path.stat().st_size > 0:
            self._repair_torn_tail()  # only under the lock: another writer's line in flight is never cut
            with open(self.path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                header = list(reader.fieldnames or [])
                self.rows = list(reader)
        check_identity(self.path, identity, len(self.rows), option)
        if self.rows:
            missing = [c for c in columns if c not in header]
            if missing:
                raise DataError(f"measurement file '{self.path}' has columns {header}; missing {missing} "
                                f"(it was written by another job or version: choose another {option})")
            self.columns = header
        else:
            self.columns = columns
            with open(self.path, "w", newline="", encoding="utf-8") as fh:  # (under the lock: no other writer)
                csv.writer(fh).writerow(self.columns)
                fh.flush()
                os.fsync(fh.fileno())
        self.done = {row[self.key] for row in self.rows}

    def _repair_torn_tail(self) -> None:
        with open(self.path, "rb+") as fh:
            data = fh.read()
            if data and not data.endswith(b"\n"):
                fh.truncate(data.rfind(b"\n") + 1)

    def close(self) -> None:
        """Release the file to other writers (rows are already on disk)."""
        self._lock.release()

    def __enter__(self) -> "MeasurementStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __contains__(self, key: str) -> bool:
        return key in self.done

    def __len__(self) -> int:
        return len(self.rows)

    def row(self, key: str) -> dict[str, str]:
        """The stored row of ``key`` (KeyError if it is not measured)."""
        if key not in self.done:
            raise KeyError(key)
        return next(r for r in self.rows if r[self.key] == key)

    def missing(self, keys: Iterable[str]) -> list[str]:
        return [k for k in keys if k not in self.done]

    def append(self, row: Mapping[str, object]) -> None:
        """Write one row durably; a row for a key already present is an error (no duplicates)."""
        if not self._lock.held:
            raise RuntimeError(f"measurement store '{self.path}' is closed")
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
        set_progress(f"{len(self.rows)} rows saved in '{self.path}'", key=f"store:{self.path}")
