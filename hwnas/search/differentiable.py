"""Differentiable hardware-aware search (ProxylessNAS-style) over the OFA MobileNetV3 space.

Cai et al., "ProxylessNAS: Direct Neural Architecture Search on Target Task and Hardware" (ICLR
2019): the network holds every candidate operation of every layer (:mod:`hwnas.search.mixed`),
each forward pass runs one sampled path (binarized gates), and two optimizers alternate: the
weights learn from training batches (paths drawn from the current probabilities), the
architecture logits ``alpha`` from validation batches with Adam, minimizing

    cross-entropy + lambda * E[latency],   E[latency] = fixed_ms + sum_i sum_c softmax(alpha_i)_c * latency_ms[i, c]

(Sec. 3.3, latency made differentiable as an expectation over each layer's candidates). The first
``warmup_epochs`` train the weights only (paths drawn uniformly), so the logits are not steered
by untrained weights. The derived architecture takes each layer's most probable candidate; skipped
blocks lower the stage depth, so it is an :class:`~hwnas.spaces.ofa.OFAArch` of the space.

Per-candidate latency (``latency_source``):

- ``lut``: a lookup table from ``hwnas job=build_lut`` (``latency_path``), keyed by the space's own
  layer keys, so a one-hot expectation is exactly the table's sum for that architecture;
- ``profile``: each distinct layer of the mixed network is timed now on the local ``device`` (the
  table is written to the run dir in the same format, reusable as ``lut``);
- ``estimator``: the ``estimator`` group, linearized around the full-depth largest network: a
  candidate's latency is the estimator's change when only that layer is swapped (``skip``: removed);
  exact for additive estimators (lookup tables, FLOPs), a first-order approximation otherwise.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from hwnas.errors import ConfigError, DataError, choices_text
from hwnas.search.base import SearchStrategy
from hwnas.search.mixed import CANDIDATES, SKIP, MixedNetwork, MixedSpace, derive_arch, mixed_space

LATENCY_SOURCES = ("lut", "profile", "estimator")
#: hyperparameters a search checkpoint must share with this run to be resumed, and the option naming each
RESUME_KEYS = {"space": "search_space", "resolution": "search_strategy.resolution", "candidates": "search_strategy.candidates",
               "latency_lambda": "search_strategy.lambda", "warmup_epochs": "search_strategy.warmup_epochs",
               "epochs": "search_strategy.epochs",
               "op_latency_ms": "latency table (search_strategy.latency_source, latency_path or device)"}
STATISTICS = ("mean", "median")
WEIGHT_OPTIMIZERS = ("sgd", "adam")


# ---------------------------------------------------------------------- per-candidate latency
@dataclass
class OpLatency:
    """``fixed_ms`` (stem, first block, head) + ``ops_ms[layer, candidate]`` (0 for skip or a missing candidate)."""

    fixed_ms: float
    ops_ms: np.ndarray
    source: str
    #: Profiled layers in the OFA table format ``{key: {count, mean, std, median}}`` (source=profile).
    table: dict[str, dict] = field(default_factory=dict)

    def expected(self, probs: np.ndarray) -> float:
        return float(self.fixed_ms + (np.asarray(probs) * self.ops_ms).sum())


def _table_latency(mixed: MixedSpace, lookup: Callable[[object], float], source: str) -> OpLatency:
    ops = np.zeros((len(mixed.layers), mixed.n_candidates))
    for i, spec in enumerate(mixed.layers):
        for c, layer in enumerate(spec.layers):
            ops[i, c] = lookup(layer)
    return OpLatency(float(sum(lookup(layer) for layer in mixed.fixed)), ops, source)


def lut_latency(mixed: MixedSpace, table: dict[str, float], where: str, hint: str = "") -> OpLatency:
    """Per-candidate latency from a lookup table ``{layer key: ms}``."""

    def lookup(layer) -> float:
        try:
            return float(table[layer.key])
        except KeyError:
            raise DataError(f"layer '{layer.key}' of the mixed network is not in the lookup table {where} "
                            f"({len(table)} layers){hint}") from None

    return _table_latency(mixed, lookup, "lut")


def profile_latency(mixed: MixedSpace, device, statistic: str = "median") -> OpLatency:
    """Time every distinct layer of the mixed network on a local ``device`` (one ``measure_module`` each)."""
    layers = {layer.key: layer for layer in mixed.fixed}
    for spec in mixed.layers:
        layers.update((layer.key, layer) for layer in spec.layers)
    entries = {}
    for key, layer in layers.items():
        module = layer.build().to(device.torch_device).eval()
        t = device.measure_module(module, torch.randn((device.batch_size, *layer.input_shape), device=device.torch_device))
        entries[key] = {"count": int(t.repeats * t.number), "mean": float(t.mean_ms), "std": float(t.std_ms),
                        "median": float(t.median_ms)}
    out = _table_latency(mixed, lambda layer: entries[layer.key][statistic], "profile")
    out.table = entries
    return out


def estimator_latency(space, mixed: MixedSpace, estimator) -> OpLatency:
    """Per-candidate latency as the estimator's change when one layer of the reference network is swapped.

    Reference: every layer at its last (largest) candidate, full depth. ``fixed_ms`` is the
    reference's latency and a candidate's latency its difference to the reference, so the one-hot
    sum of a path is the reference plus the sum of its single-layer changes.
    """
    ref = [len(spec.ops) - 1 for spec in mixed.layers]
    archs, where = [derive_arch(space, mixed, ref)], []
    for i, spec in enumerate(mixed.layers):
        for c in range(len(spec.labels)):
            if c != ref[i]:
                choice = list(ref)
                choice[i] = c
                archs.append(derive_arch(space, mixed, choice))
                where.append((i, c))
    pred = estimator.predict(space, archs)
    if not np.isfinite(pred).all():
        raise DataError(f"estimator={estimator.name} returned non-finite latencies for the mixed network's candidates")
    ops = np.zeros((len(mixed.layers), mixed.n_candidates))
    for (i, c), value in zip(where, pred[1:]):
        ops[i, c] = value - pred[0]
    return OpLatency(float(pred[0]), ops, "estimator")


# ---------------------------------------------------------------------- data
class AlternatingData(pl.LightningDataModule):
    """Training batches (augmented) paired with shuffled validation batches for the architecture steps.

    Wraps an :class:`~hwnas.supernet.data.ImageDataModule`; ``val_dataloader`` is its plain val split
    (monitoring the most probable path).
    """

    def __init__(self, images, seed: int = 0):
        super().__init__()
        self.images, self.seed = images, int(seed)

    def setup(self, stage: str | None = None) -> None:
        self.images.setup(stage)

    def train_dataloader(self):
        from pytorch_lightning.utilities import CombinedLoader

        val = self.images.splits["val"]
        arch = DataLoader(val, batch_size=min(self.images.batch_size, len(val)), shuffle=True, drop_last=True,
                          generator=torch.Generator().manual_seed(self.seed + 2))
        return CombinedLoader({"train": self.images.train_dataloader(), "val": arch}, mode="max_size_cycle")

    def val_dataloader(self):
        return self.images.val_dataloader()

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        trainer = getattr(self, "trainer", None)
        if isinstance(batch, dict) and self.images.augment and trainer is not None and trainer.training:
            x, y = batch["train"]
            batch = {**batch, "train": (self.images.augment_batch(x), y)}
        return batch


# ---------------------------------------------------------------------- the LightningModule
class DifferentiableNAS(pl.LightningModule):
    """The mixed network, its two optimizers and the alternating schedule. Hyperparameters are
    primitives (checkpoints load with ``weights_only=True``); ``space`` is
    :func:`hwnas.supernet.ofa.space_spec` of the search space.

    Logged per epoch: training loss/accuracy of the sampled paths, the architecture step's task loss and
    expected latency, the logits' mean entropy, the most probable path's latency and its validation
    accuracy (``val/acc_argmax``; batch norm not recalibrated, so a lower bound with shared candidates).
    """

    def __init__(self, space: dict, resolution: int, fixed_latency_ms: float, op_latency_ms: list,
                 candidates: str = "shared", latency_lambda: float = 0.0, warmup_epochs: int = 5, epochs: int = 7,
                 weight_optimizer: str = "sgd", weight_lr: float = 0.1, weight_momentum: float = 0.9,
                 weight_decay: float = 4e-5,
                 arch_lr: float = 0.03, arch_betas: Sequence[float] = (0.0, 0.999), arch_weight_decay: float = 0.0,
                 label_smoothing: float = 0.0):
        super().__init__()
        from hwnas.supernet.ofa import space_from_spec

        self.save_hyperparameters()
        self.automatic_optimization = False
        self.space = space_from_spec(space)
        self.mixed = mixed_space(self.space, int(resolution))
        self.network = MixedNetwork(self.mixed, candidates)
        lat = torch.tensor(op_latency_ms, dtype=torch.float32)
        if lat.shape != self.network.alpha.shape:
            raise ConfigError(f"op_latency_ms has shape {tuple(lat.shape)}; the mixed network needs "
                              f"{tuple(self.network.alpha.shape)} (layers x candidates)")
        self.register_buffer("op_latency", lat, persistent=False)

    # ------------------------------------------------------------------ latency
    def expected_latency(self) -> torch.Tensor:
        """``fixed + sum softmax(alpha) * latency`` in ms, differentiable in ``alpha``."""
        return self.hparams.fixed_latency_ms + (self.network.probabilities() * self.op_latency).sum()

    def path_latency(self, choice) -> float:
        idx = torch.as_tensor(choice, dtype=torch.long, device=self.op_latency.device)
        return float(self.hparams.fixed_latency_ms + self.op_latency.gather(1, idx[:, None]).sum())

    def entropy(self) -> torch.Tensor:
        p = self.network.probabilities()
        return -(p * torch.log(p.clamp_min(1e-12))).sum(dim=1).mean()

    # ------------------------------------------------------------------ training
    @property
    def searching(self) -> bool:
        return self.current_epoch >= self.hparams.warmup_epochs

    def configure_optimizers(self):
        hp = self.hparams
        weights = self.network.weight_parameters()
        if hp.weight_optimizer == "sgd":
            w_opt = torch.optim.SGD(weights, lr=hp.weight_lr, momentum=hp.weight_momentum, nesterov=hp.weight_momentum > 0,
                                    weight_decay=hp.weight_decay)
        else:
            w_opt = torch.optim.Adam(weights, lr=hp.weight_lr, weight_decay=hp.weight_decay)
        a_opt = torch.optim.Adam([self.network.alpha], lr=hp.arch_lr, betas=tuple(hp.arch_betas),
                                 weight_decay=hp.arch_weight_decay)
        total = max(1, hp.warmup_epochs + hp.epochs)
        schedule = torch.optim.lr_scheduler.LambdaLR(w_opt, lambda e: 0.5 * (1 + math.cos(math.pi * min(e, total) / total)))
        return [w_opt, a_opt], [schedule]

    def training_step(self, batch, batch_idx):
        w_opt, a_opt = self.optimizers()
        x, y = batch["train"]
        # weights: one path from the current probabilities, no gradient to alpha
        w_opt.zero_grad(set_to_none=True)
        logits = self.network(x, self.network.sample())
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        self.manual_backward(loss)
        w_opt.step()
        acc = (logits.argmax(1) == y).float().mean()
        self.log_dict({"train/loss": loss.detach(), "train/acc": 100 * acc}, on_step=False, on_epoch=True,
                      batch_size=len(y))
        if self.searching and batch.get("val") is not None:
            # architecture: a fresh path on a validation batch, gates carry the gradient to alpha
            xv, yv = batch["val"]
            a_opt.zero_grad(set_to_none=True)
            task = F.cross_entropy(self.network(xv, self.network.sample(), gates=True), yv)
            latency = self.expected_latency()
            self.manual_backward(task + self.hparams.latency_lambda * latency)
            a_opt.step()
            w_opt.zero_grad(set_to_none=True)  # the architecture step's weight gradients are not applied
            self.log_dict({"arch/task_loss": task.detach(), "arch/expected_latency_ms": latency.detach()},
                          on_step=False, on_epoch=True, batch_size=len(yv))
        return loss.detach()

    def on_train_epoch_end(self) -> None:
        self.lr_schedulers().step()
        self.log_dict({"arch/entropy": self.entropy().detach(),
                       "arch/argmax_latency_ms": self.path_latency(self.network.argmax())})

    def validation_step(self, batch, batch_idx):
        x, y = batch
        acc = (self.network(x, self.network.argmax()).argmax(1) == y).float().mean()
        self.log("val/acc_argmax", 100 * acc, on_epoch=True, batch_size=len(y))

    # ------------------------------------------------------------------ results
    def derived(self):
        """``(choice, arch, model)``: the most probable path, its architecture and network (trained weights)."""
        choice = self.network.argmax().cpu().tolist()
        arch, model = self.network.export(self.space, choice)
        return choice, arch, model

    def alpha_rows(self) -> tuple[list[str], list[list]]:
        """Long-format table of every layer's candidates: logits, probabilities, latency, chosen."""
        probs = self.network.probabilities().detach().cpu().numpy()
        alpha = self.network.alpha.detach().cpu().numpy()
        chosen = self.network.argmax().cpu().tolist()
        lat = self.op_latency.cpu().numpy()
        rows = []
        for i, spec in enumerate(self.mixed.layers):
            for c, label in enumerate(spec.labels):
                rows.append([i, spec.block, spec.stage, spec.position, label, f"{alpha[i, c]:.6g}", f"{probs[i, c]:.6g}",
                             f"{lat[i, c]:.6g}", int(c == chosen[i])])
        return ["layer", "block", "stage", "position", "candidate", "alpha", "probability", "latency_ms", "chosen"], rows


