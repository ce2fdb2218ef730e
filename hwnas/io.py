"""Crash-safe file output: everything a job writes goes through a temp file and an atomic rename."""
from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from hwnas.errors import ConfigError


def ensure_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents); a clear error if it cannot be created or written."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output directory '{p}': {exc.strerror}") from None
    if not os.access(p, os.W_OK):
        raise ConfigError(f"output directory '{p}' is not writable")
    return p


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(payload, path: str | os.PathLike) -> Path:
    """``torch.save`` through a temp file and an atomic rename: a crash never leaves half a checkpoint."""
    import torch

    path = Path(path)
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def flat_numeric(metrics: Mapping[str, object]) -> dict[str, float]:
    """Keep the ``{name: number}`` contract of ``metrics.json``: numbers only, NaN/inf as null-free floats."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        if isinstance(v, bool):
            out[k] = float(v)
        elif isinstance(v, (int, float)) or hasattr(v, "__float__"):
            f = float(v)
            if math.isfinite(f):
                out[k] = int(f) if isinstance(v, int) else f
    return out


def write_metrics(path: str | os.PathLike, metrics: Mapping[str, object]) -> Path:
    return atomic_write_text(path, json.dumps(flat_numeric(metrics), indent=2, sort_keys=True) + "\n")


def write_csv(path: str | os.PathLike, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """Write a whole CSV atomically (for append-as-you-go files see ``hwnas.measure``)."""
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    writer.writerows(rows)
    return atomic_write_text(path, buf.getvalue())
