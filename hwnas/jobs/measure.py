"""Measure architectures on this machine into an append-only latency dataset.

Architectures are timed in chunks of ``device.interleave``, each chunk interleaved round by round
with the probe networks (the first ``measure.noise_subset`` requested) that correct it for the
machine's drift (:mod:`hwnas.measure.probes`). Each row (median latency, p90, p99, the uncorrected
median and the drift) is durable the moment its chunk is timed; rerunning the same command measures
only what is missing. The noise floor (median CV of the probes' drift-corrected re-measurements) is
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
from hwnas.devices.runtimes import Compiled
from hwnas.measure import MeasurementStore, provenance
from hwnas.measure.harness import Timing
from hwnas.measure.probes import ProbeSet, drift as session_drift
from hwnas.options import count, seed

COLUMNS = ["arch", "latency_ms", "p90_ms", "p99_ms", "std_ms", "iqr_ms", "min_ms", "raw_ms", "drift", "repeats",
           "number", "params", "flops", "model_bytes", "device", "hardware", "threads", "torch", "runtime",
           "runtime_version", "precision", "batch_size", "input_shape", "measured_at"]


#: ``measure.noise_subset=null``: the probe networks (all requested when fewer)
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
    """``(noise_subset, noise_rounds)``: how many of the requested architectures are probes (timed in every
    session, :mod:`hwnas.measure.probes`), and how many extra sessions of the probes (beside the last chunk) end the run."""
    m = cfg.measure
    k = count(m.get("noise_subset"), "measure.noise_subset", 0, n_archs, allow_none=True,
              why=f"probe architectures re-measured in every session (drift correction from 3, noise floor), at most "
                  f"the {n_archs} requested; 0: neither; null: {DEFAULT_NOISE_SUBSET} or all requested")
    k = min(DEFAULT_NOISE_SUBSET, n_archs) if k is None else k
    rounds = count(m.get("noise_rounds", 0), "measure.noise_rounds", 1 if k else 0,
                   why="extra sessions of the probes at the end; a spread needs >= 1 beside the stored one")
    return k, rounds


def _row(space, device: LocalDevice, arch, timing: Timing, drift: float, compiled: Compiled, costs: dict, i: int) -> dict:
    t = timing.scaled(drift)
    return {
        "arch": space.to_string(arch), "latency_ms": f"{t.median_ms:.6g}", "p90_ms": f"{t.p90_ms:.6g}",
        "p99_ms": f"{t.p99_ms:.6g}", "std_ms": f"{t.std_ms:.4g}", "iqr_ms": f"{t.iqr_ms:.4g}",
        "min_ms": f"{t.min_ms:.6g}", "raw_ms": f"{timing.median_ms:.6g}", "drift": f"{drift:.5g}",
        "repeats": t.repeats, "number": t.number, "params": int(costs["params"][i]), "flops": int(costs["flops"][i]),
        "model_bytes": compiled.size_bytes if compiled.size_bytes is not None else "",
        **device.fingerprint(space.input_shape(arch, device.batch_size)),
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


class Session:
    """Measures architectures into a store, chunk by chunk, each chunk timed beside the probes.

    Every session times the probes with a full chunk of other networks, so the probes' reference (their
    latencies in the first session) and their re-measurements are taken in the same company.
    """

    def __init__(self, store: MeasurementStore, space, device: LocalDevice, probes: list):
        self.store, self.space, self.device = store, space, device
        self.sessions = 0
        keys = [space.to_string(a) for a in probes]
        self.probe_archs = probes
        self.missing_probes = [k not in store for k in keys]
        reference = np.array([np.nan if m else float(store.row(k)["latency_ms"]) for k, m in zip(keys, self.missing_probes)])
        self.probes = ProbeSet(keys, [device.compile(space, a) for a in probes], reference)
        self.filler: list = []  # the last chunk's networks: company for the probes in the closing sessions

    def _session(self, compiled: list) -> tuple[list[Timing], float]:
        """Probes and ``compiled`` timed together; the other networks' timings and the session's drift."""
        self.sessions += 1
        timings = self.device.time(self.probes.compiled + compiled, seed=self.sessions)
        k = len(self.probes)
        values = np.array([t.median_ms for t in timings[:k]])
        if any(self.missing_probes):
            drift = self._set_reference(values, timings[:k])
        else:
            drift = self.probes.drift(values)
            if k:
                self.probes.record(values, f"session {self.sessions}")
        return timings[k:], drift

    def _set_reference(self, values: np.ndarray, timings: list[Timing]) -> float:
        """The first session of a probe set: missing probes are stored (corrected by the stored ones when
        there are enough of them) and become the reference."""
        stored = ~np.array(self.missing_probes)
        drift = session_drift(values[stored], self.probes.reference[stored])
        missing = [a for a, m in zip(self.probe_archs, self.missing_probes) if m]
        costs = self.space.costs(missing)
        i = 0
        for arch, m, timing, c in zip(self.probe_archs, self.missing_probes, timings, self.probes.compiled):
            if m:
                self.store.append(_row(self.space, self.device, arch, timing, drift, c, costs, i))
                i += 1
        self.probes.reference = np.where(stored, self.probes.reference, values / drift)
        if stored.any():
            self.probes.record(values, f"session {self.sessions}")
        self.missing_probes = [False] * len(self.probe_archs)
        return drift

    def measure(self, archs: list, desc: str = "measuring") -> None:
        """Measure every architecture of ``archs`` not yet in the store."""
        space, store, device = self.space, self.store, self.device
        todo = [a for a in archs if space.to_string(a) not in store and space.to_string(a) not in self.probes.keys]
        chunks = [todo[i:i + device.interleave] for i in range(0, len(todo), device.interleave)]
        if not chunks and any(self.missing_probes):
            chunks = [[]]
        bar = tqdm(total=len(todo) + sum(self.missing_probes), desc=desc, unit="arch", dynamic_ncols=True)
        for chunk in chunks:
            compiled = [device.compile(space, a) for a in chunk]
            new_probes = sum(self.missing_probes)
            timings, drift = self._session(compiled)
            costs = space.costs(chunk) if chunk else {}
            for i, (arch, timing, c) in enumerate(zip(chunk, timings, compiled)):
                store.append(_row(space, device, arch, timing, drift, c, costs, i))
            self.filler = compiled
            bar.update(len(chunk) + new_probes)
        bar.close()

    def remeasure_probes(self, rounds: int, archs: list) -> None:
        """``rounds`` more sessions of the probes (their spread is the noise floor), in the company of the
        last chunk measured, else of up to ``interleave`` of the other requested networks."""
        if not len(self.probes) or not rounds:
            return
        if not self.filler:
            others = [a for a in archs if self.space.to_string(a) not in self.probes.keys][:self.device.interleave]
            self.filler = [self.device.compile(self.space, a) for a in others]
        for _ in tqdm(range(rounds), desc="noise floor", unit="session", dynamic_ncols=True):
            self._session(self.filler)

    def write_noise(self, out: Path) -> tuple[float, float]:
        """The probes' re-measurements into ``out``; ``(noise floor, uncorrected)``."""
        log = self.probes.log
        if not log:
            return float("nan"), float("nan")
        columns = ["arch", "session", "reference_ms", "raw_ms", "drift", "corrected_ms"]
        write_csv(out, columns, [[r[c] if isinstance(r[c], str) else f"{r[c]:.6g}" for c in columns] for r in log])
        return self.probes.noise_floor()


