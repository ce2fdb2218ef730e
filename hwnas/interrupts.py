"""Signals as exceptions: SIGTERM (schedulers, ``timeout``), SIGINT (Ctrl-C) and SIGHUP end a job the same way.

While a job runs, :func:`raise_on_signals` turns each of these signals into :class:`JobInterrupted`, a
``BaseException`` that nothing in the job swallows. It is deliberately not a ``KeyboardInterrupt``:
Lightning turns that into ``sys.exit(1)`` with nothing said, while any other ``BaseException`` runs
its ``on_exception`` callbacks (``interrupted.ckpt``) and propagates. The CLI then says where the job
stopped (:func:`set_progress`, kept current by the long loops) and how to resume, and exits
``128 + signal number`` (143 for SIGTERM, 130 for Ctrl-C), as shells do.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

#: the signals that end a job (SIGKILL cannot be caught: every job resumes from its durable files instead)
SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGTERM", "SIGINT", "SIGHUP")) if s is not None)

_progress: dict[str, str] = {}
_deferring = 0  # depth of open deferred_signals() blocks
_pending: list[int] = []  # a signal received while deferring


class JobInterrupted(BaseException):
    """A job ended by a signal."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        self.signal_name = signal.Signals(self.signum).name
        super().__init__(f"interrupted by {self.signal_name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def set_progress(text: str, key: str = "job") -> None:
    """Record where the running job is (``epoch 3, step 120``; ``12/50 architectures measured``)."""
    _progress[key] = text


def clear_progress() -> None:
    _progress.clear()


def progress() -> str:
    """Where the job was, for the interrupt message (empty: nothing recorded)."""
    return "; ".join(v for v in _progress.values() if v)


def _raise(signum, _frame) -> None:
    # a second signal while the first unwinds (Ctrl-C pressed twice) must not interrupt the cleanup
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    if _deferring:
        _pending.append(signum)
        return
    raise JobInterrupted(signum)


@contextmanager
def deferred_signals() -> Iterator[None]:
    """A signal arriving within the block ends the job when the block is done, not inside it.

    For writes that must finish once begun (a checkpoint, a results file): raised inside ``torch.save``
    the interrupt would come out as torch's ``RuntimeError`` about its zip writer, and the job would
    report a failed write instead of an interrupt. Writing a checkpoint takes well under a second.
    """
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring and _pending:
            signum = _pending.pop()
            _pending.clear()
            raise JobInterrupted(signum)


@contextmanager
def raise_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM/SIGINT/SIGHUP raise :class:`JobInterrupted`; the old handlers come back after.

    Outside the main thread (where Python cannot install handlers) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, _raise)
    clear_progress()
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


def lightning_progress():
    """A Lightning callback keeping :func:`progress` at the current epoch and step of a fit."""
    import pytorch_lightning as pl

    class _Progress(pl.Callback):
        def _update(self, trainer) -> None:
            epochs = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
            set_progress(f"epoch {trainer.current_epoch + 1}{epochs}, step {trainer.global_step}", key="fit")

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self._update(trainer)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self._update(trainer)

    return _Progress()
