"""Shared fixtures: the data root, Hydra config composition, tiny run directories."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    return Path(os.environ.get("HWNAS_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = _data_dir()
    if not d.exists():
        pytest.fail(f"reference data not found at {d}; set HWNAS_DATA")
    return d


@pytest.fixture
def compose_cfg(tmp_path):
    """``compose_cfg(*overrides)`` -> the composed config, as ``hwnas`` would see it."""

    def _compose(*overrides: str):
        GlobalHydra.instance().clear()
        with initialize_config_module(config_module="hwnas.conf", version_base="1.3"):
            return compose(config_name="config", overrides=[f"paths.output_dir={tmp_path}", *overrides])

    yield _compose
    GlobalHydra.instance().clear()


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """``run_cli(*args)`` runs ``hwnas args`` in-process (the real entry point, Hydra included)
    and returns ``(exit status, stdout, stderr)``."""
    import sys

    from hwnas import cli

    def _run(*args: str):
        monkeypatch.setattr(sys, "argv", ["hwnas", *args])
        GlobalHydra.instance().clear()
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            GlobalHydra.instance().clear()
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run
