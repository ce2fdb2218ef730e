"""The ``hwnas`` command: a Hydra app whose ``job=`` choice picks what runs.

What a user sees when something goes wrong:

- a mistake in the input (config value, file, architecture): one ``hwnas: error:`` line naming the
  bad value and what is allowed, exit status 2 (``HWNAS_DEBUG=1`` shows the traceback);
- SIGTERM, Ctrl-C or SIGHUP: one ``hwnas: interrupted`` line saying where the job stopped and how
  to resume, exit status 128 + the signal number (143, 130, 129);
- in a sweep (``-m``), a failing job is reported in one line and recorded in its run dir, the other
  jobs run on, and the sweep ends with a summary and exit status 1 (see :mod:`hwnas.sweeps`).
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

import hydra
from omegaconf import DictConfig

from hwnas.errors import HwnasError, user_error, user_error_text

#: jobs that continue where they stopped when rerun in the same run dir (checkpoints, appended rows, stages)
RESUMING_JOBS = {"pipeline", "measure", "eval_subnets", "train_predictor", "train_supernet", "train_subnet",
                 "differentiable_search", "transfer", "build_lut"}


def _task(cfg: DictConfig) -> float | None:
    """Run the job; return its objective (:mod:`hwnas.objective`), the number a sweeper optimises."""
    from hwnas.interrupts import JobInterrupted, raise_on_signals
    from hwnas.jobs import _multirun_info, _run_dir, run_job
    from hwnas.objective import failed_value, objective_value

    sweep_job = _multirun_info()
    try:
        with raise_on_signals():
            return objective_value(cfg, run_job(cfg))
    except JobInterrupted as exc:
        print(f"hwnas: {_interrupt_text(exc, cfg.job.name, _run_dir(), sweep_job)}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - every failure ends in one line (or a traceback, for a bug)
        line = user_error_text(exc)
        if sweep_job is not None:  # a sweep runs on: report this job, keep its traceback, let the others run
            _report_sweep_failure(exc, line, sweep_job, _run_dir())
            return failed_value(cfg)
        if line is None or os.environ.get("HWNAS_DEBUG"):
            raise
        print(f"hwnas: error: {line}", file=sys.stderr)
        sys.exit(2)


def _interrupt_text(exc, job: str, run_dir: Path, sweep_job: dict | None) -> str:
    from hwnas.interrupts import progress

    where = progress()
    text = f"interrupted by {exc.signal_name} during job={job}" + (f" at {where}" if where else "")
    if sweep_job is not None:
        return text + (f" (sweep job {sweep_job['num']}); rerun the sweep with hydra.sweep.dir={sweep_job['sweep_dir']} "
                       "to continue it")
    if job in RESUMING_JOBS:
        return text + f"; what it finished is saved in {run_dir}: rerun with hydra.run.dir={run_dir} to resume"
    return text + f"; rerun the command to start it again (run dir: {run_dir})"


def _report_sweep_failure(exc: BaseException, line: str | None, sweep_job: dict, run_dir: Path) -> None:
    from hwnas import runs
    from hwnas.io import atomic_write_text

    label = f"sweep job {sweep_job['num']} ({' '.join(sweep_job['overrides']) or 'no overrides'})"
    if line is None:
        tb = "".join(traceback.format_exception(exc))
        try:
            atomic_write_text(run_dir / "error.txt", tb)
            where = f"; traceback in {run_dir / 'error.txt'}"
        except OSError:
            where = "\n" + tb
        line = f"{type(exc).__name__}: {exc}".splitlines()[0] + where
    print(f"hwnas: error: {label} failed: {line}", file=sys.stderr)
    record = runs.read_record(run_dir) or {}
    fresh = {} if record.get("pid") == os.getpid() else {"started_unix": time.time(), "pid": os.getpid()}
    runs.end(run_dir, "failed", error=line.splitlines()[0][:500], multirun=sweep_job, **fresh)  # failed before it began


def _user_error(exc: BaseException | None) -> HwnasError | None:
    """The :class:`HwnasError` behind ``exc`` (see :func:`hwnas.errors.user_error`)."""
    return user_error(exc)


_hydra_main = hydra.main(config_path="conf", config_name="config", version_base="1.3")(_task)

#: overrides naming a directory the run writes into (Hydra creates the run dir before a job starts)
OUTPUT_DIR_KEYS = ("hydra.run.dir", "hydra.sweep.dir", "paths.output_dir")


def _overrides_and_mode(argv: list[str]) -> tuple[list[str], bool] | None:
    """The config overrides of the command line and whether it is a sweep; None when flags other than
    ``-m`` make the command something else (``--help``, ``--cfg``, another config dir ...)."""
    multirun = False
    overrides = []
    for arg in argv:
        if arg in ("-m", "--multirun"):
            multirun = True
        elif arg.startswith("-"):
            return None
        else:
            overrides.append(arg)
    return overrides, multirun


def _first_of_sweeps(overrides: list[str]) -> list[str]:
    """Each sweep override (``a=1,2``, ``range(...)``) replaced by its first value, to resolve the output dir."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    out = []
    for ov in OverridesParser.create().parse_overrides(overrides):
        if ov.is_sweep_override():
            values = list(ov.sweep_string_iterator())
            if not values:
                continue
            out.append(f"{ov.get_key_element()}={values[0]}")
        else:
            out.append(ov.input_line)
    return out


