"""Checkpoints of a fit that survive full disks, kills and stale run dirs.

Every Lightning fit hwnas runs with a work dir keeps two files in ``<run dir>/checkpoints``:
``last.ckpt`` (every epoch) and ``interrupted.ckpt`` (on an exception or a signal, see
:mod:`hwnas.interrupts`); a rerun in the same run dir resumes from the one with the most training.
Three rules keep that safe:

- a checkpoint is written to a temp file beside it, fsynced, loaded back, and only then renamed over
  the previous one (:class:`SafeCheckpointIO`); a failed write (disk full, file size limit) leaves
  the previous checkpoint as it was and ends the job with one line (:class:`CheckpointError`);
- on resume each candidate is loaded first; an unreadable one (half written by an older version, a
  copy cut short) is named in one line and renamed to ``*.damaged``, never deleted and never picked
  again (:func:`find_resume`);
- the interrupt checkpoint is only written when it holds more training than the checkpoint this fit
  started from (:class:`ExceptionCheckpoint`): a fit that failed to start leaves the run dir as it was;
  after a clean finish it is removed, unless it holds the end of the fit (then it becomes ``last.ckpt``).

:func:`check_same_config` refuses to resume a checkpoint made with other settings, naming the option.
"""
from __future__ import annotations

import errno
import os
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from hwnas.errors import ConfigError, HwnasError
from hwnas.interrupts import deferred_signals

#: the files a fit resumes from, in ``<work dir>/checkpoints``
LAST, INTERRUPTED = "last.ckpt", "interrupted.ckpt"
#: a damaged checkpoint is renamed to ``<name><DAMAGED>`` (``.1``, ``.2``... when that exists)
DAMAGED = ".damaged"
#: errno values meaning "the disk (or the process's file size limit) has no room": freeing space fixes them
NO_ROOM = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


class CheckpointError(HwnasError):
    """A checkpoint could not be written; the previous one is untouched."""


class _Unloadable(Exception):
    """A file just written that does not load back."""


def _chain(exc: BaseException | None):
    """``exc`` and the exceptions behind it (raised from, or while handling)."""
    seen = 0
    while exc is not None and seen < 10:
        yield exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1


