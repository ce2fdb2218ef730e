"""Train a weight-sharing supernet (progressive shrinking, naive or CompOFA schedule) and score three subnets.

Checkpoints every epoch and on interrupt (``checkpoints/last.ckpt``, ``interrupted.ckpt``); a rerun
in the same run dir resumes from the newest one, mid-phase and mid-epoch included. Writes
``supernet.pt`` (loads with ``weights_only=True``; input of ``job=eval_subnets``) and the top-1
accuracy of the smallest, median and largest subnets after batch-norm recalibration.
"""
from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hwnas.checkpoints import check_same_config, checkpointing
from hwnas.errors import ConfigError, choices_text
from hwnas.options import count, number
from hwnas.jobs.train_predictor import lightning_logger
from hwnas.predictors.estimator import make_trainer, manual_optimization_trainer
from hwnas.supernet import (ImageDataModule, ProgressiveShrinking, evaluate_subnet, largest_arch, load_supernet,
                            median_arch, save_supernet, smallest_arch, space_spec)
from hwnas.supernet.data import SPLITS
from hwnas.supernet.evaluation import pick_device


#: Lightning notes that do not apply here: fit() picks the checkpoint to resume, a mid-epoch resume is exact (the
#: schedule follows the global step), the data configs choose their loader workers.
QUIET_WARNINGS = (r"`\.fit\(ckpt_path=None\)` was called without a model", r"\.fit\(ckpt_path=\"last\"\) is set",
                  r"Checkpoint directory .* exists and is not empty", r"You're resuming from a checkpoint that ended",
                  r"The '\w+_dataloader' does not have many workers", r".*treespec, LeafSpec")


def build_data(cfg, image_size: int) -> ImageDataModule:
    dm = instantiate(cfg.data, image_size=int(image_size))
    if not isinstance(dm, ImageDataModule):
        raise ConfigError(f"data = {type(dm).__name__} is not an hwnas image DataModule (conf/data)")
    return dm


def build_module(cfg, space) -> ProgressiveShrinking:
    sn = OmegaConf.to_container(cfg.supernet, resolve=True)
    kd, opt = sn.get("kd") or {}, sn.get("optimizer") or {}
    return ProgressiveShrinking(
        space=space_spec(space), phases=sn.get("phases"), schedule=str(sn.get("schedule", "custom")),
        kd_weight=number(kd.get("weight", 0.0), "supernet.kd.weight", 0),
        kd_temperature=number(kd.get("temperature", 1.0), "supernet.kd.temperature", 0, exclusive_minimum=True),
        kd_teacher=str(kd.get("teacher", "snapshot")), optimizer=str(opt.get("name", "sgd")),
        momentum=number(opt.get("momentum", 0.9), "supernet.optimizer.momentum", 0, 1),
        nesterov=bool(opt.get("nesterov", True)),
        weight_decay=number(opt.get("weight_decay", 0.0), "supernet.optimizer.weight_decay", 0),
        label_smoothing=number(sn.get("label_smoothing", 0.0), "supernet.label_smoothing", 0, 0.99),
        seed=int(cfg.seed),  # checked by hwnas.jobs.check_config
        calibration_images=count(cfg.train_supernet.calibration_images, "train_supernet.calibration_images", 1,
                                 why="training images that recalibrate batch norm"))


#: hyperparameters a supernet checkpoint must share with this run to be resumed, and the option naming each
RESUME_KEYS = {"space": "search_space", "phases": "supernet.phases", "seed": "seed", "kd_teacher": "supernet.kd.teacher",
               "kd_weight": "supernet.kd.weight"}


def fit_resumable(module: pl.LightningModule, dm: ImageDataModule, cfg, ctx, max_epochs: int, keys: dict[str, str],
                  progress_bar, what: str) -> tuple[float, pl.Trainer, Path]:
    """Fit with ``last.ckpt`` every epoch and ``interrupted.ckpt`` on an exception, resuming from the readable
    one with the most training when the run dir has one (:mod:`hwnas.checkpoints`); ``keys`` (hparam -> option)
    must match the checkpoint's. Returns (seconds, trainer, checkpoint dir)."""
    ckdir = ctx.run_dir / "checkpoints"
    callbacks, resume = checkpointing(ckdir)
    if resume is not None:
        check_same_config(resume, module.hparams, keys)
        print(f"resuming {what} training from {resume.path} (step {resume.global_step})")
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    trainer = make_trainer(manual_optimization_trainer(cfg.trainer), max_epochs, ctx.run_dir, lightning_logger(ctx),
                           progress_bar, callbacks)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        for note in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=note)
        trainer.fit(module, datamodule=dm, ckpt_path=resume.ckpt_path if resume else None)
    return time.perf_counter() - t0, trainer, ckdir


