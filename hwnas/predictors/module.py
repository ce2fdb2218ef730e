"""The LightningModule that trains every latency predictor, and its portable checkpoint."""
from __future__ import annotations

import os
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from hwnas.errors import ConfigError, DataError
from hwnas.io import atomic_torch_save
from hwnas.metrics import latency_metrics
from hwnas.predictors.data import TargetTransform
from hwnas.predictors.models import build_model

LOSSES = ("mse", "l1", "huber")
FORMAT = "hwnas-predictor/1"


def pairwise_rank_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """RankNet-style logistic loss over all pairs with different targets."""
    dp = pred[:, None] - pred[None, :]
    sign = torch.sign(target[:, None] - target[None, :])
    mask = sign != 0
    if not mask.any():
        return pred.new_zeros(())
    return F.softplus(-sign[mask] * dp[mask]).mean()


class LatencyPredictor(pl.LightningModule):
    """Regresses (transformed, normalized) latency; reports metrics in milliseconds.

    Every hyperparameter is a primitive, so :func:`save_predictor` files load with
    ``torch.load(weights_only=True)``.
    """

    def __init__(self, model: str = "mlp", model_kwargs: dict | None = None, lr: float = 1e-3,
                 weight_decay: float = 0.0, loss: str = "mse", rank_weight: float = 0.0,
                 target_transform: str = "log", target_mean: float = 0.0, target_std: float = 1.0,
                 space: str = "", encoding: str = "onehot", encoding_dim: int = 0, scheduler: str = "cosine"):
        super().__init__()
        if loss not in LOSSES:
            raise ConfigError(f"estimator.loss = {loss!r} is not allowed; allowed: mse, l1, huber")
        if scheduler not in ("cosine", "none"):
            raise ConfigError(f"estimator.scheduler = {scheduler!r} is not allowed; allowed: cosine, none")
        self.save_hyperparameters()
        self.net = build_model(model, **(model_kwargs or {}))
        self.transform = TargetTransform(target_transform, target_mean, target_std)
        self.val_metrics = latency_metrics("val/")

    def forward(self, batch: dict) -> torch.Tensor:
        return self.net(batch)

    def predict_ms(self, batch: dict) -> torch.Tensor:
        return self.transform.inverse(self(batch))

    def _loss(self, batch):
        z, target = self(batch), self.transform.forward(batch["y"])
        if self.hparams.loss == "mse":
            loss = F.mse_loss(z, target)
        elif self.hparams.loss == "l1":
            loss = F.l1_loss(z, target)
        else:
            loss = F.smooth_l1_loss(z, target, beta=0.1)
        if self.hparams.rank_weight:
            loss = loss + self.hparams.rank_weight * pairwise_rank_loss(z, target)
        return loss

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=len(batch["y"]))
        return loss

    def validation_step(self, batch, batch_idx):
        self.val_metrics.update(self.predict_ms(batch).double(), batch["y"].double())

    def on_validation_epoch_end(self):
        self.log_dict(self.val_metrics.compute())
        self.val_metrics.reset()

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        if self.hparams.scheduler == "none" or not self.trainer.max_epochs or self.trainer.max_epochs < 1:
            return opt
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.trainer.max_epochs)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


def save_predictor(module: LatencyPredictor, path: str | os.PathLike) -> Path:
    """Atomically write ``{format, hparams, state_dict}`` (primitives and tensors only)."""
    payload = {"format": FORMAT, "hparams": dict(module.hparams), "state_dict": module.net.state_dict()}
    return atomic_torch_save(payload, path)


def read_checkpoint(path: str | os.PathLike, what: str = "predictor", fmt: str = FORMAT) -> dict:
    """The payload of an hwnas checkpoint (``weights_only`` load), or a one-line DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} checkpoint '{path}' does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise DataError(f"'{path}' is not an hwnas {what} checkpoint ({type(exc).__name__}: {str(exc)[:120]})") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise DataError(f"'{path}' is not an hwnas {what} checkpoint (expected format {fmt})")
    return payload


def load_predictor(path: str | os.PathLike) -> LatencyPredictor:
    payload = read_checkpoint(path)
    module = LatencyPredictor(**payload["hparams"])
    module.net.load_state_dict(payload["state_dict"])
    return module.eval()
