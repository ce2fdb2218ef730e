"""Read back the W&B runs written on this machine (offline, or online with their local files): ``job=report
report.source=wandb`` builds its tables from them.

A run folder (``<WANDB_DIR>/wandb/offline-run-*`` or ``run-*``) holds one ``run-<id>.wandb`` file, the
record log W&B's own ``wandb sync`` uploads: a 7-byte header (``:W&B``, a magic number, a version), then
LevelDB-log chunks in 32 KiB blocks, each chunk ``crc32, length (2 bytes), type`` (1 a whole record, 2 its
first part, 3 a middle part, 4 its last part), the records being ``wandb_internal_pb2.Record`` protobuf
messages of the installed wandb (its schema travels with the package). Offline runs write no
``wandb-summary.json`` or ``config.yaml`` beside it, so the log is the only place their summary and config
are kept.
"""
from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from hwnas.errors import DataError

_MAGIC, _HEADER, _BLOCK, _CHUNK = b":W&B", 7, 32768, 7


def records(path: str | Path) -> Iterator[Any]:
    """The ``Record`` messages of a ``.wandb`` file, in order (a truncated last record is dropped)."""
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(path)
    data = path.read_bytes()
    if data[:4] != _MAGIC:
        raise DataError(f"'{path}' is not a W&B run file (it starts with {data[:7]!r}, not {_MAGIC!r})")
    pos, payload = _HEADER, b""
    while pos + _CHUNK <= len(data):
        if _BLOCK - pos % _BLOCK < _CHUNK:  # a block's tail too short for a chunk header is padding
            pos += _BLOCK - pos % _BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + _CHUNK])
        if kind == 0:  # zero padding: the end of what was written
            break
        payload += data[pos + _CHUNK:pos + _CHUNK + length]
        pos += _CHUNK + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(payload)
            payload = b""
            yield record


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


@dataclass
class WandbRun:
    """What a run file says: the run record (project, group, job type, tags), its config and summary as
    they stand at the end, the keys its history logged, and its exit code (None: it never finished)."""

    folder: Path
    run: Any = None
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)
    visualize: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None


def read_run(folder: str | Path, wait: float = 0.0) -> WandbRun:
    """The run of a W&B run folder (the one holding ``run-*.wandb``). W&B's service writes the file behind the
    process that logs: ``wait`` > 0 rereads it for up to that many seconds until its exit record is there (a
    reader right behind ``run.finish()``)."""
    deadline = time.monotonic() + wait
    while True:
        run = _read_run(Path(folder))
        if (run.exit_code is not None and run.run is not None) or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if run.run is None:
        raise DataError(f"W&B run file in '{folder}' has no run record (an interrupted write?)")
    return run


def _read_run(folder: Path) -> WandbRun:
    logs = sorted(folder.glob("run-*.wandb"))
    if len(logs) != 1:
        raise DataError(f"W&B run folder '{folder}' holds {len(logs)} run-*.wandb files; a run folder holds one")
    out = WandbRun(folder)
    for r in records(logs[0]):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            out.run = r.run
            out.config.update({_key(u): json.loads(u.value_json) for u in r.run.config.update})
        elif kind == "config":
            for u in r.config.update:
                if list(u.nested_key[:2]) == ["_wandb", "visualize"]:
                    out.visualize[u.nested_key[2]] = json.loads(u.value_json)
                elif (u.key or u.nested_key[0]) != "_wandb":  # run.config.update during the run
                    out.config[_key(u)] = json.loads(u.value_json)
        elif kind == "summary":
            out.summary.update({_key(u): json.loads(u.value_json) for u in r.summary.update})
        elif kind == "history":
            out.history.update({_key(i): json.loads(i.value_json) for i in r.history.item})
        elif kind == "exit":
            out.exit_code = int(r.exit.exit_code)
    return out


def started(run: WandbRun) -> tuple[int, int]:
    """When the run started (seconds, nanoseconds): the order the jobs of a sweep ran in."""
    return (run.run.start_time.seconds, run.run.start_time.nanos)


def run_folders(root: str | Path) -> list[Path]:
    """Every W&B run folder under ``root`` (a WANDB_DIR, a run dir, a sweep dir), in path order."""
    return sorted({p.parent for p in Path(root).rglob("run-*.wandb")})
