"""Latency of one network: warm-up, repeated timed blocks, median and spread.

Timing uses ``torch.utils.benchmark.Timer``, which pins the thread count for the measurement and
synchronizes CUDA around each block, under ``torch.inference_mode``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.utils.benchmark as benchmark
from torch import nn

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
    """Per-inference latency statistics over ``repeats`` timed blocks of ``number`` runs each."""

    median_ms: float
    mean_ms: float
    std_ms: float
    iqr_ms: float
    min_ms: float
    repeats: int
    number: int

    @property
    def cv(self) -> float:
        """Coefficient of variation across repeats (std / median)."""
        return self.std_ms / self.median_ms if self.median_ms > 0 else float("nan")


def measure_latency(model: nn.Module, inputs: torch.Tensor, warmup: int = 5, repeats: int = 20, number: int = 1,
                    threads: int = 1) -> Timing:
    """Median latency (ms) of ``model(inputs)`` in eval mode.

    ``warmup`` untimed runs first; then ``repeats`` blocks of ``number`` runs each are timed and the
    per-run time of each block is one sample.
    """
    for name, value, low in (("warmup", warmup, 0), ("repeats", repeats, 1), ("number", number, 1), ("threads", threads, 1)):
        if int(value) < low:
            raise ConfigError(f"measurement {name} = {value} must be >= {low}")
    model.eval()
    timer = benchmark.Timer(stmt="model(inputs)", globals={"model": model, "inputs": inputs}, num_threads=int(threads))
    with torch.inference_mode():
        if warmup:
            timer.timeit(int(warmup))
        samples = np.array([timer.timeit(int(number)).median for _ in range(int(repeats))]) * 1e3
    q1, q3 = np.percentile(samples, [25, 75])
    return Timing(median_ms=float(np.median(samples)), mean_ms=float(samples.mean()), std_ms=float(samples.std(ddof=1)) if repeats > 1 else 0.0,
                  iqr_ms=float(q3 - q1), min_ms=float(samples.min()), repeats=int(repeats), number=int(number))
