"""The ``hwnas`` command: a Hydra app whose ``job=`` choice picks what runs."""
from __future__ import annotations

import os
import sys

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


main = hydra.main(config_path="conf", config_name="config", version_base="1.3")(_task)

if __name__ == "__main__":
    main()
