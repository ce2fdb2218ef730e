"""Measure architectures on this machine into an append-only latency dataset.

Each row is durable the moment it is measured; rerunning the same command measures only what
is missing. The noise floor (median coefficient of variation of re-measured architectures) is
reported beside the data, so every estimator's error can be read against it. The file may be shared
between runs (the default output is one per space and device): one run writes it at a time, and only
rows of the space options, device and protocol it was created with are added to it.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from hydra.utils import instantiate
from tqdm import tqdm

from hwnas.data.tables import read_arch_column
from hwnas.devices import LocalDevice, require_local
from hwnas.errors import ConfigError
from hwnas.io import write_csv
from hwnas.measure import MeasurementStore, provenance
from hwnas.options import count, seed

COLUMNS = ["arch", "latency_ms", "std_ms", "iqr_ms", "min_ms", "repeats", "number", "params", "flops",
           "device", "hardware", "threads", "torch", "batch_size", "input_shape", "measured_at"]


#: ``measure.noise_subset=null``: architectures re-measured for the noise floor (all requested when fewer)
DEFAULT_NOISE_SUBSET = 10


def default_output(cfg, space, device) -> Path:
    return Path(cfg.paths.output_dir) / "measurements" / f"{space.name}__{device.name}.csv"


def requested_archs(cfg, space) -> list:
    if cfg.measure.get("archs"):
        return space.from_strings(read_arch_column(cfg.measure.archs, "measure.archs"))
    n = count(cfg.measure.n, "measure.n", 1, why="distinct architectures to have measured")
    if n > space.size():  # sample_unique would return the whole space, fewer than asked for
        raise ConfigError(f"measure.n = {n} exceeds the {space.size():,} architectures of {space.name}; "
                          f"allowed: 1..{space.size()}")
    return space.sample_unique(n, seed=seed(cfg.measure.seed, "measure.seed"))


def noise_options(cfg, n_archs: int) -> tuple[int, int]:
    """``(noise_subset, noise_rounds)``: how many of the requested architectures are re-measured, how often."""
    m = cfg.measure
    k = count(m.get("noise_subset"), "measure.noise_subset", 0, n_archs, allow_none=True,
              why=f"architectures re-measured for the noise floor, at most the {n_archs} requested; 0: no noise floor; "
                  f"null: {DEFAULT_NOISE_SUBSET} or all requested")
    k = min(DEFAULT_NOISE_SUBSET, n_archs) if k is None else k
    rounds = count(m.get("noise_rounds", 0), "measure.noise_rounds", 1 if k else 0,
                   why="fresh medians per re-measured architecture; a spread needs >= 1 beside the stored one")
    return k, rounds


def measure_into(store: MeasurementStore, space, device: LocalDevice, archs, desc: str = "measuring") -> int:
    """Measure every architecture not yet in ``store``; returns how many were measured now."""
    todo = [a for a in archs if space.to_string(a) not in store]
    if not todo:
        return 0
    costs = space.costs(todo)
    for i, arch in enumerate(tqdm(todo, desc=desc, unit="arch", dynamic_ncols=True)):
        timing = device.measure(space, arch)
        store.append({
            "arch": space.to_string(arch), "latency_ms": f"{timing.median_ms:.6g}", "std_ms": f"{timing.std_ms:.4g}",
            "iqr_ms": f"{timing.iqr_ms:.4g}", "min_ms": f"{timing.min_ms:.6g}", "repeats": timing.repeats,
            "number": timing.number, "params": int(costs["params"][i]), "flops": int(costs["flops"][i]),
            **device.fingerprint(space.input_shape(arch, device.batch_size)),
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })
    return len(todo)


def noise_floor(space, device: LocalDevice, store: MeasurementStore, k: int, rounds: int, out: Path) -> float:
    """Median over ``k`` stored architectures of the CV of their stored and ``rounds`` fresh medians."""
    if k <= 0 or rounds <= 0 or len(store) == 0:
        return float("nan")
    rows = store.rows[:k]
    table, cvs = [], []
    for row in tqdm(rows, desc="noise floor", unit="arch", dynamic_ncols=True):
        arch = space.from_string(row["arch"])
        values = [float(row["latency_ms"])] + [device.measure(space, arch).median_ms for _ in range(rounds)]
        cv = float(np.std(values, ddof=1) / np.mean(values))
        cvs.append(cv)
        table.append([row["arch"], *[f"{v:.6g}" for v in values], f"{cv:.4g}"])
    write_csv(out, ["arch", "stored_ms", *[f"remeasure_{i + 1}_ms" for i in range(rounds)], "cv"], table)
    return float(np.median(cvs))


def run(cfg, ctx) -> dict[str, float]:
    space = instantiate(cfg.search_space)
    device = instantiate(cfg.device)
    require_local(device, "measure", "measures on this machine")
    archs = requested_archs(cfg, space)
    noise = noise_options(cfg, len(archs))
    output = Path(cfg.measure.output) if cfg.measure.get("output") else default_output(cfg, space, device)
    identity = provenance.local_latency("latency of architectures (job=measure)", cfg.search_space, device)
    with MeasurementStore(output, COLUMNS, identity) as store:  # locked until the noise floor is in
        return _measure(cfg, ctx, space, device, archs, store, output, noise)


def _measure(cfg, ctx, space, device: LocalDevice, archs: list, store: MeasurementStore, output: Path,
             noise_settings: tuple[int, int]) -> dict[str, float]:
    before = len(store)
    t0 = time.perf_counter()
    measured = measure_into(store, space, device, archs, desc=f"measuring {space.name} on {device.name}")
    seconds = time.perf_counter() - t0
    keys = {space.to_string(a) for a in archs}
    rows = [r for r in store.rows if r["arch"] in keys]
    lat = np.array([float(r["latency_ms"]) for r in rows])
    within = np.array([float(r["std_ms"]) / float(r["latency_ms"]) for r in rows])
    noise_file = ctx.path("noise_floor.csv")
    if measured == 0 and noise_file.exists():
        # nothing new measured: the noise floor of the session that measured the data stands (re-measuring
        # now, perhaps under other load, would describe this moment, not the dataset)
        noise = float(pd.read_csv(noise_file)["cv"].median())
        print(f"nothing new to measure; noise floor kept from {noise_file}")
    else:
        noise = noise_floor(space, device, store, *noise_settings, noise_file)
    print(f"{space.name} on {device.name}: {measured} measured now, {len(store) - before} rows added, "
          f"{len(store)} rows in {output}; median latency {np.median(lat):.3f} ms; "
          f"noise floor (median CV of re-measurements) {noise:.2%}")
    ctx.tracker.log_table("measurements", ["arch", "latency_ms"], [[r["arch"], float(r["latency_ms"])] for r in rows[:1000]])
    return {
        "n_requested": len(archs), "n_measured_now": measured, "rows_added": len(store) - before, "rows_total": len(store),
        "latency_ms_median": float(np.median(lat)), "latency_ms_min": float(lat.min()), "latency_ms_max": float(lat.max()),
        "within_run_cv_median": float(np.median(within)), "noise_floor_cv_median": noise,
        "measure_seconds": seconds, "seconds_per_arch": seconds / measured if measured else 0.0,
    }
