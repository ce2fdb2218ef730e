"""Score an estimator against a device's true latencies on held-out architectures."""
from __future__ import annotations

import time

import numpy as np
from hydra.utils import instantiate

from hwnas.devices import require_table
from hwnas.errors import ConfigError
from hwnas.io import write_csv
from hwnas.metrics import evaluate_predictions


def split(n: int, n_fit: int, n_test: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint random fit / test index sets."""
    if n_fit >= n:
        raise ConfigError(f"a fit pool of {n_fit} (evaluate.train_samples or estimator.fit_samples) leaves no test "
                          f"architectures out of {n}")
    order = np.random.default_rng(seed).permutation(n)
    fit, rest = order[:n_fit], order[n_fit:]
    return fit, rest if n_test is None else rest[: int(n_test)]


def run(cfg, ctx) -> dict[str, float]:
    space = instantiate(cfg.search_space)
    device = instantiate(cfg.device)
    require_table(device, "evaluate", "scores against known latencies")
    estimator = instantiate(cfg.estimator)
    archs, truth = device.dataset(space)
    n_fit = estimator.fit_samples if estimator.needs_fit and not estimator.fit_data else 0
    pool = cfg.evaluate.get("train_samples")
    pool = n_fit if pool is None else int(pool)
    if n_fit > pool:
        raise ConfigError(f"estimator.fit_samples = {n_fit} exceeds evaluate.train_samples = {pool}")
    fit_idx, test_idx = split(len(archs), pool, cfg.evaluate.get("test_samples"), int(cfg.evaluate.seed))
    fit_idx = fit_idx[:n_fit]
    if estimator.needs_fit:
        if estimator.fit_data:
            from hwnas.estimators.fitting import training_samples

            estimator.fit(space, *training_samples(estimator, space, device))
        else:
            estimator.fit(space, [archs[i] for i in fit_idx], truth[fit_idx])
    test = [archs[i] for i in test_idx]
    t0 = time.perf_counter()
    pred = estimator.predict(space, test)
    seconds = time.perf_counter() - t0
    metrics = evaluate_predictions(pred, truth[test_idx])
    if cfg.evaluate.save_predictions:
        rows = [[space.to_string(a), f"{t:.6g}", f"{p:.6g}"] for a, t, p in zip(test, truth[test_idx], pred)]
        write_csv(ctx.path("predictions.csv"), ["arch", "latency_ms", "predicted_ms"], rows)
        ctx.tracker.log_table("predictions", ["arch", "latency_ms", "predicted_ms"], rows[:2000])
    print(f"estimator={estimator.name} on {device.name} ({space.name}): {len(test)} held-out archs, "
          f"RMSE {metrics['rmse_ms']:.4g} ms ({metrics['rmse_pct']:.1f} %), Spearman {metrics['spearman']:.3f}, "
          f"Kendall {metrics['kendall']:.3f}, within 10 % {metrics['within_10pct']:.1%}")
    return {**metrics, "n_fit": len(fit_idx), "n_test": len(test), "predict_seconds": seconds,
            "latency_ms_mean": float(truth[test_idx].mean())}
