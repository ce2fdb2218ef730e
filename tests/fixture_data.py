"""Which data root the tests read: the full reference tables, or the committed fixture subsets.

The full tables are ``$HWNAS_DATA`` or ``../shared/data`` beside the checkout. Without them (a
user's fresh clone) the tests read ``tests/data/root``: the header and first ``FIXTURE_ROWS`` rows
of every table, byte for byte (tests/data/PROVENANCE.md). ``HWNAS_DATA=tests/data/root pytest``
runs the fixture mode on a machine that has the full data too.

A test that needs the full tables calls :func:`needs_full_data` (or takes the ``full_data_dir``
fixture): it skips with one line saying why and how to get the data, and fails instead under
``HWNAS_REQUIRE_FULL_DATA=1`` (what .ci/run sets for its run on ../shared/data).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURE_ROOT = REPO / "tests" / "data" / "root"
FIXTURE_ROWS = 300
REQUIRE_FULL = "HWNAS_REQUIRE_FULL_DATA"


def _full_data_dir() -> Path | None:
    env = os.environ.get("HWNAS_DATA", "").strip()
    candidate = (Path(env) if env else REPO.parent / "shared" / "data").expanduser()
    if not candidate.is_dir() or candidate.resolve() == FIXTURE_ROOT.resolve():
        return None
    return candidate.resolve()


FULL_DATA: Path | None = _full_data_dir()
DATA_ROOT: Path = FULL_DATA or FIXTURE_ROOT


def rows(full: int) -> int:
    """How many rows a table of ``full`` rows has in this run's data root."""
    return full if FULL_DATA is not None else min(full, FIXTURE_ROWS)


def needs_full_data(what: str) -> None:
    """Skip (fail under HWNAS_REQUIRE_FULL_DATA=1) unless the full reference tables are here."""
    if FULL_DATA is not None:
        return
    message = (f"needs the full reference tables ({what}); tests/data/root holds {FIXTURE_ROWS} rows per table: "
               f"`hwnas job=download`, then HWNAS_DATA=<that root>")
    if os.environ.get(REQUIRE_FULL, "") == "1":
        pytest.fail(message)
    pytest.skip(message)
