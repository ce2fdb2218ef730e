"""Measurement harness, resumable store, and job=measure (real timing on this CPU, tiny settings)."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from hwnas.devices import LocalDevice
from hwnas.errors import ConfigError, DataError
from hwnas.measure import MeasurementStore, time_interleaved
from hwnas.spaces import get_space

FAST = ["device.warmup=0", "device.repeats=2", "measure.noise_subset=2", "measure.noise_rounds=1", "logger=none"]


def test_measure_latency_statistics():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.ReLU())
    t = LocalDevice(warmup=1, repeats=5, threads=1).measure_module(model, torch.zeros(1, 3, 32, 32))
    assert t.repeats == 5 and 0 < t.min_ms <= t.median_ms and t.std_ms >= 0 and t.iqr_ms >= 0
    with pytest.raises(ConfigError, match="repeats = 0"):
        time_interleaved([lambda: model(torch.zeros(1, 3, 8, 8))], repeats=0)


def test_bigger_network_is_slower():
    space = get_space("nb201")
    dev = LocalDevice(warmup=2, repeats=7)
    small, big = space.from_string("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"), \
        space.from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    assert dev.measure(space, big).median_ms > 2 * dev.measure(space, small).median_ms


def test_store_resumes_and_repairs_a_torn_row(tmp_path):
    path, who = tmp_path / "m.csv", {"rows": "test"}
    with MeasurementStore(path, ["arch", "latency_ms"], who) as store:
        store.append({"arch": "a", "latency_ms": 1.0})
        store.append({"arch": "b", "latency_ms": 2.0})
        with pytest.raises(DataError, match="already measured"):
            store.append({"arch": "a", "latency_ms": 3.0})
    with open(path, "a") as fh:  # a kill in the middle of a write
        fh.write("c,4.")
    with MeasurementStore(path, ["arch", "latency_ms"], who) as again:
        assert len(again) == 2 and "b" in again and "c" not in again
        again.append({"arch": "c", "latency_ms": 4.0})
    assert [r["arch"] for r in csv.DictReader(open(path))] == ["a", "b", "c"]
    with pytest.raises(DataError, match="missing \\['std_ms'\\]"):
        MeasurementStore(path, ["arch", "latency_ms", "std_ms"], who)


def test_local_device_options_and_descriptor():
    with pytest.raises(ConfigError, match="device.kind = 'tpu' is not allowed; allowed: cpu, cuda"):
        LocalDevice(kind="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="needs a CUDA GPU"):
            LocalDevice(kind="cuda")
    with pytest.raises(ConfigError, match="device.repeats = 0"):
        LocalDevice(repeats=0)
    d = LocalDevice(threads=1).descriptor
    assert d.kind == "cpu" and d.bandwidth_gbs > 0.1 and d.peak_gflops > 0.1 and d.memory_gb > 0


def test_job_measure_writes_and_resumes(compose_cfg, tmp_path):
    from hwnas.jobs import run_job

    out = tmp_path / "lat.csv"
    cfg = compose_cfg("job=measure", "search_space=nb201", "measure.n=4", f"measure.output={out}", *FAST)
    m = run_job(cfg, run_dir=tmp_path / "r1")
    assert m["rows_added"] == 4 and m["rows_total"] == 4 and m["noise_floor_cv_median"] >= 0
    rows = list(csv.DictReader(open(out)))
    assert {"arch", "latency_ms", "std_ms", "repeats", "hardware", "threads", "torch", "batch_size", "input_shape"} <= set(rows[0])
    again = run_job(cfg, run_dir=tmp_path / "r2")
    assert again["rows_added"] == 0 and again["n_measured_now"] == 0
    # the same run dir with nothing new to measure keeps the noise floor of the session that measured
    noise_file = tmp_path / "r1" / "noise_floor.csv"
    before = noise_file.read_bytes()
    kept = run_job(cfg, run_dir=tmp_path / "r1")
    assert noise_file.read_bytes() == before and kept["noise_floor_cv_median"] == pytest.approx(m["noise_floor_cv_median"], rel=1e-3)
    more = run_job(compose_cfg("job=measure", "search_space=nb201", "measure.n=6", f"measure.output={out}", *FAST),
                   run_dir=tmp_path / "r3")
    assert more["rows_added"] == 2
    archs = [r["arch"] for r in csv.DictReader(open(out))]
    assert len(archs) == len(set(archs)) == 6 and archs[:4] == [r["arch"] for r in rows]


def test_job_measure_rejects_table_device(compose_cfg, tmp_path, data_dir):
    from hwnas.jobs import run_job

    cfg = compose_cfg("job=measure", "search_space=nb201", "device=help", f"paths.data_dir={data_dir}", "logger=none")
    with pytest.raises(ConfigError, match="device=local_cpu"):
        run_job(cfg, run_dir=tmp_path)


@pytest.mark.slow  # ~60 s of a real measuring process; test_mixed_files kills a writer with SIGKILL by default
def test_killed_measurement_loses_nothing(tmp_path):
    """SIGKILL in the middle of job=measure, rerun: every row once, none lost, none duplicated."""
    out = tmp_path / "lat.csv"
    args = [sys.executable, "-m", "hwnas", "job=measure", "search_space=nb201", "measure.n=25", f"measure.output={out}",
            "device.warmup=0", "device.repeats=15", "measure.noise_subset=0", "logger=none",
            f"hydra.run.dir={tmp_path}/run"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if out.exists() and out.read_text().count("\n") >= 6:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = [r["arch"] for r in csv.DictReader(open(out))]
    assert 5 <= len(partial) < 25
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    archs = [r["arch"] for r in csv.DictReader(open(out))]
    assert len(archs) == len(set(archs)) == 25 and archs[:len(partial)] == partial
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["rows_total"] == 25
