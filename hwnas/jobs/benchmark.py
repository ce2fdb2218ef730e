"""How many architectures per second the configured space encodes and the estimator predicts;
optionally how long one evolutionary search takes with that estimator as its latency model."""
from __future__ import annotations

import os
import time

import numpy as np
import torch
from hydra.utils import instantiate

from hwnas.options import count, number
from hwnas.measure.harness import median_seconds
from hwnas.estimators import LookupTableEstimator
from hwnas.estimators.fitting import fit_from_config
from hwnas.predictors import PredictorEstimator


def run(cfg, ctx) -> dict[str, float]:
    b = cfg.benchmark
    n = count(b.n, "benchmark.n", 1, why="architectures per timed call")
    repeats = count(b.repeats, "benchmark.repeats", 1, why="timed calls; the median is reported")
    threads = count(b.get("threads"), "benchmark.threads", 1, allow_none=True,
                    why="torch intra-op threads; null: torch's default, all cores")
    if b.get("search"):
        budget_quantile(cfg)  # checked before the timing, not after it
    if threads is not None:
        torch.set_num_threads(threads)
    space = instantiate(cfg.search_space)
    estimator = instantiate(cfg.estimator)
    archs = space.sample(n, seed=int(cfg.seed))
    if isinstance(estimator, PredictorEstimator) and estimator.module is None:
        torch.manual_seed(int(cfg.seed))
        y = torch.rand(16) + 1.0
        estimator.module = estimator.new_module(space, estimator.featurize(space, archs[:16]), y).eval()
        estimator.fitted = True
    else:
        fit_from_config(estimator, space, instantiate(cfg.device) if estimator.needs_fit else None)
    encode_s = median_seconds(lambda: space.encode(archs), repeats)
    predict_s = median_seconds(lambda: estimator.predict(space, archs), repeats)
    metrics = {"n": n, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count() or 0,
               "encode_seconds": encode_s, "encode_archs_per_s": n / encode_s,
               "predict_seconds": predict_s, "predict_archs_per_s": n / predict_s}
    print(f"{space.name}, estimator={estimator.name}, {torch.get_num_threads()} threads: encode {n / encode_s:,.0f} archs/s, "
          f"encode + predict {n / predict_s:,.0f} archs/s (median of {repeats})")
    if isinstance(estimator, LookupTableEstimator) and estimator.granularity == "layer" and hasattr(space, "layer_slots"):
        arrays, sums = space.arrays(archs), estimator.slot_sums(space)  # the table sum alone, on genome arrays
        sum_s = median_seconds(lambda: sums(*arrays), repeats)
        metrics.update(sum_seconds=sum_s, sum_archs_per_s=n / sum_s)
        print(f"table sum on arrays {n / sum_s:,.0f} archs/s")
    if cfg.benchmark.get("search"):
        metrics.update(_time_search(cfg, space, estimator, archs))
    return metrics


def budget_quantile(cfg) -> float:
    """``benchmark.budget_quantile``: where in the estimator's predictions the search's budget lies, in (0, 1]."""
    return number(cfg.benchmark.get("budget_quantile", 0.5), "benchmark.budget_quantile", 0, 1, exclusive_minimum=True,
                  hint=" (the search's latency budget is this quantile of the estimator's predictions)")


def _time_search(cfg, space, estimator, archs) -> dict[str, float]:
    """One run of ``search_strategy`` (accuracy from the ``accuracy`` group or the space's default)
    under a latency budget at ``benchmark.budget_quantile`` of the estimator's predictions."""
    from hwnas.search.accuracy import default_accuracy
    from hwnas.search.constraints import Constraint
    from hwnas.search.objectives import accuracy_metric, latency_metric
    from hwnas.search.problem import SearchProblem

    q = budget_quantile(cfg)
    strategy = instantiate(cfg.search_strategy)
    source = instantiate(cfg.accuracy) if cfg.get("accuracy") is not None else default_accuracy(space, cfg.paths.get("data_dir"))
    source.prepare(space)
    budget = float(np.quantile(estimator.predict(space, archs[:10000]), q))
    latency = latency_metric(estimator, space)
    problem = SearchProblem(space, [accuracy_metric(source, space), latency],
                            [(latency, Constraint("latency_ms", budget))])
    t0, c0 = time.perf_counter(), time.process_time()
    result = strategy.run(space, problem)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    hits, misses = sum(c.hits for c in problem.caches), sum(c.misses for c in problem.caches)
    lookups = latency.cache.hits + latency.cache.misses
    best = result.objectives["accuracy"][result.best] if result.best is not None else float("nan")
    print(f"search={strategy.name} (accuracy={source.name}, latency <= {budget:.4g} ms from estimator={estimator.name}): "
          f"{seconds:.2f} s ({cpu_seconds:.2f} s CPU), {len(result.archs):,} distinct architectures evaluated, {lookups:,} latency lookups, "
          f"cache hit rate {hits / max(1, hits + misses):.1%}; best accuracy {best:.2f} %")
    return {"search_seconds": seconds, "search_cpu_seconds": cpu_seconds, "search_budget_ms": budget, "search_distinct_archs": len(result.archs),
            "search_latency_lookups": lookups, "search_cache_hit_rate": hits / max(1, hits + misses),
            "search_best_accuracy": best}
