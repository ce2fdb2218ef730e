"""Where the reference data lives.

The data root is configuration, never a constant: an explicit ``paths.data_dir`` wins, then the
``HWNAS_DATA`` environment variable, then the conventional sibling checkout ``../shared/data``
(looked up from the working directory first, then from this source checkout, so that tests and
an editable install find it from anywhere).
"""
from __future__ import annotations

import os
from pathlib import Path

from hwnas.errors import DataError

ENV_VAR = "HWNAS_DATA"
_HINT = f"set paths.data_dir=... or the {ENV_VAR} environment variable"


def _candidate_roots() -> list[Path]:
    """Default locations, in the order they are tried."""
    checkout_root = Path(__file__).resolve().parents[2]
    return [Path.cwd() / ".." / "shared" / "data", checkout_root / ".." / "shared" / "data"]


def resolve_data_dir(value: str | os.PathLike | None = None) -> Path:
    """The data root as an absolute path; :class:`DataError` when it cannot be found."""
    chosen = None
    if value is not None and str(value).strip():
        chosen = value
    elif os.environ.get(ENV_VAR, "").strip():
        chosen = os.environ[ENV_VAR]
    if chosen is not None:
        path = Path(chosen).expanduser()
        if not path.is_dir():
            raise DataError(f"data root '{path}' does not exist; {_HINT}")
        return path.resolve()
    candidates = _candidate_roots()
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    tried = " or ".join(f"'{c}'" for c in candidates)
    raise DataError(
        f"no data root found: paths.data_dir and {ENV_VAR} are unset and neither {tried} exists; "
        f"{_HINT} (`hwnas job=download` fetches the data)"
    )


def data_path(relative: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> Path:
    """``<data root>/<relative>``, checked to exist."""
    root = resolve_data_dir(data_dir)
    path = root / relative
    if not path.exists():
        raise DataError(
            f"data file '{path}' does not exist in data root '{root}'; "
            f"run `hwnas job=download` or point paths.data_dir at a complete data root"
        )
    return path