def _resolved_output_dir(argv: list[str]) -> tuple[str, str] | None:
    """(key, directory) that Hydra will create for this command: the run dir, or the sweep dir with ``-m``,
    resolved with the defaults and interpolations (``${oc.env:...}``) as Hydra resolves them."""
    parsed = _overrides_and_mode(argv)
    if parsed is None:
        return None
    overrides, multirun = parsed
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    was_initialized = GlobalHydra.instance().is_initialized()
    try:
        if was_initialized:
            GlobalHydra.instance().clear()
        with initialize_config_module(config_module="hwnas.conf", version_base="1.3"):
            cfg = compose(config_name="config", overrides=_first_of_sweeps(overrides), return_hydra_config=True)
            key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
            return key, str(cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir)
    except Exception:  # noqa: BLE001 - a bad override: Hydra itself reports it, with the options
        return None
    finally:
        GlobalHydra.instance().clear()


def _output_dir_error(argv: list[str]) -> str | None:
    """A one-line reason why the directory the run writes into cannot be used (checked before Hydra makes it)."""
    for arg in argv:  # an empty value does not compose to a usable dir: say so in the user's words
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+~") in OUTPUT_DIR_KEYS and not value.strip().strip("'\""):
            return f"{key} is empty; give a directory the run may write into (e.g. {key}=outputs/run1)"
    resolved = _resolved_output_dir(argv)
    if resolved is None:
        return None
    key, value = resolved
    target = Path(value).expanduser()
    if target.exists() and not target.is_dir():
        return f"{key} = {value!r} is a file, not a directory"
    existed = target.exists()
    try:  # made (and, when new, removed again: Hydra makes it, maybe a second later under another timestamp)
        target.mkdir(parents=True, exist_ok=True)
        if not os.access(target, os.W_OK | os.X_OK):
            return f"{key} = {value!r} is not writable (check its permissions, or pass paths.output_dir=...)"
    except OSError as exc:
        return f"{key} = {value!r} cannot be created: {exc.strerror or exc}"
    finally:
        if not existed and target.is_dir() and not any(target.iterdir()):
            target.rmdir()
    return None


def main() -> None:
    """The console script: checks the output directory, runs Hydra, ends a sweep with its summary."""
    from hwnas import sweeps

    problem = _output_dir_error(sys.argv[1:])
    if problem:
        print(f"hwnas: error: {problem}", file=sys.stderr)
        sys.exit(2)
    sweeps.reset()
    _hydra_main()
    if sweeps.failed_jobs():
        sys.exit(1)


if __name__ == "__main__":
    main()
