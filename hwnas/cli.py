"""The ``hwnas`` command: a Hydra app whose ``job=`` choice picks what runs."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from hwnas.errors import HwnasError


def _task(cfg: DictConfig) -> None:
    from hwnas.jobs import run_job

    try:
        run_job(cfg)
    except Exception as exc:
        user_error = _user_error(exc)
        # User errors: one line, no traceback (HWNAS_DEBUG=1 shows it).
        if user_error is None or os.environ.get("HWNAS_DEBUG"):
            raise
        print(f"hwnas: error: {user_error}", file=sys.stderr)
        sys.exit(2)


def _user_error(exc: BaseException | None) -> HwnasError | None:
    """The :class:`HwnasError` behind ``exc`` (Hydra's instantiate wraps errors of the objects it builds)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, HwnasError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


_hydra_main = hydra.main(config_path="conf", config_name="config", version_base="1.3")(_task)

#: overrides naming a directory the run writes into (Hydra creates the run dir before a job starts)
OUTPUT_DIR_KEYS = ("hydra.run.dir", "hydra.sweep.dir", "paths.output_dir")


def _output_dir_error(argv: list[str]) -> str | None:
    """A one-line reason why an output directory given on the command line cannot be used."""
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key.lstrip("+~") not in OUTPUT_DIR_KEYS or "${" in value:
            continue
        value = value.strip().strip("'\"")
        if not value:
            return f"{key} is empty; give a directory the run may write into (e.g. {key}=outputs/run1)"
        try:
            Path(value).expanduser().mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"{key} = {value!r} cannot be created: {exc.strerror or exc}"
        if not os.access(Path(value).expanduser(), os.W_OK | os.X_OK):
            return f"{key} = {value!r} is not writable"
    return None


def main() -> None:
    """The console script: checks output directories, then hands over to Hydra."""
    problem = _output_dir_error(sys.argv[1:])
    if problem:
        print(f"hwnas: error: {problem}", file=sys.stderr)
        sys.exit(2)
    _hydra_main()

if __name__ == "__main__":
    main()
