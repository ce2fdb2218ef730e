"""Progressive shrinking (Once-for-All) as a LightningModule; the naive and CompOFA schedules are configs of it.

Each optimizer step samples ``subnets`` architectures from the current phase (through the space's
genes, so CompOFA's coupling holds), runs the batch through each at its own resolution and sums
their gradients before one step (OFA's ``dynamic_batch_size``). With distillation the loss adds
``kd.weight * T^2 * KL(teacher || student)`` at temperature ``T``; the teacher is either a frozen
snapshot of the full network taken when the first distilling phase starts (OFA: the network trained
in the full phase) or, ``inplace``, the current largest subnet trained in the same step.

The phase, learning rate and sampled subnets are functions of the global step alone (subnets are
drawn from ``default_rng([seed, step])``), so a run resumed from a checkpoint, even mid-epoch,
continues exactly where it stopped; once-per-phase actions (channel sorting, teacher snapshot,
optimizer-state reset) are recorded in a buffer and never repeated.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from hwnas.errors import ConfigError, choices_text
from hwnas.supernet.evaluation import MEMORY_FORMAT, recalibrate_bn, resize
from hwnas.supernet.ofa import OFASupernet, largest_arch, space_from_spec
from hwnas.supernet.schedule import PhaseSampler, Schedule, parse_phases

OPTIMIZERS = ("sgd", "adamw")
TEACHERS = ("snapshot", "inplace")


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al.'s soft-target loss: ``T^2 * KL(softmax(t/T) || softmax(s/T))``, batch mean."""
    t = temperature
    return F.kl_div(F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1), reduction="batchmean",
                    log_target=True) * (t * t)


def build_optimizer(model: torch.nn.Module, name: str, lr: float, momentum: float, nesterov: bool,
                    weight_decay: float) -> torch.optim.Optimizer:
    """SGD (nesterov) or AdamW with weight decay on weights only: none on BN/bias (as OFA) nor on elastic kernel
    transforms (decay would pull them away from identity)."""
    if name not in OPTIMIZERS:
        raise ConfigError(f"supernet.optimizer.name = {name!r} is not allowed; allowed: {choices_text(OPTIMIZERS)}")
    decay, no_decay = [], []
    for pname, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or ".transforms." in pname else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0)
    return torch.optim.AdamW(groups, lr=lr)


