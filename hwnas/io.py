"""Crash-safe file output: everything a job writes goes through a temp file and an atomic rename."""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from hwnas.errors import ConfigError, WriteError
from hwnas.interrupts import deferred_signals


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


def _atomic_write(path: str | os.PathLike, write) -> Path:
    """``write(file object)`` into a temp file beside ``path``, fsync, rename over ``path``. A full disk or any
    other refusal of the system is a :class:`WriteError` naming the file; the previous file stays as it was.
    A signal while writing ends the job once the file is in place (:func:`deferred_signals`)."""
    with deferred_signals():
        return _write_in_place(Path(path), write)


def _write_in_place(path: Path, write) -> Path:
    ensure_dir(path.parent)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
    except (OSError, RuntimeError) as exc:
        # torch reports a failed write into a file object as a RuntimeError raised while handling the OSError
        os_error = exc if isinstance(exc, OSError) else exc.__context__
        if not isinstance(os_error, OSError):
            raise
        kept = "the previous file is kept" if path.exists() else "nothing was written"
        raise WriteError(f"cannot write '{path}': {os_error.strerror or os_error}; {kept}") from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return _atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(payload, path: str | os.PathLike) -> Path:
    """``torch.save`` through a temp file and an atomic rename: a crash never leaves half a checkpoint
    (saved through a file object, so a full disk surfaces as its OSError, not as torch's RuntimeError)."""
    import torch

    return _atomic_write(path, lambda fh: torch.save(payload, fh))


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


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes (``hashlib`` algorithm name), read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
