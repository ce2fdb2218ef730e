"""Train one subnet of an OFA-family space from scratch and score it (the reference for supernet ranking).

The subnet is ``train_subnet.arch`` (the space's canonical string, or smallest / median / largest) or row
``train_subnet.index`` of ``train_subnet.archs_file`` (a CSV with an ``arch`` column, e.g. an accuracy
dataset of ``job=eval_subnets``). The network is ``space.build_model(arch)``, randomly initialized and trained
with the supernet recipe (``supernet.optimizer``, ``supernet.label_smoothing``) for ``epochs``; it is scored on
``eval_splits`` after batch-norm recalibration, exactly as ``eval_subnets`` scores a subnet of a supernet
(``{split}/acc``; ``{split}/acc_running_bn`` with the running statistics of training). With
``train_subnet.supernet=<supernet.pt>`` the space is the supernet's and the same subnet inherited from that
supernet is scored too (``{split}/acc_inherited``). Checkpoints every epoch and on interrupt; a rerun in the
same run dir resumes.
"""
from __future__ import annotations

import csv
import logging
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hwnas.errors import ConfigError, DataError, choices_text
from hwnas.io import atomic_torch_save, atomic_write_text
from hwnas.jobs.train_predictor import lightning_logger
from hwnas.jobs.train_supernet import QUIET_WARNINGS, build_data, set_threads, trainer_config
from hwnas.predictors.estimator import make_trainer
from hwnas.spaces.cost import model_cost
from hwnas.supernet import evaluate_subnet, load_supernet, recalibrate_bn, space_spec, top1_accuracy
from hwnas.supernet.data import SPLITS
from hwnas.supernet.evaluation import MEMORY_FORMAT, pick_device
from hwnas.supernet.standalone import SubnetTraining, resolve_arch


def arch_text(tc) -> str:
    """The requested architecture string: ``arch``, or row ``index`` of ``archs_file``."""
    arch, path, index = tc.get("arch"), tc.get("archs_file"), tc.get("index")
    if (arch is None) == (path is None):
        raise ConfigError("train_subnet needs exactly one of train_subnet.arch (an architecture string, smallest, "
                          "median, largest) and train_subnet.archs_file (+ train_subnet.index)")
    if arch is not None:
        return str(arch)
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ConfigError(f"train_subnet.index = {index!r} must be a row number >= 0 of train_subnet.archs_file")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"train_subnet.archs_file '{path}' does not exist")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if "arch" not in (reader.fieldnames or []):
            raise DataError(f"train_subnet.archs_file '{path}' has no 'arch' column (columns: {reader.fieldnames})")
        rows = [row["arch"] for row in reader]
    if index >= len(rows):
        raise ConfigError(f"train_subnet.index = {index} is past the last row of '{path}' ({len(rows)} rows)")
    return rows[index]


def build_module(cfg, space, arch: str) -> SubnetTraining:
    tc, sn = cfg.train_subnet, OmegaConf.to_container(cfg.supernet, resolve=True)
    opt = sn.get("optimizer") or {}
    return SubnetTraining(space=space_spec(space), arch=arch, epochs=tc.epochs, lr=float(tc.lr),
                          warmup_epochs=float(tc.warmup_epochs), optimizer=str(opt.get("name", "sgd")),
                          momentum=float(opt.get("momentum", 0.9)), nesterov=bool(opt.get("nesterov", True)),
                          weight_decay=float(opt.get("weight_decay", 0.0)),
                          label_smoothing=float(sn.get("label_smoothing", 0.0)), seed=int(cfg.seed))


