"""Latency of every architecture in a CSV, in input order, from any estimator."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from tqdm import tqdm

from hwnas.data.tables import read_arch_column
from hwnas.estimators.fitting import fit_from_config
from hwnas.io import write_csv
from hwnas.options import count


def run(cfg, ctx) -> dict[str, float]:
    space = instantiate(cfg.search_space)
    strings = read_arch_column(cfg.predict.input, "predict.input")
    archs = space.from_strings(strings)
    estimator = instantiate(cfg.estimator)
    device = instantiate(cfg.device) if estimator.needs_fit and not estimator.fit_data else None
    fit_from_config(estimator, space, device)
    batch = count(cfg.predict.batch_size, "predict.batch_size", 1, why="architectures per estimator call")
    t0 = time.perf_counter()
    parts = [estimator.predict(space, archs[i:i + batch])
             for i in tqdm(range(0, len(archs), batch), desc=f"predicting with {estimator.name}", unit="batch")]
    seconds = time.perf_counter() - t0
    pred = np.concatenate(parts) if parts else np.zeros(0)
    output = Path(cfg.predict.output) if cfg.predict.get("output") else ctx.path("predictions.csv")
    write_csv(output, ["arch", "latency_ms"], ([s, f"{p:.6g}"] for s, p in zip(strings, pred)))
    print(f"{len(pred)} predictions with estimator={estimator.name} in {seconds:.2f} s -> {output}")
    return {"n_archs": len(pred), "predict_seconds": seconds,
            "archs_per_second": len(pred) / seconds if seconds > 0 else 0.0,
            "latency_ms_mean": float(pred.mean()) if len(pred) else 0.0}
