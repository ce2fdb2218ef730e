"""Training one subnet of a supernet's space from scratch: the reference its inherited accuracy is ranked against.

:class:`SubnetTraining` trains exactly the network ``space.build_model(arch)`` (the network a supernet
extracts for ``arch``) from random initialization (the supernet's MobileNet initialization), with the
supernet recipe: SGD nesterov (or AdamW), weight decay on weights only, label smoothing, linear
warm-up then cosine decay to 0, the learning rate a function of the global step (so a resumed run
continues exactly). Each image is resized to the subnet's resolution ``arch.r``, as in supernet training.
"""
from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from hwnas.errors import ConfigError, InvalidArchitecture
from hwnas.supernet.evaluation import MEMORY_FORMAT, resize
from hwnas.supernet.ofa import init_weights, largest_arch, median_arch, smallest_arch, space_from_spec
from hwnas.supernet.schedule import Phase, Schedule
from hwnas.supernet.shrinking import build_optimizer

NAMED_ARCHS = {"smallest": smallest_arch, "median": median_arch, "largest": largest_arch}


def resolve_arch(space, text: str, where: str = "arch"):
    """An architecture of ``space`` from its canonical string or ``smallest`` / ``median`` / ``largest``."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where} = {text!r} must be the space's architecture string or smallest, median, largest")
    if text in NAMED_ARCHS:
        return NAMED_ARCHS[text](space)
    try:
        return space.validate(space.parse(text))
    except InvalidArchitecture as exc:
        raise ConfigError(f"{where}: {exc}") from None


class SubnetTraining(pl.LightningModule):
    """Trains ``space.build_model(arch)`` alone. Hyperparameters are primitives (``weights_only`` checkpoints);
    ``space`` is :func:`hwnas.supernet.ofa.space_spec`, ``arch`` the space's canonical string."""

    def __init__(self, space: dict, arch: str, epochs: int, lr: float, warmup_epochs: float = 0.0,
                 optimizer: str = "sgd", momentum: float = 0.9, nesterov: bool = True, weight_decay: float = 3e-5,
                 label_smoothing: float = 0.1, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        if not 0 <= label_smoothing < 1:
            raise ConfigError(f"label_smoothing = {label_smoothing} must lie in [0, 1)")
        self.space = space_from_spec(space)
        self.arch = resolve_arch(self.space, arch)
        # one phase of the supernet schedule: validates epochs / lr / warm-up and gives the same lr curve
        self.phase = Phase(name="scratch", epochs=int(epochs), lr=float(lr), warmup_epochs=float(warmup_epochs))
        if self.phase.epochs < 1 or not self.phase.lr > 0 or not 0 <= self.phase.warmup_epochs <= self.phase.epochs:
            raise ConfigError(f"epochs = {epochs} must be >= 1, lr = {lr} > 0 and 0 <= warmup_epochs = "
                              f"{warmup_epochs} <= epochs")
        torch.manual_seed(int(seed))
        self.model = init_weights(self.space.build_model(self.arch)).to(memory_format=MEMORY_FORMAT)
        self._schedule: Schedule | None = None
        self._val = [0, 0]

    @property
    def schedule(self) -> Schedule:
        batches = int(self.trainer.num_training_batches)
        if self._schedule is None or self._schedule.steps_per_epoch != batches:
            self._schedule = Schedule([self.phase], batches)
        return self._schedule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(resize(x, self.arch.r))

    def configure_optimizers(self):
        hp = self.hparams
        return build_optimizer(self.model, hp.optimizer, hp.lr, hp.momentum, hp.nesterov, hp.weight_decay)

    def training_step(self, batch, batch_idx):
        x, y = batch
        lr = self.schedule.lr(int(self.global_step))
        for group in self.optimizers().param_groups:
            group["lr"] = lr
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        self.log_dict({"train/loss": loss.detach(), "train/acc": 100.0 * (logits.argmax(1) == y).float().mean(),
                       "train/lr": lr}, on_step=True, on_epoch=False, batch_size=len(y))
        return loss

    def on_validation_epoch_start(self):
        self._val = [0, 0]

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self._val[0] += int((self(x).argmax(1) == y).sum())
        self._val[1] += len(y)

    def on_validation_epoch_end(self):
        if self._val[1]:
            self.log("val/acc", 100.0 * self._val[0] / self._val[1], sync_dist=True)
