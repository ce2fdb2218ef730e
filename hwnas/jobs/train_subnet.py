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
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hwnas.errors import ConfigError, DataError, choices_text
from hwnas.io import atomic_torch_save, atomic_write_text
from hwnas.options import count, integer, number, seed
from hwnas.jobs.train_supernet import build_data, fit_resumable, load_supernet_with_data, set_threads
from hwnas.spaces.cost import model_cost
from hwnas.supernet import evaluate_subnet, recalibrate_bn, space_spec, top1_accuracy
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


def training_options(cfg) -> dict:
    """The recipe's numbers, checked before any data is loaded: ``train_subnet.epochs=1.5`` is not one epoch."""
    tc, sn = cfg.train_subnet, OmegaConf.to_container(cfg.supernet, resolve=True)
    opt = sn.get("optimizer") or {}
    epochs = count(tc.epochs, "train_subnet.epochs", 1, why="epochs of training from scratch")
    smoothing = number(sn.get("label_smoothing", 0.0), "supernet.label_smoothing", 0, 1)
    if smoothing == 1:  # every target uniform: nothing to learn
        raise ConfigError(f"supernet.label_smoothing = {sn.get('label_smoothing')!r} is out of range; it must be >= 0 "
                          f"and < 1")
    return dict(epochs=epochs, lr=number(tc.lr, "train_subnet.lr", 0, exclusive_minimum=True),
                warmup_epochs=number(tc.warmup_epochs, "train_subnet.warmup_epochs", 0, epochs,
                                     hint=" (linear warm-up, at most train_subnet.epochs)"),
                optimizer=str(opt.get("name", "sgd")),
                momentum=number(opt.get("momentum", 0.9), "supernet.optimizer.momentum", 0, 1),
                nesterov=bool(opt.get("nesterov", True)),
                weight_decay=number(opt.get("weight_decay", 0.0), "supernet.optimizer.weight_decay", 0),
                label_smoothing=smoothing,
                seed=seed(cfg.seed, "seed"))


def build_module(cfg, space, arch: str) -> SubnetTraining:
    return SubnetTraining(space=space_spec(space), arch=arch, **training_options(cfg))


#: hyperparameters a subnet checkpoint must share with this run to be resumed
RESUME_KEYS = {k: k for k in ("space", "arch", "epochs", "lr", "seed")}


def fit(module: SubnetTraining, dm, cfg, ctx) -> float:
    seconds, _, _ = fit_resumable(module, dm, cfg, ctx, int(module.hparams.epochs), RESUME_KEYS,
                                  cfg.train_subnet.get("progress_bar"), "subnet")
    return seconds


def run(cfg, ctx) -> dict[str, float]:
    tc = cfg.train_subnet
    set_threads(count(tc.get("threads"), "train_subnet.threads", 1, allow_none=True,
                      why="CPU threads; null: PyTorch's default"))
    training_options(cfg)  # every number of the recipe, before data is loaded
    integer(tc.calibration_images, "train_subnet.calibration_images", 1,
            hint=" (training images that recalibrate batch norm before scoring)")
    pl.seed_everything(seed(cfg.seed, "seed"), workers=True, verbose=False)
    splits = list(tc.eval_splits)
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ConfigError(f"train_subnet.eval_splits: {bad[0]!r} is not a split; allowed: {choices_text(SPLITS)}")
    text = arch_text(tc)
    supernet = None
    if tc.get("supernet"):  # the space (and the data's image size) are the supernet's
        supernet, meta, dm = load_supernet_with_data(cfg, tc.supernet, "train_subnet.supernet")
        space = supernet.space
    else:
        probe = instantiate(cfg.search_space)
        dm = build_data(cfg, max(probe.resolutions))
        space = instantiate(cfg.search_space, num_classes=dm.num_classes)
    calibration_images = dm.check_calibration(tc.calibration_images, "train_subnet.calibration_images")
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
    calibration = [x.to(device) for x in dm.calibration_batches(calibration_images)]
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
