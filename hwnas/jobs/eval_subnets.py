"""Evaluate sampled subnets of a trained supernet into an accuracy dataset (``arch, accuracy``; top-1 percent).

Each subnet is extracted, its batch norms recalibrated on training images, then scored on the
val (default) or test split. Rows are appended and fsync'ed one by one (the latency store), so an
interrupted run loses nothing and a rerun evaluates only the architectures still missing.
``arch`` is the space's canonical string: the file is what search reads as its accuracy objective.
One run writes the file at a time, and only accuracies of the same supernet (its checkpoint's content),
data, split and recalibration are added to it.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hwnas.errors import ConfigError, choices_text
from hwnas.io import file_digest
from hwnas.jobs.train_supernet import load_supernet_with_data, set_threads
from hwnas.measure import MeasurementStore, provenance
from hwnas.options import count, integer, seed
from hwnas.supernet import evaluate_subnet, largest_arch, smallest_arch
from hwnas.supernet.data import SPLITS
from hwnas.supernet.evaluation import pick_device

COLUMNS = ["arch", "accuracy"]


#: data options that do not change a subnet's score: evaluation batching, loading, training-time augmentation,
#: the image size (taken from the checkpoint)
NEUTRAL_DATA_OPTIONS = ("eval_batch_size", "num_workers", "download", "augment", "max_shift", "image_size")


def identity(cfg, checkpoint: Path, data_name: str, split: str) -> dict[str, object]:
    """What every accuracy in the file depends on besides the subnet: the supernet's weights (checkpoint
    content), the data and its split, and the batch-norm recalibration (images, batch size)."""
    data = cfg.data
    drop = list(NEUTRAL_DATA_OPTIONS)
    if data.get("md5"):  # checksummed data is the same wherever it lives
        drop.append("root")
    return {"rows": "top-1 accuracy of subnets (job=eval_subnets)", "supernet.sha256": file_digest(checkpoint),
            "data.name": data_name, **provenance.options("data", data, drop=drop), "eval_subnets.split": split,
            "eval_subnets.calibration_images": integer(cfg.eval_subnets.calibration_images,
                                                       "eval_subnets.calibration_images", 1)}


def requested_archs(space, n: int, seed: int, include_extremes: bool) -> list:
    """``n`` distinct subnets: the smallest and largest first (if asked), then seeded samples (prefix-stable in n)."""
    n = count(n, "eval_subnets.n", 1, why="distinct subnets to evaluate")
    if n > space.size():  # sample_unique would stop at the whole space, fewer than asked for
        raise ConfigError(f"eval_subnets.n = {n} exceeds the {space.size():,} subnets of {space.name}; "
                          f"allowed: 1..{space.size()}")
    archs = [smallest_arch(space), largest_arch(space)] if include_extremes else []
    seen = {space.to_string(a) for a in archs}
    for arch in space.sample_unique(n, seed=seed):
        if len(archs) >= n:
            break
        if space.to_string(arch) not in seen:
            seen.add(space.to_string(arch))
            archs.append(arch)
    return archs[:n]


def run(cfg, ctx) -> dict[str, float]:
    ec = cfg.eval_subnets
    set_threads(count(ec.get("threads"), "eval_subnets.threads", 1, allow_none=True,
                      why="CPU threads; null: PyTorch's default, every core"))
    n = count(ec.n, "eval_subnets.n", 1, why="distinct subnets to evaluate")
    subnet_seed = seed(ec.seed, "eval_subnets.seed")
    integer(ec.calibration_images, "eval_subnets.calibration_images", 1,
            hint=" (training images that recalibrate batch norm before each subnet is scored)")
    if not ec.get("checkpoint"):
        raise ConfigError("eval_subnets.checkpoint is required: the supernet.pt written by job=train_supernet")
    split = str(ec.split)
    if split not in SPLITS:
        raise ConfigError(f"eval_subnets.split = {split!r} is not allowed; allowed: {choices_text(SPLITS)}")
    checkpoint = Path(ec.checkpoint)
    supernet, meta, dm = load_supernet_with_data(cfg, checkpoint, "eval_subnets.checkpoint")
    space = supernet.space
    calibration_images = dm.check_calibration(ec.calibration_images, "eval_subnets.calibration_images")
    archs = requested_archs(space, n, subnet_seed, bool(ec.include_extremes))
    output = Path(ec.output) if ec.get("output") else checkpoint.parent / f"accuracy_{split}.csv"
    with MeasurementStore(output, COLUMNS, identity(cfg, checkpoint, dm.name, split),
                          option="eval_subnets.output") as store:
        todo = [a for a in archs if space.to_string(a) not in store]
        device = pick_device(str(ec.device))
        supernet.to(device)
        t0 = time.perf_counter()
        if todo:
            calibration = [x.to(device) for x in dm.calibration_batches(calibration_images)]
            loader = dm.split_loader(split)
            for arch in tqdm(todo, desc=f"subnets ({split})", unit="subnet", dynamic_ncols=True):
                acc = evaluate_subnet(supernet, arch, calibration, loader, device)
                store.append({"arch": space.to_string(arch), "accuracy": f"{acc:.4f}"})
        seconds = time.perf_counter() - t0
        by_arch = {row["arch"]: float(row["accuracy"]) for row in store.rows}
        n_rows = len(store)
    acc = np.array([by_arch[space.to_string(a)] for a in archs])
    print(f"{len(todo)} subnets evaluated now ({len(archs) - len(todo)} already in the file), {seconds:.1f} s; "
          f"{split} top-1 {acc.min():.2f} .. {acc.max():.2f} % (mean {acc.mean():.2f}) -> {output}")
    return {"n_requested": len(archs), "n_evaluated": len(todo), "n_rows": n_rows, "seconds": seconds,
            "accuracy_mean": float(acc.mean()), "accuracy_min": float(acc.min()), "accuracy_max": float(acc.max()),
            "accuracy_std": float(acc.std()), "accuracy_p10": float(np.percentile(acc, 10)),
            "accuracy_median": float(np.median(acc))}