def _reason(exc: BaseException, os_cause: bool = False) -> str:
    """One short line saying why ``exc`` happened; with ``os_cause``, the OS's words when an OSError is behind
    it (torch reports a failed write of a file object as a RuntimeError raised while handling the OSError)."""
    for cause in _chain(exc) if os_cause else (exc,):
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    text = " ".join(str(exc).split())
    if not text:
        return f"{type(exc).__name__}: the file ends early" if isinstance(exc, EOFError) else type(exc).__name__
    text = text.split(". ")[0].rstrip(".")  # torch adds paragraphs of advice to its first sentence
    return text if len(text) <= 160 else text[:157] + "..."


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A Lightning checkpoint as :meth:`pl.Trainer.fit` would load it (``weights_only``, on the CPU);
    raises on a file that is empty, truncated or not a Lightning checkpoint."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise ValueError("empty file")
    if not zipfile.is_zipfile(path):  # torch's own words for this vary with the size: "Invalid argument", ...
        raise ValueError("truncated, or not a checkpoint: no zip directory at its end")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "global_step" not in ckpt:
        raise ValueError("not a Lightning checkpoint: no state_dict or global_step")
    return ckpt


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (some file systems cannot open a directory: then nothing to do)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_checkpoint(checkpoint: Mapping[str, Any], path: str | os.PathLike,
                     check: Callable[[str], Any] = load_checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` so that ``path`` always holds a complete, loadable checkpoint.

    Serializes into a temp file in the same folder (through a Python file object, so a full disk
    surfaces as its OSError), fsyncs it, loads it back (``check``: a Lightning checkpoint by default;
    any ``torch.load`` of the temp file's path for other payloads), then renames it over ``path``. On
    any failure the temp file is removed and :class:`CheckpointError` names the file and the reason; a
    signal while writing ends the job once the file is complete (:func:`deferred_signals`).
    """
    with deferred_signals():
        return _write_checkpoint(checkpoint, Path(path), check)


def _write_checkpoint(checkpoint: Mapping[str, Any], path: Path, check: Callable[[str], Any]) -> Path:
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            torch.save(checkpoint, fh)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            check(tmp)
        except Exception as exc:  # noqa: BLE001 - whatever fails to load back must not replace the previous file
            raise _Unloadable(f"the written file does not load back ({_reason(exc)})") from exc
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if not isinstance(exc, Exception):
            raise
        kept = "the previous checkpoint is kept" if path.exists() else "no checkpoint was written"
        if isinstance(exc, _Unloadable):
            reason, hint = str(exc), ""
        else:
            reason = _reason(exc, os_cause=True)
            no_room = any(isinstance(e, OSError) and e.errno in NO_ROOM for e in _chain(exc))
            hint = " (free space, then rerun with the same hydra.run.dir to resume)" if no_room else ""
        raise CheckpointError(f"cannot write checkpoint '{path}': {reason}; {kept}{hint}") from exc
    return path


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O with :func:`write_checkpoint` for local files (``Trainer(plugins=[...])``)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        write_checkpoint(checkpoint, path)


# ---------------------------------------------------------------------------------------------- resuming
@dataclass(frozen=True)
class Resume:
    """The checkpoint a fit resumes from: where it is, how far it got, the hyperparameters it was made with."""

    path: Path
    global_step: int
    hparams: dict = field(repr=False)

    @property
    def ckpt_path(self) -> str:
        return str(self.path)


def _set_aside(path: Path) -> Path:
    aside = path.with_name(path.name + DAMAGED)
    n = 0
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}{DAMAGED}.{n}")
    path.rename(aside)
    return aside


def _inspect(path: Path) -> Resume:
    """What :func:`find_resume` needs of a checkpoint (its tensors are dropped: Lightning loads it again)."""
    ckpt = load_checkpoint(path)
    return Resume(path, int(ckpt["global_step"]), dict(ckpt.get("hyper_parameters") or {}))


def find_resume(ckdir: str | os.PathLike) -> Resume | None:
    """The readable checkpoint of ``ckdir`` with the most training (None: start afresh).

    Each of ``interrupted.ckpt`` and ``last.ckpt`` is loaded; one that does not load is reported in
    one line on stderr and renamed aside (``*.damaged``), so no later run picks it again.
    """
    ckdir = Path(ckdir)
    readable: list[tuple[tuple[int, float], Resume]] = []
    damaged: list[tuple[Path, str, str]] = []
    for name in (INTERRUPTED, LAST):
        path = ckdir / name
        if not path.is_file():
            continue
        try:
            resume = _inspect(path)
        except Exception as exc:  # noqa: BLE001 - any failure to load means it cannot be resumed from
            try:
                where = f"moved to '{_set_aside(path)}'"
            except OSError as err:
                where = f"left in place (cannot rename it: {err.strerror})"
            damaged.append((path, _reason(exc), where))
        else:
            readable.append(((resume.global_step, path.stat().st_mtime), resume))
    best = max(readable, key=lambda r: r[0])[1] if readable else None
    outcome = f"resuming from '{best.path}'" if best else "starting afresh"
    for path, reason, where in damaged:
        print(f"hwnas: checkpoint '{path}' is unreadable ({reason}); {where}; {outcome}", file=sys.stderr)
    return best


def _lookup(hparams: Mapping, key: str):
    value: Any = hparams
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


_MISSING = object()


def _plain(value):
    """Tuples and lists compare equal (a checkpoint round trip may turn one into the other)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _short(value) -> str:
    text = repr(_plain(value))
    return text if len(text) <= 60 else text[:57] + "..."


def check_same_config(resume: Resume, hparams: Mapping, options: Mapping[str, str]) -> None:
    """Refuse to resume ``resume`` when it was made with other settings than this run's ``hparams``.

    ``options`` maps each hyperparameter that must match (``a.b`` reaches into a dict) to the option
    a user sets it with, for the message; keys either side lacks are not compared (older checkpoints).
    Resuming anyway would mix two runs, or fail deep inside Lightning on mismatched weights.
    """
    for key, option in options.items():
        saved, current = _lookup(resume.hparams, key), _lookup(hparams, key)
        if saved is _MISSING or current is _MISSING or _plain(saved) == _plain(current):
            continue
        raise ConfigError(f"checkpoint '{resume.path}' was trained with another {option} ({key} = {_short(saved)}; "
                          f"this run: {_short(current)}); use a new hydra.run.dir, or delete {resume.path.parent} to "
                          f"start over")


# --------------------------------------------------------------------------------------------- callbacks
class ExceptionCheckpoint(pl.callbacks.OnExceptionCheckpoint):
    """``interrupted.ckpt`` when a fit ends by an exception or a signal, unless it would be worse than what
    the run dir holds: not before this fit's first optimizer step past the checkpoint it resumed from (the
    resume itself failed, or nothing was trained), and not after a checkpoint write failed (it would fail
    again, and the previous checkpoint is the one to keep)."""

    def __init__(self, dirpath, filename: str = INTERRUPTED.removesuffix(".ckpt"), resumed: Path | None = None) -> None:
        super().__init__(dirpath=dirpath, filename=filename)
        self.resumed = Path(resumed) if resumed is not None else None  # the checkpoint this fit starts from
        self._start_step: int | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start_step = int(trainer.global_step)  # after Lightning restored the resumed checkpoint

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if self._start_step is None or trainer.global_step <= self._start_step:
            return
        if any(isinstance(e, CheckpointError) for e in _chain(exception)):
            return
        try:
            trainer.save_checkpoint(self.ckpt_path)
        except CheckpointError as exc:  # say so, but let the exception that ended the fit be the one reported
            print(f"hwnas: {exc}", file=sys.stderr)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """After a fit that ended cleanly the interrupt checkpoint is stale (``last.ckpt`` holds the end), unless
        the fit resumed from it and trained no further: then it is the end, and becomes ``last.ckpt``."""
        path = Path(self.ckpt_path)
        # a fit resumed at its end does not even start training (no on_train_start)
        trained = self._start_step is not None and trainer.global_step > self._start_step
        if self.resumed == path and not trained and trainer.is_global_zero and path.is_file():
            os.replace(path, path.with_name(LAST))
            _fsync_dir(path.parent)
            return
        super().teardown(trainer, pl_module, stage)


def checkpointing(ckdir: str | os.PathLike) -> tuple[list[pl.Callback], Resume | None]:
    """Callbacks writing ``last.ckpt`` every epoch and ``interrupted.ckpt`` on an exception, and the
    checkpoint of ``ckdir`` to resume from (:func:`find_resume`; None: start afresh). The trainer
    running them needs :func:`plugins` to write them safely."""
    ckdir = Path(ckdir)
    resume = find_resume(ckdir)
    callbacks = [pl.callbacks.ModelCheckpoint(dirpath=ckdir, filename=LAST.removesuffix(".ckpt"), monitor=None,
                                              save_top_k=1, every_n_epochs=1, enable_version_counter=False),
                 # removes its file after a clean finish, so it must not share last.ckpt's name
                 ExceptionCheckpoint(ckdir, resumed=resume.path if resume else None)]
    return callbacks, resume


def plugins() -> list:
    """``Trainer(plugins=...)`` for a fit that checkpoints: every file goes through :func:`write_checkpoint`."""
    return [SafeCheckpointIO()]


__all__ = ["CheckpointError", "SafeCheckpointIO", "Resume", "ExceptionCheckpoint", "write_checkpoint",
           "load_checkpoint", "find_resume", "check_same_config", "checkpointing", "plugins", "LAST", "INTERRUPTED"]