def load_supernet_with_data(cfg, path, setting: str | None = None) -> tuple:
    """A trained supernet and the DataModule it was trained on (image size from the checkpoint); a ``data``
    choice that differs from the supernet's data is refused, and so is a file that is not a supernet
    (``setting``: the option that named it). Returns (supernet, meta, datamodule)."""
    supernet, meta = load_supernet(path, setting)
    space = supernet.space
    dm = build_data(cfg, int(meta.get("image_size", max(space.resolutions))))
    if meta.get("data") and meta["data"] != dm.name:
        raise ConfigError(f"supernet '{path}' was trained on data={meta['data']}; this run has data={dm.name} "
                          f"(pass data={meta['data']})")
    if dm.num_classes != space.num_classes:
        raise ConfigError(f"supernet '{path}' classifies {space.num_classes} classes; data={dm.name} has "
                          f"{dm.num_classes}")
    return supernet, meta, dm


def fit(module: ProgressiveShrinking, dm: ImageDataModule, cfg, ctx) -> float:
    # the module ends training itself when its schedule is done (max_epochs=-1: no epoch limit of Lightning's)
    seconds, trainer, ckdir = fit_resumable(module, dm, cfg, ctx, -1, RESUME_KEYS,
                                            cfg.train_supernet.get("progress_bar"), "supernet")
    if not module.position().done:  # stopped early (trainer.max_steps / max_time): keep this exact state to resume
        trainer.save_checkpoint(ckdir / "last.ckpt")
    return seconds


def set_threads(threads) -> None:
    """``null``: PyTorch's default (every core); small networks on a shared CPU run fastest on one."""
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"threads = {threads!r} must be null or an integer >= 1")
        torch.set_num_threads(threads)


def run(cfg, ctx) -> dict[str, float]:
    tc = cfg.train_supernet
    set_threads(count(tc.get("threads"), "train_supernet.threads", 1, allow_none=True,
                      why="CPU threads; null: PyTorch's default"))
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    probe = instantiate(cfg.search_space)  # validates resolutions before the data is sized by them
    dm = build_data(cfg, max(probe.resolutions))
    space = instantiate(cfg.search_space, num_classes=dm.num_classes)  # the classifier follows the data
    splits = list(tc.eval_splits)
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ConfigError(f"train_supernet.eval_splits: {bad[0]!r} is not a split; allowed: {choices_text(SPLITS)}")
    module = build_module(cfg, space)
    seconds = fit(module, dm, cfg, ctx)
    position = module.position()
    output = Path(tc.output) if tc.get("output") else ctx.path("supernet.pt")
    save_supernet(module.supernet, output, data=dm.name, image_size=dm.image_size, schedule=module.hparams.schedule,
                  global_step=int(module.global_step), total_steps=module.schedule.total_steps)
    ctx.tracker.log_artifact(output, "supernet", {"space": space.name, "data": dm.name,
                                                  "global_step": int(module.global_step)})
    metrics: dict[str, float] = {
        "train_seconds": seconds, "global_step": int(module.global_step), "total_steps": module.schedule.total_steps,
        "schedule_done": float(position.done), "params_supernet": sum(p.numel() for p in module.supernet.parameters()),
        **{k: v for k, v in dm.describe().items() if isinstance(v, int)}}
    device = pick_device(str(tc.get("device", "auto")))
    supernet = module.supernet.to(device).eval()
    calibration = dm.calibration_batches(int(tc.calibration_images))
    report = []
    for name, arch in (("smallest", smallest_arch(space)), ("median", median_arch(space)), ("largest", largest_arch(space))):
        metrics[f"params_{name}"] = sum(p.numel() for p in supernet.extract_subnet(arch).parameters())
        for split in splits:
            acc = evaluate_subnet(supernet, arch, calibration, dm.split_loader(split), device)
            metrics[f"{split}/acc_{name}"] = acc
        report.append(f"{name} " + ", ".join(f"{s} {metrics[f'{s}/acc_{name}']:.2f} %" for s in splits))
    print(f"supernet ({space.name}, {module.hparams.schedule}) on {dm.name}: {module.global_step}/"
          f"{module.schedule.total_steps} steps in {seconds:.1f} s; " + "; ".join(report) + f" -> {output}")
    return metrics