def read_noise(path: Path) -> tuple[float, float]:
    """The noise floor of a noise file written by :meth:`Session.write_noise`."""
    return ProbeSet.from_log(pd.read_csv(path).to_dict("records")).noise_floor()


def run(cfg, ctx) -> dict[str, float]:
    space = instantiate(cfg.search_space)
    device = instantiate(cfg.device)
    require_local(device, "measure", "measures on this machine")
    archs = requested_archs(cfg, space)
    noise = noise_options(cfg, len(archs))
    output = Path(cfg.measure.output) if cfg.measure.get("output") else default_output(cfg, space, device)
    identity = provenance.local_latency("latency of architectures (job=measure)", cfg.search_space, device)
    with MeasurementStore(output, COLUMNS, identity) as store:  # locked until the noise floor is in
        metrics = _measure(cfg, ctx, space, device, archs, store, output, noise)
    ctx.tracker.log_artifact(output, "measurements", {"space": space.name, "device": device.name})
    return metrics


def _measure(cfg, ctx, space, device: LocalDevice, archs: list, store: MeasurementStore, output: Path,
             noise_settings: tuple[int, int]) -> dict[str, float]:
    before = len(store)
    k, rounds = noise_settings
    t0 = time.perf_counter()
    session = Session(store, space, device, archs[:k])
    session.measure(archs, desc=f"measuring {space.name} on {device.name}")
    measured = len(store) - before  # the probes measured first included
    seconds = time.perf_counter() - t0
    keys = {space.to_string(a) for a in archs}
    rows = [r for r in store.rows if r["arch"] in keys]
    lat = np.array([float(r["latency_ms"]) for r in rows])
    within = np.array([float(r["std_ms"]) / float(r["latency_ms"]) for r in rows])
    tail = np.array([float(r["p99_ms"]) / float(r["latency_ms"]) for r in rows])
    noise_file = ctx.path("noise_floor.csv")
    if measured == 0 and noise_file.exists():
        # nothing new measured: the noise floor of the session that measured the data stands (re-measuring
        # now, perhaps under other load, would describe this moment, not the dataset)
        noise, raw_noise = read_noise(noise_file)
        print(f"nothing new to measure; noise floor kept from {noise_file}")
    else:
        session.remeasure_probes(rounds, archs)
        noise, raw_noise = session.write_noise(noise_file)
    correction = "drift-corrected by" if session.probes.corrects else "not drift-corrected (fewer than 3 probes);"
    print(f"{space.name} on {device.name}: {measured} measured now, {len(store) - before} rows added, "
          f"{len(store)} rows in {output}; median latency {np.median(lat):.3f} ms, p99/p50 "
          f"{np.median(tail):.2f}; noise floor {noise:.2%} "
          f"(re-measurement CV of {len(session.probes)} probes, {correction} {raw_noise:.2%} raw)")
    ctx.tracker.log_table("measurements", ["arch", "latency_ms"], [[r["arch"], float(r["latency_ms"])] for r in rows[:1000]])
    return {
        "n_requested": len(archs), "n_measured_now": measured, "rows_added": len(store) - before, "rows_total": len(store),
        "latency_ms_median": float(np.median(lat)), "latency_ms_min": float(lat.min()), "latency_ms_max": float(lat.max()),
        "p99_over_p50_median": float(np.median(tail)),
        "images_per_s_median": float(np.median(device.batch_size * 1000.0 / lat)),  # throughput at this batch
        "within_run_cv_median": float(np.median(within)), "noise_floor_cv_median": noise,
        "noise_floor_raw_cv_median": raw_noise, "probes": len(session.probes), "sessions": session.sessions,
        "measure_seconds": seconds, "seconds_per_arch": seconds / measured if measured else 0.0,
    }
