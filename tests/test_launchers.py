"""Sweeps through a real launcher other than Hydra's basic one: submitit's local executor, the code path of
``hydra/launcher=slurm`` (each job a separate process that submitit starts, pickles and collects)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs hydra-submitit-launcher (the dev extra)")


def test_submitit_local_sweep_runs_on_past_a_failing_job(tmp_path, data_dir):
    sweep = tmp_path / "sweep"
    out = subprocess.run([sys.executable, "-m", "hwnas", "-m", "hydra/launcher=submitit_local", "job=profile",
                          "search_space=nb201", "profile.n=1,0,2", "logger=none", f"paths.data_dir={data_dir}",
                          f"hydra.sweep.dir={sweep}"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 1, out.stderr[-3000:]
    assert "hwnas: sweep: 2 of 3 jobs finished; 1 did not" in out.stderr
    assert "job 1 (job=profile search_space=nb201 profile.n=0" in out.stderr and "profile.n = 0 is out of range" in out.stderr
    done = {int(p.parent.name): json.loads(p.read_text())["n_archs"] for p in sweep.glob("*/metrics.json")}
    assert done == {0: 1, 2: 2}
    assert list((sweep / ".submitit").iterdir())  # the jobs went through submitit, not the basic launcher