# ---------------------------------------------------------------------- the strategy (configuration)
def _number(option: str, value, minimum: float = 0.0, open_low: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and \
        (value > minimum if open_low else value >= minimum)
    if not ok:
        raise ConfigError(f"search_strategy={DifferentiableSearch.name}: {option} = {value!r} must be a number "
                          f"{'>' if open_low else '>='} {minimum:g}")
    return float(value)


def _integer(option: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"search_strategy={DifferentiableSearch.name}: {option} = {value!r} must be an integer >= {minimum}")
    return int(value)


def _choice(option: str, value, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ConfigError(f"search_strategy={DifferentiableSearch.name}: {option} = {value!r} is not allowed; "
                          f"allowed: {choices_text(allowed)}")
    return str(value)


@dataclass
class DifferentiableResult:
    choice: list[int]
    arch: object
    model: torch.nn.Module
    expected_latency_ms: float      # softmax-weighted, final logits
    derived_latency_ms: float       # one-hot: the derived path under the same per-candidate latencies
    train_seconds: float
    module: DifferentiableNAS


class DifferentiableSearch(SearchStrategy):
    """ProxylessNAS-style search: trains weights and architecture logits together (``job=differentiable_search``).

    ``lambda`` (ms^-1) weighs the expected latency against cross-entropy. Unlike the population
    strategies it needs image data and training, so ``job=search`` cannot drive it.
    """

    name = "differentiable"
    multi_objective = False

    def __init__(self, epochs: int = 7, warmup_epochs: int = 5, candidates: str = "shared",
                 weight_optimizer: str = "sgd", weight_lr: float = 0.1, weight_momentum: float = 0.9, weight_decay: float = 4e-5,
                 arch_lr: float = 0.03, arch_betas: Sequence[float] = (0.0, 0.999), arch_weight_decay: float = 0.0,
                 label_smoothing: float = 0.0, latency_source: str = "profile", latency_path: str | None = None,
                 latency_statistic: str = "median", resolution: int | None = None, seed: int = 0, **options):
        lam = options.pop("lambda", 0.0)
        if options:
            key = next(iter(options))
            allowed = ["lambda", "epochs", "warmup_epochs", "candidates", "weight_optimizer", "weight_lr", "weight_momentum",
                       "weight_decay", "arch_lr", "arch_betas", "arch_weight_decay", "label_smoothing", "latency_source",
                       "latency_path", "latency_statistic", "resolution", "seed"]
            raise ConfigError(f"search_strategy={self.name} has no option {key!r} (= {options[key]!r}); "
                              f"allowed: {choices_text(allowed)}")
        self.latency_lambda = _number("lambda", lam)
        self.epochs = _integer("epochs", epochs, 1)
        self.warmup_epochs = _integer("warmup_epochs", warmup_epochs, 0)
        self.candidates = _choice("candidates", candidates, CANDIDATES)
        self.weight_optimizer = _choice("weight_optimizer", weight_optimizer, WEIGHT_OPTIMIZERS)
        self.weight_lr = _number("weight_lr", weight_lr, open_low=True)
        self.weight_momentum = _number("weight_momentum", weight_momentum)
        self.weight_decay = _number("weight_decay", weight_decay)
        self.arch_lr = _number("arch_lr", arch_lr, open_low=True)
        betas = list(arch_betas) if isinstance(arch_betas, Sequence) and not isinstance(arch_betas, str) else None
        if betas is None or len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
            raise ConfigError(f"search_strategy={self.name}: arch_betas = {arch_betas!r} must be two numbers in [0, 1)")
        self.arch_betas = tuple(float(b) for b in betas)
        self.arch_weight_decay = _number("arch_weight_decay", arch_weight_decay)
        self.label_smoothing = _number("label_smoothing", label_smoothing)
        if self.label_smoothing >= 1:
            raise ConfigError(f"search_strategy={self.name}: label_smoothing = {label_smoothing} must lie in [0, 1)")
        self.latency_source = _choice("latency_source", latency_source, LATENCY_SOURCES)
        self.latency_statistic = _choice("latency_statistic", latency_statistic, STATISTICS)
        if self.latency_source == "lut" and not latency_path:
            raise ConfigError(f"search_strategy={self.name}: latency_source = lut needs latency_path=<YAML table from "
                              f"`hwnas job=build_lut` with the same search_space settings>")
        self.latency_path = str(latency_path) if latency_path else None
        self.resolution = None if resolution is None else _integer("resolution", resolution, 1)
        from hwnas.options import seed as seed_value

        self.seed = seed_value(seed, "search_strategy.seed")

    def run(self, space, problem):
        raise ConfigError("search_strategy=differentiable trains the network and its architecture together on image "
                          "data; run it with `hwnas job=differentiable_search` (job=search drives population "
                          "strategies: random, evolution, nsga2)")

    # ------------------------------------------------------------------ pieces
    def search_resolution(self, space) -> int:
        r = self.resolution if self.resolution is not None else max(space.resolutions)
        if r not in space.resolutions:
            raise ConfigError(f"search_strategy.resolution = {r} is not a resolution of the space; allowed: "
                              f"{choices_text(space.resolutions)}")
        return r

    def op_latency(self, space, resolution: int, device=None, estimator: Callable[[], object] | None = None,
                   data_dir: str | None = None) -> OpLatency:
        """Per-candidate latencies from the configured source (``device``: a local device for ``profile``;
        ``estimator``: a callable returning a fitted estimator for ``estimator``)."""
        mixed = mixed_space(space, resolution)
        if self.latency_source == "lut":
            from hwnas.estimators.lut import LookupTableEstimator
            from hwnas.spaces.ofa import OFAArch

            lut = LookupTableEstimator(path=self.latency_path, data_dir=data_dir, statistic=self.latency_statistic)
            probe = OFAArch((), (), (), resolution)
            hint = (f" (build it for this space: `hwnas job=build_lut search_space.width_mult={space.width_mult:g} "
                    f"'search_space.resolutions={list(space.resolutions)}'`)")
            return lut_latency(mixed, lut.table_for(probe), f"'{self.latency_path}'", hint)
        if self.latency_source == "profile":
            from hwnas.devices import require_local

            require_local(device, "differentiable_search", "with search_strategy.latency_source=profile times layers "
                          "on this machine")
            return profile_latency(mixed, device, self.latency_statistic)
        if estimator is None:
            raise ConfigError("search_strategy.latency_source = estimator needs an estimator (the `estimator` group)")
        return estimator_latency(space, mixed, estimator())

    def build_module(self, space, resolution: int, latency: OpLatency) -> DifferentiableNAS:
        from hwnas.supernet.ofa import space_spec

        return DifferentiableNAS(
            space=space_spec(space), resolution=int(resolution), fixed_latency_ms=float(latency.fixed_ms),
            op_latency_ms=latency.ops_ms.tolist(), candidates=self.candidates, latency_lambda=self.latency_lambda,
            warmup_epochs=self.warmup_epochs, epochs=self.epochs, weight_optimizer=self.weight_optimizer, weight_lr=self.weight_lr,
            weight_momentum=self.weight_momentum, weight_decay=self.weight_decay, arch_lr=self.arch_lr,
            arch_betas=list(self.arch_betas), arch_weight_decay=self.arch_weight_decay,
            label_smoothing=self.label_smoothing)

    def search(self, space, images, latency: OpLatency, trainer_cfg=None, work_dir: Path | None = None, logger=False,
               progress: bool | None = None) -> DifferentiableResult:
        """Train on ``images`` (an image DataModule at the search resolution); return the derived architecture.

        With ``work_dir`` it checkpoints every epoch and on interrupt, and resumes from there.
        """
        from hwnas.checkpoints import check_same_config, checkpointing
        from hwnas.predictors.estimator import make_trainer, manual_optimization_trainer

        resolution = self.search_resolution(space)
        if images.image_size != resolution:
            raise ConfigError(f"the image data is {images.image_size} px; the search runs at {resolution} px")
        pl.seed_everything(self.seed, workers=True, verbose=False)
        module = self.build_module(space, resolution, latency)
        callbacks, resume = [], None
        if work_dir is not None:
            callbacks, resume = checkpointing(Path(work_dir) / "checkpoints")
            if resume is not None:
                check_same_config(resume, module.hparams, RESUME_KEYS)
                print(f"resuming differentiable search from {resume.path} (step {resume.global_step})")
        for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)
        trainer = make_trainer(manual_optimization_trainer(trainer_cfg), self.warmup_epochs + self.epochs, work_dir,
                               logger, progress, callbacks)
        t0 = time.perf_counter()
        trainer.fit(module, datamodule=AlternatingData(images, self.seed), ckpt_path=resume.ckpt_path if resume else None)
        seconds = time.perf_counter() - t0
        module.eval()
        choice, arch, model = module.derived()
        with torch.no_grad():
            expected = float(module.expected_latency())
        return DifferentiableResult(choice, arch, model, expected, module.path_latency(choice), seconds, module)


__all__ = ["DifferentiableSearch", "DifferentiableNAS", "DifferentiableResult", "OpLatency", "AlternatingData",
           "LATENCY_SOURCES", "SKIP", "lut_latency", "profile_latency", "estimator_latency"]