def fit(module: SubnetTraining, dm, cfg, ctx) -> float:
    ckdir = ctx.run_dir / "checkpoints"
    callbacks = [pl.callbacks.ModelCheckpoint(dirpath=ckdir, filename="last", monitor=None, save_top_k=1,
                                              every_n_epochs=1, enable_version_counter=False),
                 pl.callbacks.OnExceptionCheckpoint(dirpath=ckdir, filename="interrupted")]
    saved = [p for p in (ckdir / "interrupted.ckpt", ckdir / "last.ckpt") if p.exists()]
    ckpt_path = max(saved, key=lambda p: p.stat().st_mtime) if saved else None
    if ckpt_path is not None:
        hp = torch.load(ckpt_path, map_location="cpu", weights_only=True).get("hyper_parameters", {})
        for key in ("space", "arch", "epochs", "lr", "seed"):
            if key in hp and hp[key] != module.hparams[key]:
                raise ConfigError(f"checkpoint '{ckpt_path}' was trained with another {key} ({hp[key]!r}); use a new "
                                  f"hydra.run.dir, or delete {ckdir} to start over")
        print(f"resuming subnet training from {ckpt_path}")
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    trainer = make_trainer(trainer_config(cfg), int(module.hparams.epochs), ctx.run_dir, lightning_logger(ctx),
                           cfg.train_subnet.get("progress_bar"), callbacks)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        for note in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=note)
        trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt_path) if ckpt_path else None)
    return time.perf_counter() - t0


def run(cfg, ctx) -> dict[str, float]:
    tc = cfg.train_subnet
    set_threads(tc.get("threads"))
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    splits = list(tc.eval_splits)
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ConfigError(f"train_subnet.eval_splits: {bad[0]!r} is not a split; allowed: {choices_text(SPLITS)}")
    text = arch_text(tc)
    supernet = None
    if tc.get("supernet"):  # the space (and the data's image size) are the supernet's
        supernet, meta = load_supernet(tc.supernet)
        space = supernet.space
        dm = build_data(cfg, int(meta.get("image_size", max(space.resolutions))))
        if meta.get("data") and meta["data"] != dm.name:
            raise ConfigError(f"supernet '{tc.supernet}' was trained on data={meta['data']}; this run has "
                              f"data={dm.name} (pass data={meta['data']})")
        if dm.num_classes != space.num_classes:
            raise ConfigError(f"supernet '{tc.supernet}' classifies {space.num_classes} classes; data={dm.name} has "
                              f"{dm.num_classes}")
    else:
        probe = instantiate(cfg.search_space)
        dm = build_data(cfg, max(probe.resolutions))
        space = instantiate(cfg.search_space, num_classes=dm.num_classes)
    arch = resolve_arch(space, text, "train_subnet.arch")
    module = build_module(cfg, space, space.to_string(arch))
    seconds = fit(module, dm, cfg, ctx)
    atomic_write_text(ctx.path("arch.txt"), space.to_string(arch) + "\n")
    atomic_torch_save({"format": "hwnas-subnet/1", "space": space_spec(space), "arch": space.to_string(arch),
                       "state_dict": {k: v.detach().cpu() for k, v in module.model.state_dict().items()}},
                      ctx.path("subnet.pt"))
    cost = model_cost(space.build_model(arch), space.input_shape(arch))
    metrics: dict[str, float] = {"train_seconds": seconds, "global_step": int(module.global_step),
                                 "epochs": int(module.current_epoch), "flops": cost.flops, "params": cost.params,
                                 "resolution": arch.r}
    device = pick_device(str(tc.get("device", "auto")))
    calibration = [x.to(device) for x in dm.calibration_batches(int(tc.calibration_images))]
    model = module.model.to(device=device, memory_format=MEMORY_FORMAT)
    for split in splits:
        loader = dm.split_loader(split)
        metrics[f"{split}/acc_running_bn"] = top1_accuracy(model.eval(), loader, arch.r, device)
    recalibrate_bn(model, calibration, arch.r, device)
    for split in splits:
        metrics[f"{split}/acc"] = top1_accuracy(model, dm.split_loader(split), arch.r, device)
    if supernet is not None:
        supernet.to(device)
        for split in splits:
            metrics[f"{split}/acc_inherited"] = evaluate_subnet(supernet, arch, calibration, dm.split_loader(split), device)
    print(f"subnet (r={arch.r}, {cost.flops / 1e6:.2f} MFLOPs) trained from scratch on {dm.name}: {module.global_step} "
          f"steps in {seconds:.1f} s; " + ", ".join(
              f"{s} {metrics[f'{s}/acc']:.2f} %" + (f" (inherited {metrics[f'{s}/acc_inherited']:.2f} %)"
                                                   if supernet is not None else "") for s in splits))
    return metrics
