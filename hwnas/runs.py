"""The record of a run directory (``hwnas-run.json``): which config its outputs came from and how the job ended.

A rerun in the same run dir with the *same* config resumes (checkpoints, appended rows, finished
pipeline stages). A rerun with a *different* config starts a new experiment there: before the job
starts, everything the old config produced is moved to ``superseded/<when>_<fingerprint>/`` (nothing
is deleted) and one line says which options changed. So a ``picks.csv`` or ``metrics.json`` in a run
dir always belongs to the config in its record, even when the rerun is killed half-way.

The record also says how the job ended: ``running`` (still running, or killed with SIGKILL / a
power cut), ``finished``, ``failed`` (with the one-line error) or ``interrupted`` (with the signal).
Sweeps read it to report failed jobs; ``job=report`` reads it to skip unfinished runs.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Mapping

from hwnas.io import atomic_write_text

RECORD = "hwnas-run.json"
SUPERSEDED = "superseded"

#: entries of a run dir that are bookkeeping, not outputs of a config: Hydra's config and log, the
#: tracker's files, this record and what earlier configs left
INFRASTRUCTURE = {".hydra", RECORD, SUPERSEDED, "wandb", ".submitit"}

#: config keys that do not change what a job computes (where it logs, how it shows progress, the
#: output root that only names run dirs); changing them keeps the run dir's outputs
NEUTRAL_KEYS = {"logger", "paths.output_dir"}
NEUTRAL_LEAVES = {"progress_bar", "enable_progress_bar"}

#: how long a fit may run this time (a scheduler's time slot, a step budget): a change of only these keeps the
#: run dir's checkpoints, so that the fit resumes where it stopped (its own check refuses a checkpoint whose
#: training options differ); the results of the earlier sitting still move aside
BUDGET_KEYS = {"trainer.max_steps", "trainer.max_time", "trainer.max_epochs"}
RESUME_STATE = ("checkpoints", "lightning_logs")  # the fit's state and its curve so far


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out or ({prefix[:-1]: {}} if prefix else {})
    return {prefix[:-1]: node}


def result_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The flattened config minus the keys that do not change results (:data:`NEUTRAL_KEYS`)."""
    flat = _flatten(config)
    return {k: v for k, v in flat.items()
            if not any(k == n or k.startswith(n + ".") for n in NEUTRAL_KEYS) and k.rsplit(".", 1)[-1] not in NEUTRAL_LEAVES}


def fingerprint(config: Mapping[str, Any], identity: str = "") -> str:
    """A short hash of what determines a job's results: its config and ``identity`` (e.g. the upstream stage)."""
    text = json.dumps(result_config(config), sort_keys=True, default=str) + "\n" + identity
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_record(run_dir: Path) -> dict | None:
    path = Path(run_dir) / RECORD
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_record(run_dir: Path, record: Mapping[str, Any]) -> None:
    atomic_write_text(Path(run_dir) / RECORD, json.dumps(record, indent=1, sort_keys=True, default=str) + "\n")


def differing_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The keys (dotted) whose result-relevant values differ between two configs, sorted."""
    a, b = result_config(old), result_config(new)
    return sorted(k for k in set(a) | set(b) if a.get(k, "<unset>") != b.get(k, "<unset>"))


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 3) -> str:
    """``search.budgets: [14.7] -> [12.0]; seed: 0 -> 1`` for the first ``limit`` differing keys."""
    a, b = result_config(old), result_config(new)
    keys = differing_keys(old, new)
    shown = [f"{k}: {_short(a.get(k, '<unset>'))} -> {_short(b.get(k, '<unset>'))}" for k in keys[:limit]]
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return "; ".join(shown) + more if shown else "the upstream inputs"


def _short(value: Any, width: int = 40) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 3] + "..."


def _entries(run_dir: Path, keep: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in run_dir.iterdir()
                  if p.name not in INFRASTRUCTURE and p.name not in keep and not p.name.endswith(".log"))


def _newest_mtime(path: Path) -> float:
    """The newest modification time in ``path`` (a file, or every file and folder under a folder)."""
    try:
        newest = path.lstat().st_mtime
        if path.is_dir() and not path.is_symlink():
            for sub in path.rglob("*"):
                newest = max(newest, sub.lstat().st_mtime)
        return newest
    except OSError:
        return 0.0


def _made_by(record: Mapping[str, Any], run_dir: Path, keep: tuple[str, ...]) -> list[Path]:
    """The entries of ``run_dir`` that the job of ``record`` made: its recorded outputs, or, when it was
    killed before it could record them, whatever it created or changed. Files that were already there
    when it started (a user's input CSV in the run dir) are not its outputs."""
    recorded = set(record.get("outputs", [])) | set(record.get("outputs_before", []))
    if "outputs" in record:  # the job ended (finished, failed or interrupted) and listed what it made
        return [p for p in _entries(run_dir, keep) if p.name in recorded]
    before = set(record.get("present_at_start", []))
    started = float(record.get("started_unix", 0.0))
    return [p for p in _entries(run_dir, keep)
            if p.name in recorded or p.name not in before or _newest_mtime(p) >= started]


def begin(run_dir: Path, job: str, config: Mapping[str, Any], identity: str = "", keep: tuple[str, ...] = (),
          multirun: dict | None = None) -> str | None:
    """Record that ``job`` runs in ``run_dir`` with ``config``; move aside outputs of another config.

    ``keep`` names entries the job keeps consistent itself (the pipeline's ``stages``). Returns the
    one-line note about superseded outputs, or None when the run dir had none.
    """
    run_dir = Path(run_dir)
    fp = fingerprint(config, identity)
    old = read_record(run_dir)
    note, carried = None, []
    if old is not None and old.get("fingerprint") != fp:
        changed = set(differing_keys(old.get("config", {}), config))
        resumable = bool(changed) and changed <= BUDGET_KEYS and old.get("identity", "") == identity
        made = _made_by(old, run_dir, keep)
        outputs = [p for p in made if not (resumable and p.name in RESUME_STATE)]
        carried = sorted(p.name for p in made if p not in outputs)  # the fit state this run continues
        if outputs:
            stamp = time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(old.get("started_unix", time.time())))
            dest = run_dir / SUPERSEDED / f"{stamp}_{old.get('fingerprint', 'unknown')[:8]}"
            dest.mkdir(parents=True, exist_ok=True)
            for p in outputs:
                shutil.move(str(p), str(dest / p.name))
            note = (f"run dir '{run_dir}' held outputs of another config ({changed_keys(old.get('config', {}), config)}); "
                    f"moved {len(outputs)} entries to '{dest}'")
    elif old is not None:  # the same config again (a resume): what the earlier runs made stays theirs and ours
        carried = sorted(p.name for p in _made_by(old, run_dir, keep))
    record = {"job": job, "fingerprint": fp, "status": "running", "pid": os.getpid(), "started_unix": time.time(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "config": dict(config), "identity": identity, "keep": list(keep),
              "present_at_start": [p.name for p in _entries(run_dir, keep)], "outputs_before": carried}
    if multirun:
        record["multirun"] = multirun
    write_record(run_dir, record)
    return note


def end(run_dir: Path, status: str, **fields: Any) -> None:
    """Update the record's ``status`` (finished / failed / interrupted) and add ``fields``."""
    record = read_record(run_dir) or {}
    if "started_unix" in record:
        made = _made_by(record, Path(run_dir), tuple(record.get("keep", ())))
        record["outputs"] = sorted(p.name for p in made)
    record.update(status=status, ended=time.strftime("%Y-%m-%dT%H:%M:%S"), ended_unix=time.time(), **fields)
    write_record(run_dir, record)
