"""Moving latency predictors to a new device: fine-tuning, few-shot multi-device, hardware-generalized.

Latency scales differ by two orders of magnitude between devices (an FPGA cell takes 100x a GPU
cell), so every method here works on log latency standardized per device: the shape of the
latency landscape transfers between devices, its scale does not.

- :func:`fine_tune` re-fits a single-device predictor to a target from N samples (Syed et al.: a
  Note10 MLP, first two layers frozen, N = 700).
- :class:`MultiDevicePredictor` is one network over (architecture, device) pairs. A device enters
  as any mix of a learned ``embedding``, its published hardware ``descriptor``, and ``reference``:
  its standardized latencies on K reference architectures (HELP's hardware embedding). With
  per-device standardization it adapts to a new device from K samples (``few-shot``, NASFLAT /
  HELP setting; the K samples *are* the reference architectures); with one global log scale and the
  descriptor alone it predicts an unseen device without any sample (``hardware-generalized``).
- :func:`select_samples` decides which K architectures are measured on the target.
"""
from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from scipy.stats import spearmanr
from torch import nn

from hwnas.io import atomic_torch_save
from hwnas.errors import ConfigError, DataError, choices_text
from hwnas.estimators.base import LatencyEstimator
from hwnas.predictors.data import LatencyDataModule, TargetTransform, featurize
from hwnas.predictors.estimator import PredictorEstimator
from hwnas.predictors.models import GCNPredictor, MLPPredictor
from hwnas.predictors.module import TRANSFER_FORMAT, LatencyPredictor, predicts, read_checkpoint

SELECTIONS = ("random", "encoding_diverse", "flops_quantile")
REPRESENTATIONS = ("reference", "embedding", "descriptor")
EMBEDDING_INITS = ("nearest", "mean")
FORMAT = TRANSFER_FORMAT


