"""Latency datasets as tensors: featurized once, split 70/15/15, served in index batches."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from hwnas.errors import ConfigError, choices_text
from hwnas.options import number

ENCODINGS = ("onehot", "layers", "graph")
TRANSFORMS = ("none", "log")


def featurize(space, archs: Sequence, encoding: str, resolutions: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
    """Model inputs of a batch of architectures: ``x`` (one-hot, or the per-layer configuration indicators
    of ``layers`` over the input ``resolutions`` a predictor was fitted at) or ``adj`` + ``ops`` (graph)."""
    if encoding == "onehot":
        return {"x": space.encode(archs)}
    if encoding == "layers":
        if resolutions is None:
            raise ConfigError("estimator.encoding=layers codes the resolutions one device's predictor was fitted at; "
                              "it is for job=train_predictor / evaluate / search, not for transfer across devices "
                              "(allowed there: onehot, graph)")
        return {"x": space.encode_layers(archs, resolutions)}
    if encoding == "graph":
        adj, ops = space.encode_graph(archs)
        return {"adj": adj, "ops": ops}
    raise ConfigError(f"predictor encoding {encoding!r} is not allowed; allowed: {choices_text(ENCODINGS)}")


@dataclass
class TargetTransform:
    """``z = (f(y) - mean) / std`` with ``f`` = identity or log; stored as primitives in checkpoints."""

    kind: str = "log"
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self):
        if self.kind not in TRANSFORMS:
            raise ConfigError(f"target_transform = {self.kind!r} is not allowed; allowed: {choices_text(TRANSFORMS)}")

    def _f(self, y):
        return torch.log(y) if self.kind == "log" else y

    def fit(self, y: torch.Tensor) -> "TargetTransform":
        f = self._f(y.double())
        self.mean, self.std = float(f.mean()), float(f.std()) if len(f) > 1 and float(f.std()) > 0 else 1.0
        return self

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return (self._f(y) - self.mean) / self.std

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        f = z * self.std + self.mean
        return torch.exp(f) if self.kind == "log" else f


class TensorDictDataset(Dataset):
    """Rows of a dict of equally long tensors; indexed by a list of row indices (one batch)."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.tensors = tensors
        self.n = len(next(iter(tensors.values())))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, idx):
        return {k: v[idx] for k, v in self.tensors.items()}


def batches(tensors: dict[str, torch.Tensor], batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    ds = TensorDictDataset(tensors)
    base = RandomSampler(ds, generator=torch.Generator().manual_seed(seed)) if shuffle else SequentialSampler(ds)
    return DataLoader(ds, sampler=BatchSampler(base, batch_size, drop_last=False), batch_size=None)


def split_indices(n: int, fractions: Sequence[float], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint train/val/test index arrays (fractions of ``n``, seeded permutation)."""
    from omegaconf import OmegaConf

    if OmegaConf.is_config(fractions):
        fractions = OmegaConf.to_container(fractions)
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, Sequence) or len(fractions) != 3:
        raise ConfigError(f"train.split = {fractions!r} must be three non-negative fractions summing to 1 "
                          f"(train, validation, test), e.g. [0.7, 0.15, 0.15]")
    fractions = [number(f, f"train.split[{i}]", 0.0, 1.0) for i, f in enumerate(fractions)]
    if abs(sum(fractions) - 1) > 1e-6:
        raise ConfigError(f"train.split = {fractions} must be three non-negative fractions summing to 1")
    order = np.random.default_rng(seed).permutation(n)
    n_train, n_val = int(round(fractions[0] * n)), int(round(fractions[1] * n))
    return order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]


class LatencyDataModule(pl.LightningDataModule):
    """Train/val tensors for one predictor; extra per-row inputs (device features/ids) ride along."""

    def __init__(self, train: dict[str, torch.Tensor], val: dict[str, torch.Tensor] | None, batch_size: int = 256,
                 seed: int = 0):
        super().__init__()
        self.train, self.val, self.batch_size, self.seed = train, val, int(batch_size), seed

    def train_dataloader(self):
        return batches(self.train, self.batch_size, shuffle=True, seed=self.seed)

    def val_dataloader(self):
        return batches(self.val, 4096, shuffle=False) if self.val else []
