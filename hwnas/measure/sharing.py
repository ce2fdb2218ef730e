"""Files that several runs append to: one writer at a time, and every row from the same setup.

A default output such as ``outputs/measurements/<space>__<device>.csv`` is shared by every run
that picks it. Two guards keep such a file one dataset:

- :class:`WriterLock`: an exclusive ``flock`` on ``<file>.lock`` held while a run writes. A second
  writer is refused at once (it would measure the same architectures again and interleave rows).
  The OS drops the lock when the holder's file is closed or its process dies, even by SIGKILL, so a
  crash never leaves a stale lock; the lock file itself stays (deleting it would let two writers
  lock two different files).
- The identity record ``<file>.identity.json``: what every row depends on besides its key (search
  space options, device and protocol, supernet checkpoint digest, data split...), as a flat
  ``{key: value}`` written when the file is created. A run whose identity differs in any key is
  refused with that key, both values and what to do; a file with rows and no record (an older hwnas,
  or written by hand) is refused too, since nothing says which setup its rows come from.

The record is a sidecar, not a header, so the CSV stays a plain table for pandas and table devices.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import time
import weakref
from pathlib import Path
from typing import Any, Mapping

from hwnas.errors import DataError
from hwnas.io import atomic_write_text

LOCK_SUFFIX = ".lock"
IDENTITY_SUFFIX = ".identity.json"
FORMAT = "hwnas-file-identity/1"


def lock_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_name(p.name + LOCK_SUFFIX)


def identity_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_name(p.name + IDENTITY_SUFFIX)


class WriterLock:
    """Exclusive, non-blocking lock of ``path`` for this process until :meth:`release`.

    ``flock`` locks belong to an open file description, so a second lock of the same file from this
    very process conflicts as well. A forked child (a DataLoader worker) closes its copy of the
    descriptor at once: the lock ends when the writer releases it, not when its last worker exits.
    ``option`` names the config key choosing the file, for the message.
    """

    def __init__(self, path: str | os.PathLike, option: str):
        self.target = Path(path)
        self.path = lock_path(self.target)
        self._fd: int | None = None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DataError(f"cannot open the lock file '{self.path}' ({exc.strerror}); "
                            f"choose another {option}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise DataError(f"'{self.target}' is being written by another hwnas process (pid {holder}); "
                                f"wait for it to finish or choose another {option}") from None
            raise DataError(f"cannot lock '{self.path}' ({exc.strerror}): its file system does not support "
                            f"locks; choose another {option} on a local disk") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        _HELD.add(self)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            _HELD.discard(self)
            os.ftruncate(fd, 0)  # no pid of a finished process left for the next refused writer to name
            os.close(fd)  # closing the description's last descriptor drops the flock

    def __del__(self) -> None:  # a store dropped unclosed: no lock outlives its object
        try:
            self.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown: the OS releases it anyway
            pass

    def _forget(self) -> None:
        """In a forked child: close the inherited descriptor without unlocking (the parent holds the lock)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


_HELD: weakref.WeakSet[WriterLock] = weakref.WeakSet()


def _forget_in_child() -> None:
    for lock in list(_HELD):
        lock._forget()
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_in_child)


class _Unset:
    def __repr__(self) -> str:
        return "unset"


UNSET = _Unset()


def _shown(value: Any, width: int = 48) -> str:
    if value is UNSET:
        return "unset"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) > width:
        text = text[: width - 3] + "..."
    return f"'{text}'" if isinstance(value, str) else text


def normalized(identity: Mapping[str, Any]) -> dict[str, Any]:
    """``identity`` as it reads back from JSON (tuples as lists, keys as strings), for comparison."""
    return json.loads(json.dumps(dict(identity), default=str))


def differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, recorded value, current value)`` for every key that differs, in the current run's order."""
    current, missing = normalized(current), UNSET
    keys = list(current) + [k for k in recorded if k not in current]
    return [(k, recorded.get(k, missing), current.get(k, missing)) for k in keys
            if recorded.get(k, missing) != current.get(k, missing)]


def read_identity(path: str | os.PathLike, option: str) -> dict[str, Any] | None:
    """The identity recorded for ``path``; None when it has no record."""
    record = identity_path(path)
    try:
        payload = json.loads(record.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or "not JSON"
        raise DataError(f"identity record '{record}' of '{path}' is unreadable ({why}); choose another {option} "
                        f"or move the file and its identity record away") from None
    if not (isinstance(payload, dict) and payload.get("format") == FORMAT and isinstance(payload.get("identity"), dict)):
        raise DataError(f"'{record}' is not an hwnas identity record ({FORMAT}); choose another {option} "
                        f"or move the file and its identity record away")
    return payload["identity"]


def write_identity(path: str | os.PathLike, identity: Mapping[str, Any]) -> Path:
    payload = {"format": FORMAT, "file": Path(path).name, "identity": normalized(identity),
               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "created_by_pid": os.getpid()}
    return atomic_write_text(identity_path(path), json.dumps(payload, indent=1) + "\n")


def check_identity(path: str | os.PathLike, identity: Mapping[str, Any], n_rows: int, option: str) -> None:
    """Refuse to add rows of ``identity`` to ``path`` (holding ``n_rows`` rows) unless its record says the same.

    A file without rows takes this run's identity (nothing in it can be mixed up).
    """
    path = Path(path)
    if n_rows == 0:
        write_identity(path, identity)
        return
    recorded = read_identity(path, option)
    if recorded is None:
        rows = f"{n_rows} row" + ("s" if n_rows != 1 else "")
        raise DataError(f"'{path}' has {rows} but no identity record '{identity_path(path).name}' (written by an "
                        f"older hwnas or by hand), so nothing says which setup its rows come from; choose another "
                        f"{option} or move the file away")
    diff = differences(recorded, identity)
    if diff:
        key, was, now = diff[0]
        others = ", ".join(d[0] for d in diff[1:4]) + (", ..." if len(diff) > 4 else "")
        more = f" (and {len(diff) - 1} more: {others})" if len(diff) > 1 else ""
        raise DataError(f"'{path}' holds rows of another setup: {key} is {_shown(was)} in the file and {_shown(now)} "
                        f"in this run{more}; choose another {option} or move the file (and its "
                        f"{IDENTITY_SUFFIX}) away")
