"""The measurement protocol (issue #14): interleaved rounds, tail percentiles, drift correction by probes."""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from hwnas.measure.harness import Timing, time_interleaved
from hwnas.measure.probes import MIN_PROBES, ProbeSet


def _sleeper(seconds: float):
    def run():
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:  # busy wait: sleep's granularity is coarser than this
            pass
    return run


def test_interleaved_rounds_time_every_network_in_a_fresh_order():
    order: list[int] = []
    runs = [lambda i=i: order.append(i) for i in range(4)]
    samples = time_interleaved(runs, warmup=2, repeats=6, number=3, seed=0, settle=0)
    assert len(samples) == 4 and all(len(s) == 6 for s in samples)
    timed = order[4 * 2:]  # after each network's warm-up calls
    rounds = [timed[r * 12:(r + 1) * 12:3] for r in range(6)]
    assert all(sorted(r) == [0, 1, 2, 3] for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1  # the order changes from round to round
    order.clear()
    time_interleaved(runs, warmup=0, repeats=2, number=3, seed=0, settle=1)
    assert len(order) == 4 * 2 * (3 + 1)  # one untimed settling call before each timed block


def test_timing_reports_the_tail_and_scales_for_drift():
    a, b = time_interleaved([_sleeper(0.0004), _sleeper(0.0012)], warmup=1, repeats=15)
    ta, tb = Timing.from_samples(a, 1), Timing.from_samples(b, 1)
    assert ta.min_ms <= ta.median_ms <= ta.p90_ms <= ta.p99_ms
    assert 2.0 < tb.median_ms / ta.median_ms < 4.0
    half = tb.scaled(2.0)
    assert half.median_ms == pytest.approx(tb.median_ms / 2) and half.p99_ms == pytest.approx(tb.p99_ms / 2)
    assert half.repeats == tb.repeats


def test_probes_remove_a_drift_that_slows_a_whole_session():
    reference = np.array([1.0, 2.0, 3.0, 4.0])
    probes = ProbeSet(list("abcd"), [], reference)
    slow = reference * 1.3 * np.array([1.0, 1.01, 0.99, 1.0])  # the machine ran 30 % slow, plus 1 % noise
    assert probes.drift(slow) == pytest.approx(1.3, rel=0.01)
    probes.record(slow, "s1")
    probes.record(reference * 0.9, "s2")
    corrected, raw = probes.noise_floor()
    assert corrected < 0.01 < 0.1 < raw
    # each probe is corrected by the others only (leave one out): a probe alone in a jump shows as noise
    jump = reference.copy()
    jump[0] *= 1.5
    lone = ProbeSet(list("abcd"), [], reference)
    lone.record(jump, "s1")
    assert lone.log[0]["drift"] == pytest.approx(1.0) and lone.log[0]["corrected_ms"] == pytest.approx(1.5)
    # too few probes: nothing is corrected
    few = ProbeSet(list("ab")[:MIN_PROBES - 1], [], reference[:MIN_PROBES - 1])
    assert few.drift(reference[:MIN_PROBES - 1] * 2) == 1.0


def test_job_measure_corrects_chunks_by_probes_and_records_the_distribution(run_cli, tmp_path):
    out = tmp_path / "lat.csv"
    args = ["job=measure", "search_space=nb201", "measure.n=12", "measure.noise_subset=4", "measure.noise_rounds=1",
            "device.warmup=1", "device.repeats=5", "device.interleave=4", f"measure.output={out}", "logger=none"]
    code, _, err = run_cli(*args, f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 0, err[-2000:]
    rows = pd.read_csv(out)
    assert len(rows) == 12 and (rows["p99_ms"] >= rows["p90_ms"]).all() and (rows["p90_ms"] >= rows["min_ms"]).all()
    assert rows["runtime"].eq("torch").all() and rows["precision"].eq("fp32").all()
    # the 4 probes were measured with the first chunk (their reference: drift 1), the second chunk beside
    # them again, divided by its drift
    assert (rows["drift"].iloc[:8] == 1).all()
    assert np.allclose(rows["latency_ms"], rows["raw_ms"] / rows["drift"], rtol=1e-4)
    noise = pd.read_csv(tmp_path / "r" / "noise_floor.csv")
    assert sorted(noise["session"].unique()) == ["session 2", "session 3"]  # the second chunk + 1 closing round
    assert len(noise) == 2 * 4
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["probes"] == 4 and m["noise_floor_cv_median"] >= 0 and m["noise_floor_raw_cv_median"] >= 0
    assert m["p99_over_p50_median"] >= 1
    # a device with that run's probes as its reference times new networks beside them, on the dataset's footing
    from hwnas.devices import LocalDevice
    from hwnas.spaces import get_space

    space = get_space("nb201")
    device = LocalDevice(warmup=1, repeats=5, interleave=4, reference=str(tmp_path / "r" / "noise_floor.csv"))
    assert len(device.probes(space)) == 4
    again = device.latency(space, space.from_strings(rows["arch"].iloc[4:8]))
    assert np.all(again > 0) and np.median(again / rows["latency_ms"].iloc[4:8].to_numpy()) == pytest.approx(1, abs=0.5)


def test_a_reference_that_is_not_a_noise_file_is_one_line(tmp_path):
    from hwnas.devices import LocalDevice
    from hwnas.errors import ConfigError, DataError
    from hwnas.spaces import get_space

    with pytest.raises(ConfigError, match="device.reference = '.*nothing.csv' does not exist"):
        LocalDevice(reference=str(tmp_path / "nothing.csv")).probes(get_space("nb201"))
    (tmp_path / "lat.csv").write_text("arch,latency_ms\nx,1\n")
    with pytest.raises(DataError, match="is not a noise_floor.csv of job=measure"):
        LocalDevice(reference=str(tmp_path / "lat.csv")).probes(get_space("nb201"))


@pytest.mark.parametrize("device", ["onnxruntime", "openvino"])
def test_job_measure_through_a_runtime_resumes_and_reports_a_noise_floor(run_cli, tmp_path, device):
    out = tmp_path / "lat.csv"
    args = ["job=measure", f"device={device}", "search_space.resolutions=[16]", "search_space.width_mult=0.25",
            "search_space.num_classes=10", "measure.noise_subset=3", "measure.noise_rounds=1", "device.warmup=1",
            "device.repeats=10", "device.interleave=3", f"measure.output={out}", "logger=none"]
    code, _, err = run_cli(*args, "measure.n=5", f"hydra.run.dir={tmp_path / 'a'}")
    assert code == 0, err[-2000:]
    code, _, err = run_cli(*args, "measure.n=8", f"hydra.run.dir={tmp_path / 'b'}")
    assert code == 0, err[-2000:]
    m = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert m["n_measured_now"] == 3 and m["rows_total"] == 8 and m["noise_floor_cv_median"] >= 0
    rows = pd.read_csv(out)
    assert rows["runtime"].eq(device).all() and rows["arch"].is_unique and (rows["model_bytes"] > 0).all()