# ----------------------------------------------------------------------------- sample selection
def select_samples(space, archs: Sequence, k: int, strategy: str = "random", seed: int = 0,
                   flops: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` architectures of ``archs`` to measure on the target device.

    - ``random``: uniform without replacement;
    - ``encoding_diverse``: greedy k-center (farthest point) in one-hot encoding space, so the
      samples cover the space's corners instead of its crowded middle;
    - ``flops_quantile``: one random architecture from each of ``k`` equal-count FLOPs strata, so the
      samples span the latency range (latency is roughly monotone in FLOPs on every device), which
      fixes the target's scale and covers fast and slow networks alike.

    Deterministic for a given ``seed``; none of them looks at target latencies.
    """
    if strategy not in SELECTIONS:
        raise ConfigError(f"transfer.selection = {strategy!r} is not allowed; allowed: {choices_text(SELECTIONS)}")
    n, k = len(archs), int(k)
    if not 1 <= k <= n:
        raise ConfigError(f"transfer.samples = {k} must lie in 1..{n} (the candidate architectures)")
    rng = np.random.default_rng(seed)
    if strategy == "random":
        return rng.choice(n, size=k, replace=False)
    if strategy == "encoding_diverse":
        return k_center(space.encode(archs).numpy().astype(np.float64), k, rng)
    values = np.asarray(space.costs(archs)["flops"] if flops is None else flops, dtype=np.float64)
    if len(values) != n:
        raise DataError(f"flops has {len(values)} values for {n} architectures")
    return quantile_strata(values, k, rng)


def k_center(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy farthest-point selection of ``k`` rows of ``x`` (random start, random tie-breaks)."""
    order = rng.permutation(len(x))
    x = x[order]
    sq = np.einsum("ij,ij->i", x, x)
    chosen = np.empty(k, dtype=np.int64)
    chosen[0] = 0
    dist = np.maximum(sq + sq[0] - 2.0 * (x @ x[0]), 0.0)
    taken = np.zeros(len(x), dtype=bool)
    taken[0] = True
    for j in range(1, k):
        i = int(np.argmax(np.where(taken, -1.0, dist)))
        chosen[j], taken[i] = i, True
        dist = np.minimum(dist, np.maximum(sq + sq[i] - 2.0 * (x @ x[i]), 0.0))
    return order[chosen]


def quantile_strata(values: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """One random index from each of ``k`` equal-count strata of ``values`` (ties broken at random)."""
    order = np.lexsort((rng.random(len(values)), values))
    bounds = np.linspace(0, len(values), k + 1).astype(np.int64)
    picks = bounds[:-1] + np.floor(rng.random(k) * (bounds[1:] - bounds[:-1])).astype(np.int64)
    return order[picks]


# ----------------------------------------------------------------------------- fine-tuning
def clone_module(module: LatencyPredictor) -> LatencyPredictor:
    """A fresh, trainer-free copy (same primitive hparams, copied weights)."""
    out = LatencyPredictor(**copy.deepcopy(dict(module.hparams)))
    out.net.load_state_dict(module.net.state_dict())
    return out


def freezable_layers(net: nn.Module) -> list[nn.Module]:
    """The layers counted by ``freeze_layers``, input first: the MLP's Linear layers, the GCN's convs."""
    if isinstance(net, MLPPredictor):
        return [m for m in net.net if isinstance(m, nn.Linear)]
    if isinstance(net, GCNPredictor):
        return list(net.convs)
    raise ConfigError(f"cannot freeze layers of {type(net).__name__}; allowed: MLPPredictor, GCNPredictor")


def freeze_first_layers(net: nn.Module, n: int) -> list[nn.Module]:
    """Freeze the first ``n`` layers (weights and biases); everything else stays trainable."""
    layers = freezable_layers(net)
    n = int(n)
    if not 0 <= n < len(layers):
        raise ConfigError(f"freeze_layers = {n} is not allowed for a network with {len(layers)} freezable layers; "
                          f"allowed: 0..{len(layers) - 1}")
    for p in net.parameters():
        p.requires_grad_(True)
    for layer in layers[:n]:
        for p in layer.parameters():
            p.requires_grad_(False)
    return layers[:n]


def _train(estimator: PredictorEstimator, module: LatencyPredictor, tensors: dict, epochs: int, lr: float,
           batch_size: int, seed: int, work_dir=None) -> float:
    """Train ``module`` in place with the estimator's trainer settings; returns seconds."""
    if int(epochs) < 1:
        raise ConfigError(f"epochs = {epochs} must be >= 1")
    module.hparams.lr = float(lr)
    estimator.module = module
    pl.seed_everything(int(seed), workers=True, verbose=False)
    estimator.train_module(LatencyDataModule(tensors, None, int(batch_size), int(seed)), work_dir, epochs=int(epochs))
    return estimator.train_seconds


def full_batch_steps(module: LatencyPredictor, tensors: dict, steps: int, lr: float, seed: int = 0) -> float:
    """``steps`` AdamW steps on all of ``tensors`` at once (cosine-annealed lr), with the module's own loss.

    For few-shot adaptation (K of 5-100 samples): a Lightning Trainer's fixed per-epoch cost is
    about a hundred times one such step, so these run as a plain loop.
    """
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=float(module.hparams.weight_decay))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    module.train()
    with torch.enable_grad():
        for _ in range(steps):
            loss = module._loss(tensors)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    module.eval()
    return time.perf_counter() - t0


def fine_tune(base: PredictorEstimator, space, archs: Sequence, latency_ms, freeze_layers: int = 2,
              epochs: int = 100, lr: float = 1e-3, batch_size: int | None = None, seed: int = 0,
              work_dir=None) -> PredictorEstimator:
    """A copy of ``base`` adapted to a target device from its measured ``archs``.

    The target transform (log + standardize) is re-fit on the target samples, since the source
    device's scale says nothing about the target's; the first ``freeze_layers`` layers keep the
    source's features, the rest is trained on the N target samples.
    """
    if base.module is None:
        raise ConfigError("fine_tune needs a trained base predictor (fit it or give a checkpoint)")
    base.check_space(space)
    y = torch.as_tensor(np.asarray(latency_ms, dtype=np.float64), dtype=torch.float32)
    if len(y) != len(archs) or len(y) < 2:
        raise DataError(f"fine_tune needs >= 2 target samples with one latency each; got {len(archs)} archs, "
                        f"{len(y)} latencies")
    module = clone_module(base.module)
    transform = TargetTransform(module.hparams.target_transform).fit(y)
    module.transform = transform
    module.hparams.target_mean, module.hparams.target_std = transform.mean, transform.std
    freeze_first_layers(module.net, freeze_layers)
    tuned = copy.copy(base)
    tuned.options = dict(base.options)
    tensors = {**featurize(space, archs, module.hparams.encoding), "y": y}
    _train(tuned, module, tensors, epochs, lr, batch_size or base.batch_size, seed, work_dir)
    return tuned


# ----------------------------------------------------------------------------- multi-device predictor
@dataclass
class DeviceState:
    """What the predictor knows of one device: its embedding slot, scale and representation."""

    name: str
    slot: int = 0
    mean: float = 0.0            # of log latency (per-device standardization)
    std: float = 1.0
    reference: list[float] = field(default_factory=list)   # standardized latencies of the reference archs
    descriptor: list[float] = field(default_factory=list)  # raw HardwareDescriptor.vector()


def log_stats(latency_ms) -> tuple[float, float]:
    f = np.log(np.asarray(latency_ms, dtype=np.float64))
    std = float(f.std(ddof=1)) if len(f) > 1 else 0.0
    return float(f.mean()), std if np.isfinite(std) and std > 0 else 1.0


class MultiDevicePredictor:
    """One latency network over (architecture, device) pairs.

    ``per_device=True`` (few-shot): targets are ``(log y - mean_d) / std_d`` with device statistics
    taken over the K reference architectures, the same K for every device, so a new device measured
    on those K is standardized exactly like the training devices. ``per_device=False``
    (hardware-generalized): one global log standardization, so the device inputs must carry the scale.
    """

    def __init__(self, estimator: PredictorEstimator, representation: Sequence[str] = ("reference", "embedding"),
                 embedding_dim: int = 8, per_device: bool = True):
        representation = list(dict.fromkeys(representation))
        bad = [r for r in representation if r not in REPRESENTATIONS]
        if bad or not representation:
            raise ConfigError(f"transfer.representation = {representation} is not allowed; choose one or more of "
                              f"{choices_text(REPRESENTATIONS)}")
        if not per_device and ("reference" in representation or "embedding" in representation):
            raise ConfigError("a zero-shot (hardware-generalized) predictor knows a new device only by its descriptor; "
                              f"transfer.representation = {representation} is not allowed; allowed: [descriptor]")
        if "embedding" in representation and int(embedding_dim) < 1:
            raise ConfigError(f"transfer.embedding_dim = {embedding_dim} must be >= 1")
        self.estimator = estimator
        self.representation, self.embedding_dim, self.per_device = representation, int(embedding_dim), per_device
        self.module: LatencyPredictor | None = None
        self.sources: list[DeviceState] = []
        self.reference_archs: list[str] = []
        self.descriptor_mean: list[float] = []
        self.descriptor_std: list[float] = []
        self.global_scale = (0.0, 1.0)
        self.train_seconds = 0.0

    # -------------------------------------------------------------- device inputs
    @property
    def uses(self) -> dict[str, bool]:
        return {r: r in self.representation for r in REPRESENTATIONS}

    def device_state(self, name: str, slot: int, reference_ms=None, descriptor=None) -> DeviceState:
        """A device's state from its latencies on the reference archs and its descriptor vector."""
        state = DeviceState(name=name, slot=slot)
        if self.per_device:
            if reference_ms is None or len(reference_ms) < 2:
                raise DataError(f"device {name!r} needs latencies of >= 2 reference architectures for its scale")
            state.mean, state.std = log_stats(reference_ms)
            if self.uses["reference"]:
                if len(reference_ms) != len(self.reference_archs):
                    raise DataError(f"device {name!r} has {len(reference_ms)} reference latencies; the predictor "
                                    f"was trained with {len(self.reference_archs)} reference architectures")
                state.reference = ((np.log(np.asarray(reference_ms, dtype=np.float64)) - state.mean) / state.std).tolist()
        if self.uses["descriptor"]:
            if descriptor is None:
                raise DataError(f"device {name!r} needs a hardware descriptor")
            state.descriptor = np.asarray(descriptor, dtype=np.float64).tolist()
        return state

    def device_dim(self) -> int:
        dim = len(self.reference_archs) if self.uses["reference"] else 0
        return dim + (len(self.descriptor_mean) if self.uses["descriptor"] else 0)

    def _device_vector(self, state: DeviceState) -> np.ndarray:
        parts = []
        if self.uses["reference"]:
            parts.append(np.asarray(state.reference, dtype=np.float64))
        if self.uses["descriptor"]:
            parts.append((np.asarray(state.descriptor) - np.asarray(self.descriptor_mean)) / np.asarray(self.descriptor_std))
        return np.concatenate(parts) if parts else np.zeros(0)

    def features(self, space, archs: Sequence, state: DeviceState) -> dict[str, torch.Tensor]:
        feats = featurize(space, archs, self.estimator.options["encoding"])
        n = len(archs)
        vec = self._device_vector(state)
        if len(vec):
            feats["device_features"] = torch.as_tensor(vec, dtype=torch.float32).expand(n, len(vec)).contiguous()
        if self.uses["embedding"]:
            feats["device_id"] = torch.full((n,), state.slot, dtype=torch.long)
        return feats

    def scale(self, state: DeviceState, latency_ms) -> torch.Tensor:
        f = np.log(np.asarray(latency_ms, dtype=np.float64))
        mean, std = (state.mean, state.std) if self.per_device else self.global_scale
        return torch.as_tensor((f - mean) / std, dtype=torch.float32)

    def unscale(self, state: DeviceState, z: np.ndarray) -> np.ndarray:
        mean, std = (state.mean, state.std) if self.per_device else self.global_scale
        return np.exp(np.asarray(z, dtype=np.float64) * std + mean)

    # -------------------------------------------------------------- training
    def pretrain(self, space, pairs: Mapping[str, tuple[Sequence, np.ndarray]], reference_archs: Sequence = (),
                 reference_ms: Mapping[str, np.ndarray] | None = None, descriptors: Mapping[str, np.ndarray] | None = None,
                 epochs: int = 30, lr: float = 1e-3, batch_size: int = 256, seed: int = 0,
                 work_dir=None) -> "MultiDevicePredictor":
        """Train on every (arch, latency) pair of every source device in ``pairs``."""
        if not pairs:
            raise ConfigError("pretraining needs at least one source device")
        self.reference_archs = [space.to_string(a) for a in reference_archs]
        if self.per_device and len(self.reference_archs) < 2:
            raise ConfigError(f"few-shot transfer needs >= 2 reference architectures (transfer.samples), "
                              f"got {len(self.reference_archs)}")
        names = list(pairs)
        if self.uses["descriptor"]:
            vectors = np.stack([np.asarray(descriptors[d], dtype=np.float64) for d in names])
            std = vectors.std(axis=0)
            self.descriptor_mean, self.descriptor_std = vectors.mean(axis=0).tolist(), np.where(std > 0, std, 1.0).tolist()
        if not self.per_device:
            self.global_scale = log_stats(np.concatenate([np.asarray(pairs[d][1]) for d in names]))
        self.sources = [self.device_state(d, i, (reference_ms or {}).get(d), (descriptors or {}).get(d))
                        for i, d in enumerate(names)]
        parts = []
        for state in self.sources:
            archs, lat = pairs[state.name]
            parts.append({**self.features(space, archs, state), "y": self.scale(state, lat)})
        tensors = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        # one spare embedding row: the slot a new device learns during adaptation; the seed governs the initial
        # weights too (seeded only inside _train, they came from whatever state the process's RNG was in)
        pl.seed_everything(int(seed), workers=True, verbose=False)
        module = self.estimator.new_module(space, tensors, tensors["y"], device_dim=self.device_dim(),
                                           num_devices=len(names) + 1 if self.uses["embedding"] else 0,
                                           embedding_dim=self.embedding_dim if self.uses["embedding"] else 0)
        # the network regresses the already standardized target directly; scales live in the device states
        module.transform = TargetTransform("none", 0.0, 1.0)
        module.hparams.target_transform, module.hparams.target_mean, module.hparams.target_std = "none", 0.0, 1.0
        self.train_seconds = _train(self.estimator, module, tensors, epochs, lr, batch_size, seed, work_dir)
        self.module = module.eval()
        return self

    def adapt(self, space, name: str, archs: Sequence, latency_ms, descriptor=None, steps: int = 100,
              lr: float = 1e-4, freeze_layers: int = 0, embedding_init: str = "nearest",
              seed: int = 0) -> "TransferredPredictor":
        """A predictor for device ``name`` from its K measured ``archs`` (the reference archs, in order).

        Fine-tunes a copy of the pretrained network on the K samples (``steps=0``: no gradient step,
        the device representation alone adapts). The new device's embedding starts from the most
        similar source device (``nearest``, by rank correlation on the K samples) or the mean.
        """
        if self.module is None:
            raise ConfigError("adapt needs a pretrained multi-device predictor")
        if not self.per_device:
            raise ConfigError("a hardware-generalized predictor is zero-shot; use for_device() instead of adapt()")
        if embedding_init not in EMBEDDING_INITS:
            raise ConfigError(f"transfer.adapt.embedding_init = {embedding_init!r} is not allowed; "
                              f"allowed: {choices_text(EMBEDDING_INITS)}")
        if int(steps) < 0:
            raise ConfigError(f"transfer.adapt.steps = {steps} must be >= 0")
        keys = [space.to_string(a) for a in archs]
        if self.uses["reference"] and keys != self.reference_archs:
            raise DataError(f"device {name!r}: the adaptation samples must be the {len(self.reference_archs)} reference "
                            f"architectures the predictor was trained with, in the same order")
        lat = np.asarray(latency_ms, dtype=np.float64)
        state = self.device_state(name, len(self.sources), lat, descriptor)  # the spare embedding slot
        module = clone_module(self.module)
        if self.uses["embedding"]:
            weight = module.net.device_inputs.embedding.weight
            with torch.no_grad():
                if embedding_init == "nearest":
                    weight[state.slot] = weight[self._nearest_source(space, archs, state, lat).slot]
                else:
                    weight[state.slot] = weight[: len(self.sources)].mean(dim=0)
        seconds = 0.0
        if int(steps) > 0:
            freeze_first_layers(module.net, freeze_layers)
            tensors = {**self.features(space, archs, state), "y": self.scale(state, lat)}
            seconds = full_batch_steps(module, tensors, int(steps), float(lr), int(seed))
        return TransferredPredictor(self, module.eval(), state, train_seconds=seconds)

    def _nearest_source(self, space, archs, state: DeviceState, latency_ms) -> DeviceState:
        """The source device that ranks the K samples most like the target (NASFLAT's embedding init).

        With reference vectors the sources' measured latencies are compared; without, the
        predictor's latencies for each source device.
        """
        if self.sources[0].reference:
            rho = [spearmanr(s.reference, latency_ms).statistic for s in self.sources]
        else:
            rho = [spearmanr(self._predict_z(self.module, space, archs, s), latency_ms).statistic for s in self.sources]
        rho = np.nan_to_num(np.asarray(rho, dtype=np.float64), nan=-2.0)
        return self.sources[int(np.argmax(rho))]

    def for_device(self, name: str, descriptor) -> "TransferredPredictor":
        """Zero-shot predictor for an unseen device (hardware-generalized: descriptor only)."""
        if self.per_device:
            raise ConfigError("a few-shot predictor needs the new device's samples: use adapt()")
        return TransferredPredictor(self, self.module, self.device_state(name, 0, None, descriptor))

    @torch.inference_mode()
    def _predict_z(self, module, space, archs, state, batch: int = 65536) -> np.ndarray:
        out = [module(self.features(space, archs[i:i + batch], state)).double().numpy()
               for i in range(0, len(archs), batch)]
        return np.concatenate(out) if out else np.zeros(0)

    # -------------------------------------------------------------- persistence
    def meta(self) -> dict:
        return {"representation": list(self.representation), "embedding_dim": self.embedding_dim,
                "per_device": self.per_device, "sources": [asdict(s) for s in self.sources],
                "reference_archs": list(self.reference_archs), "descriptor_mean": list(self.descriptor_mean),
                "descriptor_std": list(self.descriptor_std), "global_scale": list(self.global_scale),
                "train_seconds": self.train_seconds}

    def save(self, path, fingerprint: Mapping | None = None) -> Path:
        """Atomically write network + device states (primitives only: loads with ``weights_only=True``)."""
        if self.module is None:
            raise ConfigError("nothing to save: the multi-device predictor has not been trained")
        payload = {"format": FORMAT, "predicts": predicts(self.module),
                   "hparams": copy.deepcopy(dict(self.module.hparams)),
                   "state_dict": self.module.net.state_dict(), "meta": self.meta(),
                   "fingerprint": json.dumps(fingerprint or {}, sort_keys=True, default=str)}
        return atomic_torch_save(payload, path)

    @staticmethod
    def read(path, setting: str | None = None) -> dict:
        """A multi-device predictor file's payload; a predictor, supernet or other file is refused by name."""
        return read_checkpoint(path, "transfer", setting)

    @classmethod
    def load(cls, path, estimator: PredictorEstimator) -> "MultiDevicePredictor":
        payload = cls.read(path)
        meta = payload["meta"]
        self = cls(estimator, meta["representation"], meta["embedding_dim"], meta["per_device"])
        self.module = LatencyPredictor(**payload["hparams"])
        self.module.net.load_state_dict(payload["state_dict"])
        self.module.eval()
        self.sources = [DeviceState(**s) for s in meta["sources"]]
        self.reference_archs = list(meta["reference_archs"])
        self.descriptor_mean, self.descriptor_std = list(meta["descriptor_mean"]), list(meta["descriptor_std"])
        self.global_scale = tuple(meta["global_scale"])
        self.train_seconds = float(meta.get("train_seconds", 0.0))
        return self


def fingerprint_key(fingerprint: Mapping) -> str:
    """Short stable hash of a pretraining configuration (names cache and checkpoint folders)."""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:12]


def cached_pretrain(path, fingerprint: Mapping, build, estimator: PredictorEstimator) -> tuple[MultiDevicePredictor, bool]:
    """Load the predictor pretrained under ``fingerprint`` from ``path``, or ``build()`` and save it.

    Returns ``(predictor, reused)``. A file from another configuration is retrained and replaced.
    """
    path = Path(path)
    want = json.dumps(dict(fingerprint), sort_keys=True, default=str)
    if path.is_file():
        try:
            if MultiDevicePredictor.read(path).get("fingerprint") == want:
                return MultiDevicePredictor.load(path, estimator), True
        except DataError:
            pass
    model = build()
    model.save(path, fingerprint)
    return model, False


class TransferredPredictor(LatencyEstimator):
    """A multi-device predictor bound to one (new) device: an ordinary latency estimator."""

    name = "transferred"

    def __init__(self, parent: MultiDevicePredictor, module: LatencyPredictor, state: DeviceState,
                 train_seconds: float = 0.0):
        super().__init__()
        self.parent, self.module, self.state, self.train_seconds = parent, module, state, train_seconds
        self.fitted = True

    def _predict(self, space, archs) -> np.ndarray:
        return self.parent.unscale(self.state, self.parent._predict_z(self.module, space, list(archs), self.state))
