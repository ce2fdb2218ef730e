"""Sweeps through real launchers other than Hydra's basic one: submitit's local executor, the code path of
``hydra/launcher=slurm`` (each job a separate process that submitit starts, pickles and collects), and
``hydra/launcher=ray`` on a Ray head started on 127.0.0.1 (the jobs run as Ray tasks on that cluster)."""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def _three_jobs_one_bad(launcher: list[str], sweep: Path, data_dir, cwd: Path, env=None) -> subprocess.CompletedProcess:
    """``job=profile`` over profile.n=1,0,2 (0 is out of range: job 1 fails) through ``launcher``."""
    return subprocess.run([sys.executable, "-m", "hwnas", "-m", *launcher, "job=profile", "search_space=nb201",
                           "profile.n=1,0,2", "logger=none", f"paths.data_dir={data_dir}", f"hydra.sweep.dir={sweep}"],
                          cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def _check_two_of_three(out: subprocess.CompletedProcess, sweep: Path) -> None:
    assert out.returncode == 1, out.stderr[-3000:]
    assert "hwnas: sweep: 2 of 3 jobs finished; 1 did not" in out.stderr
    assert "job 1 (job=profile search_space=nb201 profile.n=0" in out.stderr and "profile.n = 0 is out of range" in out.stderr
    done = {int(p.parent.name): json.loads(p.read_text())["n_archs"] for p in sweep.glob("*/metrics.json")}
    assert done == {0: 1, 2: 2}


def test_submitit_local_sweep_runs_on_past_a_failing_job(tmp_path, data_dir):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs hydra-submitit-launcher (the dev extra)")
    sweep = tmp_path / "sweep"
    _check_two_of_three(_three_jobs_one_bad(["hydra/launcher=submitit_local"], sweep, data_dir, tmp_path), sweep)
    assert list((sweep / ".submitit").iterdir())  # the jobs went through submitit, not the basic launcher


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_sweep_on_a_head_at_127_0_0_1_runs_on_past_a_failing_job(tmp_path, data_dir):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="needs hydra-ray-launcher (the dev extra)")
    ray = [sys.executable, "-c", "import sys; from ray.scripts.scripts import main; sys.exit(main())"]
    # a one-machine cluster: Ray otherwise swaps 127.0.0.1 for the host's network address (a head bound to the
    # loopback address is then unreachable); RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps every address local. The head
    # and the sweep share a fresh token (Ray's token authentication; nothing read from or written to ~/.ray)
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    port = _free_port()
    started = subprocess.run([*ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
                              "--include-dashboard=false", "--disable-usage-stats"],
                             capture_output=True, text=True, timeout=180, env=env)
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        sweep = tmp_path / "sweep"
        # joining a running cluster: its address, and object_store_memory null (the head has sized its store; the
        # launcher would otherwise set one, which ray.init refuses with an address)
        out = _three_jobs_one_bad(["hydra/launcher=ray", f"hydra.launcher.ray.init.address=127.0.0.1:{port}",
                                   "+hydra.launcher.ray.init.object_store_memory=null"], sweep, data_dir, tmp_path, env)
        _check_two_of_three(out, sweep)
        # the launcher joined the head it was given (not a private local instance) and ran the jobs as Ray tasks
        assert f"Connecting to existing Ray cluster at address: 127.0.0.1:{port}" in out.stderr, out.stderr[-3000:]
        assert "Connected to Ray cluster." in out.stderr and "(_run_job pid=" in out.stderr
    finally:
        subprocess.run([*ray, "stop", "--force"], capture_output=True, text=True, timeout=120, env=env)