class ProgressiveShrinking(pl.LightningModule):
    """Trains an :class:`OFASupernet` phase by phase. Every hyperparameter is a primitive (checkpoints load
    with ``weights_only=True``); ``space`` is :func:`hwnas.supernet.ofa.space_spec` of the search space."""

    def __init__(self, space: dict, phases: Sequence[dict], schedule: str = "progressive", kd_weight: float = 1.0,
                 kd_temperature: float = 1.0, kd_teacher: str = "snapshot", optimizer: str = "sgd",
                 momentum: float = 0.9, nesterov: bool = True, weight_decay: float = 3e-5,
                 label_smoothing: float = 0.1, seed: int = 0, calibration_images: int = 500):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"supernet.optimizer.name = {optimizer!r} is not allowed; allowed: {choices_text(OPTIMIZERS)}")
        if kd_teacher not in TEACHERS:
            raise ConfigError(f"supernet.kd.teacher = {kd_teacher!r} is not allowed; allowed: {choices_text(TEACHERS)}")
        if not kd_weight >= 0 or not kd_temperature > 0:
            raise ConfigError(f"supernet.kd.weight = {kd_weight} must be >= 0 and supernet.kd.temperature = "
                              f"{kd_temperature} > 0")
        if not 0 <= label_smoothing < 1:
            raise ConfigError(f"supernet.label_smoothing = {label_smoothing} must lie in [0, 1)")
        self.space = space_from_spec(space)
        self.phases = parse_phases(list(phases), self.space)
        self.samplers = [PhaseSampler(self.space, p) for p in self.phases]
        self.supernet = OFASupernet(self.space).to(memory_format=MEMORY_FORMAT)
        self.distills = kd_weight > 0
        self.teacher = None
        if self.distills and kd_teacher == "snapshot":
            first = next(i for i, p in enumerate(self.phases) if p.epochs > 0)
            if self.phases[first].distill:
                raise ConfigError(
                    f"supernet.kd.teacher = snapshot distills from the network trained before the first distilling "
                    f"phase, but phase '{self.phases[first].name}' distills from the start; set its distill: false "
                    f"(OFA trains the full network first), or use supernet.kd.teacher=inplace or supernet.kd.weight=0")
            self.teacher = self.space.build_model(largest_arch(self.space)).requires_grad_(False)
            self.teacher.to(memory_format=MEMORY_FORMAT)
        # once-per-phase actions already done (persisted, so a resumed run does not repeat them)
        self.register_buffer("phase_started", torch.tensor(-1, dtype=torch.int64))
        self.register_buffer("teacher_ready", torch.tensor(False))
        self._schedule: Schedule | None = None
        self._val: dict[str, Any] = {}

    # ------------------------------------------------------------------ schedule
    @property
    def schedule(self) -> Schedule:
        """Phases on the step axis; steps per epoch come from the trainer's training loader."""
        batches = self.trainer.num_training_batches
        if not np.isfinite(batches) or batches < 1:
            raise ConfigError("supernet training needs a sized, non-empty training loader")
        if self._schedule is None or self._schedule.steps_per_epoch != int(batches):
            self._schedule = Schedule(self.phases, int(batches))
        return self._schedule

    def position(self):
        return self.schedule.position(self.global_step)

    # ------------------------------------------------------------------ training
    def configure_optimizers(self):
        hp = self.hparams
        return build_optimizer(self.supernet, hp.optimizer, self.phases[0].lr, hp.momentum, hp.nesterov, hp.weight_decay)

    def on_train_batch_start(self, batch, batch_idx):
        schedule = self.schedule
        if self.global_step >= schedule.total_steps:
            self.trainer.should_stop = True
            return -1  # schedule finished: end the epoch without a step
        pos = schedule.position(self.global_step)
        if pos.phase != int(self.phase_started):
            self.start_phase(pos.phase)
        if not self.supernet.training:  # Lightning keeps modules in the mode it finds them
            self.supernet.train()
        return None

    def start_phase(self, index: int) -> None:
        """Once per phase: sort channels, snapshot the teacher, fresh optimizer state (OFA runs phases as separate jobs)."""
        phase = self.phases[index]
        if phase.sort_channels:
            self.supernet.reorganize_channels()
        if self.teacher is not None and phase.distill and not bool(self.teacher_ready):
            self.teacher.load_state_dict(self.supernet.extract_subnet(largest_arch(self.space)).state_dict())
            self.teacher_ready.fill_(True)
        if self._trainer is not None:
            self.optimizers(use_pl_optimizer=False).state.clear()
        self.phase_started.fill_(index)

    def _logits(self, arch, x):
        self.supernet.set_active_subnet(arch)
        return self.supernet(resize(x, arch.r))

    @torch.no_grad()
    def _teacher_logits(self, x, resolution: int):
        self.teacher.eval()
        return self.teacher(resize(x, resolution))

    def training_step(self, batch, batch_idx):
        hp = self.hparams
        x, y = batch
        schedule, step = self.schedule, int(self.global_step)
        pos = schedule.position(step)
        phase, sampler = self.phases[pos.phase], self.samplers[pos.phase]
        opt = self.optimizers()
        lr = schedule.lr(step)
        for group in opt.param_groups:
            group["lr"] = lr
        archs = sampler.sample(phase.subnets, np.random.default_rng([int(hp.seed), step]))
        distill = self.distills and phase.distill
        opt.zero_grad()
        losses, correct, soft = [], 0, {}
        if distill and hp.kd_teacher == "inplace":
            top = sampler.largest()
            logits = self._logits(top, x)
            loss = F.cross_entropy(logits, y, label_smoothing=hp.label_smoothing)
            self.manual_backward(loss)
            losses.append(loss.detach())
            soft = {"inplace": logits.detach()}
        for arch in archs:
            logits = self._logits(arch, x)
            loss = F.cross_entropy(logits, y, label_smoothing=hp.label_smoothing)
            if distill:
                if hp.kd_teacher == "inplace":
                    target = soft["inplace"]
                else:
                    if arch.r not in soft:
                        soft[arch.r] = self._teacher_logits(x, arch.r)
                    target = soft[arch.r]
                loss = loss + hp.kd_weight * distillation_loss(logits, target, hp.kd_temperature)
            self.manual_backward(loss)
            losses.append(loss.detach())
            correct += int((logits.argmax(1) == y).sum())
        opt.step()
        n = len(y)
        self.log_dict({"train/loss": torch.stack(losses).mean(), "train/acc": 100.0 * correct / (n * len(archs)),
                       "train/lr": lr, "train/phase": float(pos.phase), "train/step": float(step)},
                      on_step=True, on_epoch=False,
                      batch_size=n, prog_bar=False)
        return torch.stack(losses).mean()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self._trainer is None or not np.isfinite(self.trainer.num_training_batches):
            return  # e.g. an interrupt checkpoint before the loader exists: do not hide the error behind it
        pos = self.position()
        checkpoint["supernet_position"] = {"global_step": int(self.global_step), "phase": pos.phase,
                                           "phase_name": self.phases[pos.phase].name, "phase_step": pos.step,
                                           "done": pos.done}

    # ------------------------------------------------------------------ validation
    def on_validation_epoch_start(self):
        """Extract the current phase's largest and smallest subnets and recalibrate their BN on training images."""
        dm = self.trainer.datamodule
        try:  # the phase just trained (validation runs after the epoch's last step)
            sampler = self.samplers[self.schedule.position(max(0, int(self.global_step) - 1)).phase]
        except ConfigError:
            sampler = self.samplers[0]
        calibration = dm.calibration_batches(self.hparams.calibration_images)
        self._val = {}
        for name, arch in (("largest", sampler.largest()), ("smallest", sampler.smallest())):
            model = self.supernet.extract_subnet(arch).to(device=self.device, memory_format=MEMORY_FORMAT)
            recalibrate_bn(model, calibration, arch.r, self.device)
            self._val[name] = [model, arch.r, 0, 0]

    def validation_step(self, batch, batch_idx):
        x, y = batch
        for entry in self._val.values():
            model, r = entry[0], entry[1]
            entry[2] += int((model(resize(x, r)).argmax(1) == y).sum())
            entry[3] += len(y)

    def on_validation_epoch_end(self):
        for name, (_, _, correct, total) in self._val.items():
            if total:
                self.log(f"val/acc_{name}", 100.0 * correct / total, sync_dist=True)
        self._val = {}
