"""Latency of networks: warm-up, timed blocks in interleaved rounds, median, spread and tail percentiles.

Timing is wall-clock (``time.perf_counter_ns``) around blocks of synchronous calls: a CUDA run
synchronizes inside the call (:class:`hwnas.devices.runtimes.TorchRuntime`), ONNX Runtime and
OpenVINO return when the inference is done. ``torch.utils.benchmark.Timer`` was used before; it
times one statement at a time, and interleaving several networks round by round
(:func:`time_interleaved`) is what brings the noise of this shared machine down.
"""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from hwnas.errors import ConfigError


def median_seconds(fn, repeats: int = 5) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after one warm-up call (coarse timings)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


@dataclass(frozen=True)
class Timing:
    """Per-inference latency statistics of one network over ``repeats`` timed blocks of ``number`` runs.

    ``median_ms`` is the latency hwnas uses; ``p90_ms``/``p99_ms`` describe the tail a deployment sees
    (percentiles of the per-block times, so of ``number``-run averages when ``number`` > 1).
    """

    median_ms: float
    mean_ms: float
    std_ms: float
    iqr_ms: float
    min_ms: float
    repeats: int
    number: int
    p90_ms: float = float("nan")
    p99_ms: float = float("nan")

    @classmethod
    def from_samples(cls, samples_ms: np.ndarray, number: int) -> "Timing":
        s = np.asarray(samples_ms, dtype=np.float64)
        q1, med, q3, p90, p99 = np.percentile(s, [25, 50, 75, 90, 99])
        return cls(median_ms=float(med), mean_ms=float(s.mean()), std_ms=float(s.std(ddof=1)) if len(s) > 1 else 0.0,
                   iqr_ms=float(q3 - q1), min_ms=float(s.min()), repeats=len(s), number=int(number),
                   p90_ms=float(p90), p99_ms=float(p99))

    def scaled(self, factor: float) -> "Timing":
        """Every time divided by ``factor`` (drift correction: ``factor`` > 1 when the machine ran slow)."""
        f = float(factor)
        return replace(self, median_ms=self.median_ms / f, mean_ms=self.mean_ms / f, std_ms=self.std_ms / f,
                       iqr_ms=self.iqr_ms / f, min_ms=self.min_ms / f, p90_ms=self.p90_ms / f, p99_ms=self.p99_ms / f)

    @property
    def cv(self) -> float:
        """Coefficient of variation across repeats (std / median)."""
        return self.std_ms / self.median_ms if self.median_ms > 0 else float("nan")


def check_protocol(warmup: int, repeats: int, number: int) -> None:
    for name, value, low in (("warmup", warmup, 0), ("repeats", repeats, 1), ("number", number, 1)):
        if int(value) < low:
            raise ConfigError(f"measurement {name} = {value} must be >= {low}")


def time_interleaved(runs: Sequence[Callable[[], object]], warmup: int = 5, repeats: int = 20, number: int = 1,
                     seed: int = 0, settle: int = 1) -> list[np.ndarray]:
    """Per-run times (ms) of each of ``runs``: ``repeats`` rounds, each timing one block of ``number`` calls
    of every run, in a fresh random order per round, after ``settle`` untimed calls of that run.

    Interleaving is what makes latencies of a shared machine comparable: a load that comes and goes
    (another process, a frequency change) slows every network of the round alike instead of the few
    timed while it lasted, and the random order keeps cache warmth from favouring any one network.
    The settling calls bring the network's weights back into the caches the other networks of the
    round evicted them from: without them, a block's time depends on how many other networks share the
    round (a network timed among 30 measured 20-50 % slower than timed among 10, both on ONNX Runtime),
    and a deployment that runs one network over and over sees the warm times. Each run gets
    ``warmup`` untimed calls first; the garbage collector is off while timing.
    """
    check_protocol(warmup, repeats, number)
    runs = list(runs)
    for run in runs:
        for _ in range(int(warmup)):
            run()
    samples = np.empty((len(runs), int(repeats)))
    order = np.arange(len(runs))
    rng = np.random.default_rng(seed)
    clock = time.perf_counter_ns
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(int(repeats)):
            rng.shuffle(order)
            for i in order:
                run = runs[i]
                for _ in range(settle):
                    run()
                t0 = clock()
                for _ in range(int(number)):
                    run()
                samples[i, r] = (clock() - t0) / number / 1e6
    finally:
        if gc_was_enabled:
            gc.enable()
    return list(samples)
