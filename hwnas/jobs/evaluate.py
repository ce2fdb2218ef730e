"""Score an estimator against a device's true latencies on held-out architectures."""
from __future__ import annotations

import time

import numpy as np
from hydra.utils import instantiate

from hwnas.devices import require_table
from hwnas.errors import ConfigError
from hwnas.io import write_csv
from hwnas.metrics import MIN_SCORED, evaluate_predictions
from hwnas.options import count, seed


def split(n: int, n_fit: int, n_test: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint random fit / test index sets; the test set is scorable (>= MIN_SCORED) or a ConfigError."""
    left = n - n_fit
    if left < MIN_SCORED:
        raise ConfigError(f"a fit pool of {n_fit} (evaluate.train_samples or estimator.fit_samples) leaves {max(left, 0)} "
                          f"of the {n} architectures to test; scoring needs >= {MIN_SCORED}")
    if n_test is not None and n_test > left:
        raise ConfigError(f"evaluate.test_samples = {n_test} exceeds the {left} architectures left after the fit pool "
                          f"of {n_fit}; allowed: {MIN_SCORED}..{left} or null (all of them)")
    order = np.random.default_rng(seed).permutation(n)
    fit, rest = order[:n_fit], order[n_fit:]
    return fit, rest if n_test is None else rest[:n_test]


def run(cfg, ctx) -> dict[str, float]:
    space = instantiate(cfg.search_space)
    device = instantiate(cfg.device)
    require_table(device, "evaluate", "scores against known latencies")
    estimator = instantiate(cfg.estimator)
    archs, truth = device.dataset(space)
    e = cfg.evaluate
    n_fit = estimator.fit_samples if estimator.needs_fit and not estimator.fit_data else 0
    pool = count(e.get("train_samples"), "evaluate.train_samples", 0, allow_none=True,
                 why="architectures reserved for fitting; null: the estimator's fit_samples")
    pool = n_fit if pool is None else pool
    if n_fit > pool:
        raise ConfigError(f"estimator.fit_samples = {n_fit} exceeds evaluate.train_samples = {pool}")
    n_test = count(e.get("test_samples"), "evaluate.test_samples", MIN_SCORED, allow_none=True,
                   why=f"held-out architectures to score; Spearman and Kendall need >= {MIN_SCORED}; null: all not "
                       f"used for fitting")
    candidates, fit_from_file = np.arange(len(archs)), None
    if estimator.needs_fit and estimator.fit_data:  # scored only on architectures the file did not teach it
        from hwnas.estimators.fitting import training_samples

        fit_from_file = training_samples(estimator, space, device)
        taught = {space.to_string(a) for a in fit_from_file[0]}
        candidates = np.array([i for i, a in enumerate(archs) if space.to_string(a) not in taught], dtype=np.int64)
        if len(candidates) < MIN_SCORED:
            raise ConfigError(f"estimator.fit_data '{estimator.fit_data}' holds {len(archs) - len(candidates)} of the "
                              f"{len(archs)} architectures of device {device.name}, leaving {len(candidates)} unseen to "
                              f"score; scoring needs >= {MIN_SCORED}")
    fit_pick, test_pick = split(len(candidates), pool, n_test, seed(e.seed, "evaluate.seed"))
    fit_idx, test_idx = candidates[fit_pick][:n_fit], candidates[test_pick]
    if fit_from_file is not None:
        estimator.fit(space, *fit_from_file)
    elif estimator.needs_fit:
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
        ctx.tracker.log_scatter("predicted_vs_true", ["arch", "latency_ms", "predicted_ms"], rows[:2000], "latency_ms",
                                "predicted_ms", title=f"estimator={estimator.label}: predicted vs measured latency (ms)")
    print(f"estimator={estimator.label} on {device.name} ({space.name}): {len(test)} held-out archs, "
          f"RMSE {metrics['rmse_ms']:.4g} ms ({metrics['rmse_pct']:.1f} %), Spearman {metrics['spearman']:.3f}, "
          f"Kendall {metrics['kendall']:.3f}, within 10 % {metrics['within_10pct']:.1%}")
    return {**metrics, "n_fit": len(fit_idx), "n_test": len(test), "predict_seconds": seconds,
            "latency_ms_mean": float(truth[test_idx].mean())}
