"""trainer=ddp: Lightning DDP with 2 CPU processes (gloo). Slow: run with `pytest -m slow`.

Run through the real command line, as a user would: Lightning's DDP launcher starts the second
process by re-running the command.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

TINY_SUPERNET = ["search_space.resolutions=[16,20]", "search_space.width_mult=0.25", "data.batch_size=128",
                 "train_supernet.calibration_images=128", "train_supernet.progress_bar=false",
                 "supernet.phases=[{name:full,epochs:1,lr:0.1,ks:max,e:max,d:max,distill:false},"
                 "{name:expand,epochs:1,lr:0.03,subnets:2,e:null,d:null,sort_channels:true}]"]


def _hwnas(tmp_path, *args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "hwnas", "trainer=ddp", "logger=none", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)


def test_ddp_trains_a_latency_predictor_on_two_processes(tmp_path, data_dir):
    run = tmp_path / "run"
    out = _hwnas(tmp_path, "job=train_predictor", "search_space=nb201", "device=help", "device.column=pixel3",
                 f"paths.data_dir={data_dir}", "train.samples=200", "estimator.epochs=2", "estimator.progress_bar=false",
                 f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("training archs") == 2  # both ranks trained and reported
    assert (run / "predictor.pt").exists() and json.loads((run / "metrics.json").read_text())["test/spearman"] > 0


def test_ddp_trains_the_supernet_on_two_processes(tmp_path):
    run = tmp_path / "run"
    out = _hwnas(tmp_path, "job=train_supernet", *TINY_SUPERNET, f"hydra.run.dir={run}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert (run / "supernet.pt").exists()
