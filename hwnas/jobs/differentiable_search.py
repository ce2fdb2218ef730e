"""Differentiable (ProxylessNAS-style) search: weights and architecture logits trained together.

Writes ``derived_arch.txt`` (canonical string), ``derived.csv``, ``alphas.csv`` (per layer and
candidate: logit, probability, latency, chosen), ``lut.yaml`` when it profiled the layers itself,
and metrics: expected latency (softmax-weighted, final logits), the derived architecture's latency
under the same table, its latency measured on the local device, and its top-1 accuracy with the
weights it inherits from the mixed network (batch norm recalibrated), optionally after a short
fine-tuning (``differentiable_search.retrain_epochs``).
"""
from __future__ import annotations

import time

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import yaml
from hydra.utils import instantiate

from hwnas.errors import ConfigError, choices_text
from hwnas.io import atomic_write_text, write_csv
from hwnas.jobs.train_predictor import lightning_logger
from hwnas.options import count, integer, number
from hwnas.search.differentiable import DifferentiableSearch, lut_latency
from hwnas.search.mixed import mixed_space
from hwnas.supernet.data import SPLITS, ImageDataModule
from hwnas.supernet.evaluation import pick_device, recalibrate_bn, top1_accuracy


class FineTune(pl.LightningModule):
    """Plain training of the derived network from its inherited weights (SGD, cosine learning rate)."""

    def __init__(self, model: torch.nn.Module, lr: float, epochs: int, weight_decay: float = 4e-5):
        super().__init__()
        self.model, self.lr, self.epochs, self.weight_decay = model, lr, epochs, weight_decay

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("retrain/loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.model.parameters(), lr=self.lr, momentum=0.9, nesterov=True,
                              weight_decay=self.weight_decay)
        return [opt], [torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, self.epochs))]


def _image_data(cfg, image_size: int) -> ImageDataModule:
    dm = instantiate(cfg.data, image_size=int(image_size))
    if not isinstance(dm, ImageDataModule):
        raise ConfigError(f"data = {type(dm).__name__} is not an hwnas image DataModule (conf/data)")
    return dm


def _accuracy(model, dm, splits, calibration_images: int, resolution: int, device) -> dict[str, float]:
    model = model.to(device)
    recalibrate_bn(model, dm.calibration_batches(calibration_images), resolution, device)
    return {s: top1_accuracy(model, dm.split_loader(s), resolution, device) for s in splits}


