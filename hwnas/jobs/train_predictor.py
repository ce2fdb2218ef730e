"""Train a latency predictor on one device's latency dataset and test it on held-out architectures."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from hydra.utils import instantiate

from hwnas.devices import require_table
from hwnas.errors import ConfigError
from hwnas.io import write_csv
from hwnas.metrics import MIN_SCORED, evaluate_predictions
from hwnas.options import count, seed
from hwnas.predictors import PredictorEstimator
from hwnas.predictors.data import split_indices
from hwnas.tracking import PrefixedTracker, WandbTracker


def lightning_logger(ctx):
    """Per-epoch metrics go to the job's W&B run when there is one (a pipeline stage's, under the stage's
    prefix, into the pipeline's run), else to a CSV in the run dir."""
    from pytorch_lightning.loggers import CSVLogger

    tracker, prefix = ctx.tracker, ""
    while isinstance(tracker, PrefixedTracker):  # a stage of job=pipeline: its parent holds the W&B run
        prefix, tracker = tracker.prefix + prefix, tracker.parent
    if isinstance(tracker, WandbTracker):
        return _joined_wandb_logger()(experiment=tracker.run, prefix=prefix)
    return CSVLogger(str(ctx.run_dir), name="lightning_logs")


@functools.lru_cache(maxsize=1)
def _joined_wandb_logger():
    """Lightning's WandbLogger with the prefix joined as is: ``<stage>/val/rmse_pct``, the key the stage's other
    metrics have in the pipeline's run, not ``<stage>/-val/rmse_pct``."""
    from pytorch_lightning.loggers import WandbLogger

    class JoinedWandbLogger(WandbLogger):
        LOGGER_JOIN_CHAR = ""

    return JoinedWandbLogger


#: What a sweeper tunes by default (hwnas.objective): the validation split's error, never the test split's.
OBJECTIVE = "val/rmse_pct"
#: Fewest training architectures a predictor learns from (its target scale needs a spread).
MIN_TRAIN = 2
#: Fewest validation architectures an interval is calibrated on (a 90 % quantile of fewer says little).
MIN_CALIBRATION = 10


def check_splits(tr, va, te, n: int, samples) -> np.ndarray:
    """The training rows (the first ``train.samples`` of the split when set); a split too small for what it
    is used for is a one-line ConfigError: training needs >= 2 rows, a scored val or test split >= 3, or none."""
    sizes = f"train.split gives {len(tr)}/{len(va)}/{len(te)} of {n} architectures"
    if len(tr) < MIN_TRAIN:
        raise ConfigError(f"{sizes}: the training split needs >= {MIN_TRAIN} (a predictor learns nothing from "
                          f"fewer); raise its fraction or use a larger table")
    for name, idx in (("validation", va), ("test", te)):
        if 0 < len(idx) < MIN_SCORED:
            raise ConfigError(f"{sizes}: a {name} split of {len(idx)} cannot be scored (>= {MIN_SCORED} for a rank "
                              f"correlation); make it 0 or larger")
    n_train = count(samples, "train.samples", MIN_TRAIN, len(tr), allow_none=True,
                    why=f"the training split has {len(tr)}; a predictor needs >= {MIN_TRAIN} to learn from; "
                        f"null trains on the whole split")
    return tr if n_train is None else tr[:n_train]


def run(cfg, ctx) -> dict[str, float]:
    space = instantiate(cfg.search_space)
    device = instantiate(cfg.device)
    require_table(device, "train_predictor", "learns from a latency dataset")
    estimator = instantiate(cfg.estimator)
    if not isinstance(estimator, PredictorEstimator) or not estimator.needs_fit:
        raise ConfigError("job=train_predictor trains estimator=predictor or estimator=gcn (without a checkpoint)")
    archs, lat = device.dataset(space)
    tr, va, te = split_indices(len(archs), cfg.train.split, seed(cfg.train.seed, "train.seed"))
    tr = check_splits(tr, va, te, len(archs), cfg.train.get("samples"))
    pick = lambda idx: [archs[i] for i in idx]  # noqa: E731
    estimator.fit(space, pick(tr), lat[tr], pick(va), lat[va], work_dir=ctx.run_dir, logger=lightning_logger(ctx))
    metrics = {"n_train": len(tr), "n_val": len(va), "n_test": len(te), "train_seconds": estimator.train_seconds,
               "epochs": estimator.epochs if estimator.trained_epochs is None else estimator.trained_epochs}
    if estimator.interval:
        if len(va) < MIN_CALIBRATION:
            raise ConfigError(f"estimator.interval = {estimator.interval} is calibrated on the validation split, which "
                              f"has {len(va)} architectures; it needs >= {MIN_CALIBRATION} (raise train.split's second "
                              f"fraction) or set estimator.interval=null")
        metrics["interval_offset"] = estimator.calibrate_interval(space, pick(va), lat[va])
    output = Path(cfg.train.output) if cfg.train.get("output") else ctx.path("predictor.pt")
    estimator.save(output)
    ctx.tracker.log_artifact(output, "predictor", {"space": space.name, "device": device.name, "n_train": len(tr)})
    if estimator.ridge_alpha is not None:
        metrics["ridge_alpha"] = estimator.ridge_alpha
    for name, idx in (("val", va), ("test", te)):
        if len(idx):
            pred = estimator.predict(space, pick(idx))
            metrics.update(evaluate_predictions(pred, lat[idx], prefix=f"{name}/"))
            if name == "test":
                head = ["arch", "latency_ms", "predicted_ms"]
                rows = [[space.to_string(archs[i]), f"{lat[i]:.6g}", f"{p:.6g}"] for i, p in zip(idx, pred)]
                if estimator.interval:  # the calibrated interval on architectures it was not calibrated on
                    lo, hi = estimator.predict_interval(space, pick(idx))
                    metrics.update(interval_coverage=float(np.mean((lat[idx] >= lo) & (lat[idx] <= hi))),
                                   interval_width_pct=float(np.median((hi - lo) / pred * 100)))
                    head += ["low_ms", "high_ms"]
                    rows = [r + [f"{a:.6g}", f"{b:.6g}"] for r, a, b in zip(rows, lo, hi)]
                write_csv(ctx.path("predictions.csv"), head, rows)
                ctx.tracker.log_table("test_predictions", head, rows[:2000])
                ctx.tracker.log_scatter("test_predicted_vs_true", head, rows[:2000], "latency_ms", "predicted_ms",
                                        title=f"Predicted vs measured latency (ms), test split, {device.name}")
    print(f"predictor ({estimator.options['model']}) on {device.name} ({space.name}), {len(tr)} training archs, "
          f"{estimator.train_seconds:.1f} s: test RMSE {metrics.get('test/rmse_ms', np.nan):.4g} ms "
          f"({metrics.get('test/rmse_pct', np.nan):.2f} %), Spearman {metrics.get('test/spearman', np.nan):.4f}"
          + (f", {estimator.interval:.0%} interval covers {metrics['interval_coverage']:.1%} of the test split (median "
             f"width {metrics['interval_width_pct']:.1f} % of the prediction)" if "interval_coverage" in metrics else "")
          + f" -> {output}")
    return metrics
