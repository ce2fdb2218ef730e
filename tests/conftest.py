"""Shared fixtures: the data root, Hydra config composition, tiny run directories."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from fixture_data import DATA_ROOT, FULL_DATA, needs_full_data

#: The library finds the data root of this run through HWNAS_DATA, as a user's run would.
os.environ["HWNAS_DATA"] = str(DATA_ROOT)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The data root of this run (full tables or the fixture subsets)."""
    return DATA_ROOT


@pytest.fixture
def full_data_dir(request) -> Path:
    """The full reference data root; skips with one line (fails under HWNAS_REQUIRE_FULL_DATA=1) without it."""
    needs_full_data(request.node.name)
    return FULL_DATA


@pytest.fixture
def compose_cfg(tmp_path):
    """``compose_cfg(*overrides)`` -> the composed config, as ``hwnas`` would see it."""

    def _compose(*overrides: str):
        GlobalHydra.instance().clear()
        with initialize_config_module(config_module="hwnas.conf", version_base="1.3"):
            return compose(config_name="config", overrides=[f"paths.output_dir={tmp_path}", *overrides])

    yield _compose
    GlobalHydra.instance().clear()


def run_hwnas(*args: str) -> tuple[int, str, str]:
    """``hwnas args`` in-process (the real entry point, Hydra included): ``(exit status, stdout, stderr)``.
    Usable where a fixture cannot be (module-scoped fixtures that run a job once for several tests)."""
    import contextlib
    import io
    import sys

    from hwnas import cli

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        mp.setattr(sys, "argv", ["hwnas", *args])
        GlobalHydra.instance().clear()
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            GlobalHydra.instance().clear()
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def run_cli():
    """``run_cli(*args)`` runs ``hwnas args`` in-process and returns ``(exit status, stdout, stderr)``."""
    return run_hwnas


def pytest_report_header(config):
    if FULL_DATA is not None:
        return f"hwnas data root: {DATA_ROOT} (full reference tables)"
    return f"hwnas data root: {DATA_ROOT} (fixture subsets; tests that need the full tables skip)"


def user_error_line(code: int, err: str, *needles: str) -> str:
    """The one ``hwnas: error:`` line of a failed run: non-zero exit, no traceback, every needle in that line."""
    assert code != 0, f"no error (exit 0):\n{err}"
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("hwnas: error:")]
    assert len(lines) == 1, f"expected one 'hwnas: error:' line, got:\n{err}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture
def one_line_error():
    """``one_line_error(code, err, *needles)``: see :func:`user_error_line`."""
    return user_error_line
