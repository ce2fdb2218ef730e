"""A sweep (``hwnas -m``) runs on past a failing job and ends with a summary of the failures.

Each job of a sweep records how it ended in its run dir (:mod:`hwnas.runs`); a failing job prints
one line and returns normally, so neither the basic launcher (one job after the other) nor the
parallel one (joblib processes: a job calling ``sys.exit`` there kills the worker and the job
beside it) stops. This Hydra callback (``hydra.callbacks.hwnas_sweep`` in the config) reads the
records when the sweep ends, prints which jobs failed and why, and ``hwnas`` then exits 1.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from hwnas.runs import RECORD, read_record

_state: dict[str, Any] = {"failed": []}


def reset() -> None:
    _state.clear()
    _state["failed"] = []


def failed_jobs() -> list[dict]:
    """The records of the failed jobs of the sweep that just ended in this process."""
    return list(_state.get("failed", []))


def sweep_records(sweep_dir: Path, since: float = 0.0) -> list[dict]:
    """Records of the jobs of a sweep started at ``since`` or later (not those of its pipeline stages)."""
    out = []
    for path in sorted(Path(sweep_dir).rglob(RECORD)):
        record = read_record(path.parent)
        if record and record.get("multirun") and record.get("started_unix", 0) >= since:
            out.append({**record, "run_dir": str(path.parent)})
    return sorted(out, key=lambda r: r["multirun"]["num"])


class SweepSummary(Callback):
    """Prints ``n of m jobs finished`` and one line per failed job at the end of a sweep."""

    def on_multirun_start(self, config, **kwargs) -> None:
        _state.update(started=time.time() - 1.0, sweep_dir=str(config.hydra.sweep.dir), failed=[])

    def on_multirun_end(self, config, **kwargs) -> None:
        records = sweep_records(Path(str(config.hydra.sweep.dir)), _state.get("started", 0.0))
        failed = [r for r in records if r.get("status") != "finished"]
        _state["failed"] = failed
        if not failed:
            return
        print(f"hwnas: sweep: {len(records) - len(failed)} of {len(records)} jobs finished; "
              f"{len(failed)} did not (their run dirs say why):", file=sys.stderr)
        for r in failed:
            why = r.get("error") or r.get("signal") or "still running or killed"
            print(f"hwnas:   job {r['multirun']['num']} ({' '.join(r['multirun']['overrides'])}): {r.get('status')}: "
                  f"{why} [{r['run_dir']}]", file=sys.stderr)
