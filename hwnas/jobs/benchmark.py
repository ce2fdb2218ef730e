"""How many architectures per second the configured space encodes and the estimator predicts."""
from __future__ import annotations

import os

import torch
from hydra.utils import instantiate

from hwnas.errors import ConfigError
from hwnas.measure.harness import median_seconds
from hwnas.estimators.fitting import fit_from_config
from hwnas.predictors import PredictorEstimator



def run(cfg, ctx) -> dict[str, float]:
    n, repeats = int(cfg.benchmark.n), int(cfg.benchmark.repeats)
    if n < 1 or repeats < 1:
        raise ConfigError(f"benchmark.n = {n} and benchmark.repeats = {repeats} must be >= 1")
    if cfg.benchmark.get("threads"):
        torch.set_num_threads(int(cfg.benchmark.threads))
    space = instantiate(cfg.search_space)
    estimator = instantiate(cfg.estimator)
    archs = space.sample(n, seed=int(cfg.seed))
    if isinstance(estimator, PredictorEstimator) and estimator.module is None:
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
    return metrics