def run(cfg, ctx) -> dict[str, float]:
    job = cfg.differentiable_search
    strategy = instantiate(cfg.search_strategy)
    if not isinstance(strategy, DifferentiableSearch):
        raise ConfigError(f"job=differentiable_search needs search_strategy=differentiable, not "
                          f"{getattr(strategy, 'name', type(strategy).__name__)}")
    splits = list(job.eval_splits)
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ConfigError(f"differentiable_search.eval_splits: {bad[0]!r} is not a split; allowed: {choices_text(SPLITS)}")
    retrain_epochs = count(job.retrain_epochs, "differentiable_search.retrain_epochs", 0,
                           why="epochs fine-tuning the derived network; 0: no fine-tuning")
    retrain_lr = number(job.get("retrain_lr", 0.01), "differentiable_search.retrain_lr", 0, exclusive_minimum=True)
    integer(job.calibration_images, "differentiable_search.calibration_images", 1,
            hint=" (training images that recalibrate batch norm before scoring)")
    probe = instantiate(cfg.search_space)  # validates resolutions before the data is sized by them
    resolution = strategy.search_resolution(probe)
    mixed_space(probe, resolution)  # fails fast on a space the search cannot run on
    device = instantiate(cfg.device)
    dm = _image_data(cfg, resolution)
    space = instantiate(cfg.search_space, num_classes=dm.num_classes)  # the classifier follows the data
    # checked against the data before the search trains, not after
    calibration = dm.check_calibration(job.calibration_images, "differentiable_search.calibration_images")

    # ---- per-candidate latencies (a profiled table is kept in the run dir so a rerun resumes with it)
    profiled = ctx.path("lut.yaml")
    t0 = time.perf_counter()
    if strategy.latency_source == "profile" and profiled.exists():
        table = yaml.safe_load(profiled.read_text())
        latency = lut_latency(mixed_space(space, resolution), {k: v[strategy.latency_statistic] for k, v in table.items()},
                              f"'{profiled}'")
        latency.source = "profile"
    else:
        from hwnas.estimators.fitting import fit_from_config

        latency = strategy.op_latency(space, resolution, device=device, data_dir=cfg.paths.get("data_dir"),
                                      estimator=lambda: fit_from_config(instantiate(cfg.estimator), space, device))
        if latency.table:
            atomic_write_text(profiled, yaml.safe_dump(latency.table, sort_keys=True))
    latency_seconds = time.perf_counter() - t0

    # ---- search
    result = strategy.search(space, dm, latency, cfg.trainer, ctx.run_dir, lightning_logger(ctx),
                             job.get("progress_bar"))
    arch_string = space.to_string(result.arch)
    header, rows = result.module.alpha_rows()
    write_csv(ctx.path("alphas.csv"), header, rows)
    atomic_write_text(ctx.path("derived_arch.txt"), arch_string + "\n")

    # ---- the derived architecture: cost, accuracy (inherited weights, optionally fine-tuned), measured latency
    cost = space.costs([result.arch])
    eval_device = pick_device(str(job.get("device", "auto")))
    acc = _accuracy(result.model, dm, splits, calibration, resolution, eval_device)
    metrics: dict[str, float] = {
        "lambda": strategy.latency_lambda, "expected_latency_ms": result.expected_latency_ms,
        "derived_latency_ms": result.derived_latency_ms, "search_seconds": result.train_seconds,
        "latency_table_seconds": latency_seconds, "resolution": resolution,
        "depth": int(sum(result.arch.d)), "params": float(cost["params"][0]), "flops": float(cost["flops"][0]),
        "final_entropy": float(result.module.entropy().detach()),
        **{f"{s}/acc_inherited": a for s, a in acc.items()}}
    if retrain_epochs:
        from hwnas.predictors.estimator import make_trainer, manual_optimization_trainer

        tune = FineTune(result.model.train(), retrain_lr, retrain_epochs)
        trainer = make_trainer(manual_optimization_trainer(cfg.trainer), retrain_epochs, ctx.run_dir / "retrain", False,
                               job.get("progress_bar"), validate=False)
        t1 = time.perf_counter()
        trainer.fit(tune, datamodule=dm)  # augmented batches, as in the search
        metrics["retrain_seconds"] = time.perf_counter() - t1
        retrained = _accuracy(tune.model, dm, splits, calibration, resolution, eval_device)
        metrics.update({f"{s}/acc_retrained": a for s, a in retrained.items()})
    if job.measure:
        from hwnas.devices import require_local

        require_local(device, "differentiable_search", "with differentiable_search.measure=true measures the derived "
                      "network on this machine (set differentiable_search.measure=false to skip)")
        timing = device.measure(space, result.arch)
        metrics.update(measured_latency_ms=timing.median_ms, measured_latency_iqr_ms=timing.iqr_ms)
    write_csv(ctx.path("derived.csv"),
              ["arch", "expected_latency_ms", "derived_latency_ms", "measured_latency_ms", *(f"{s}_acc" for s in acc)],
              [[arch_string, f"{result.expected_latency_ms:.6g}", f"{result.derived_latency_ms:.6g}",
                f"{metrics['measured_latency_ms']:.6g}" if "measured_latency_ms" in metrics else "",
                *(f"{a:.4g}" for a in acc.values())]])
    measured = f", measured {metrics['measured_latency_ms']:.3f} ms" if "measured_latency_ms" in metrics else ""
    print(f"differentiable search (lambda {strategy.latency_lambda:g}, latency {latency.source}) on {space.name} "
          f"@{resolution}px, {dm.name}: {result.train_seconds:.1f} s; derived {arch_string}\n"
          f"  expected latency {result.expected_latency_ms:.3f} ms, derived {result.derived_latency_ms:.3f} ms{measured}; "
          + ", ".join(f"{s} {a:.2f} %" for s, a in acc.items()) + " (inherited weights, BN recalibrated)")
    return metrics
