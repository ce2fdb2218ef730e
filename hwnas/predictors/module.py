"""The LightningModule that trains every latency (and accuracy) predictor, and its portable checkpoint.

A checkpoint records what it predicts (``predicts``: target, unit, search space), and every loader
of an hwnas checkpoint goes through :func:`read_checkpoint`, which names the file, what it holds and
what the role needs when they differ: an accuracy predictor is never read as a latency model, nor a
supernet as a predictor, nor a latency predictor as OFA's accuracy predictor.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import ConfigError, DataError
from hwnas.io import atomic_torch_save
from hwnas.metrics import in_percent, latency_metrics
from hwnas.options import warn
from hwnas.predictors.data import TargetTransform
from hwnas.predictors.models import build_model

LOSSES = ("mse", "l1", "huber")
FORMAT = "hwnas-predictor/1"
#: What a predictor can be trained to predict, and the unit of its output.
TARGETS = {"latency": "ms", "accuracy": "percent"}
#: Formats of the other hwnas checkpoints (hwnas.predictors.transfer, hwnas.supernet.ofa own them; named here
#: so that a file of one kind given where another is expected is recognised).
TRANSFER_FORMAT = "hwnas-transfer/1"
SUPERNET_FORMAT = "hwnas-supernet/1"


def pairwise_rank_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """RankNet-style logistic loss over all pairs with different targets."""
    dp = pred[:, None] - pred[None, :]
    sign = torch.sign(target[:, None] - target[None, :])
    mask = sign != 0
    if not mask.any():
        return pred.new_zeros(())
    return F.softplus(-sign[mask] * dp[mask]).mean()


def _point(out: torch.Tensor) -> torch.Tensor:
    """The point column of a network's output (the first, beside any quantile heads)."""
    return out[:, 0] if out.dim() == 2 else out


class LatencyPredictor(pl.LightningModule):
    """Regresses (transformed, normalized) latency; reports metrics in milliseconds.

    Every hyperparameter is a primitive, so :func:`save_predictor` files load with
    ``torch.load(weights_only=True)``.
    """

    def __init__(self, model: str = "mlp", model_kwargs: dict | None = None, lr: float = 1e-3,
                 weight_decay: float = 0.0, loss: str = "mse", rank_weight: float = 0.0,
                 target_transform: str = "log", target_mean: float = 0.0, target_std: float = 1.0,
                 space: str = "", encoding: str = "onehot", encoding_dim: int = 0, scheduler: str = "cosine",
                 target: str = "latency", resolutions: tuple = (), interval: float = 0.0,
                 interval_offset: float = 0.0, interval_method: str = "quantile", interval_prior: dict | None = None,
                 interval_scale: float = 0.0, interval_cv: dict | None = None):
        # resolutions: the input sizes of the training set, which encoding=layers codes (one column each).
        # interval: the central coverage (e.g. 0.9) of the error bars (0: none); interval_method: quantile (two
        # quantile heads beside the point output) or flops_gap (hwnas.predictors.intervals: interval_prior is its
        # FLOPs fit, interval_scale its beta); interval_offset: the conformal widening measured on held-out
        # samples (PredictorEstimator.calibrate_interval); interval_cv (cv_plus): {"folds": K, "fold_of": [...],
        # "residuals": [...]} of the training samples, whose K fold networks are ``cv_nets``
        super().__init__()
        if not 0.0 <= float(interval) < 1.0:
            raise ConfigError(f"estimator.interval = {interval!r} is not allowed; allowed: a coverage in (0, 1), "
                              f"e.g. 0.9, or null (no error bars)")
        if target not in TARGETS:
            raise ConfigError(f"predictor target = {target!r} is not allowed; allowed: {', '.join(TARGETS)}")
        if loss not in LOSSES:
            raise ConfigError(f"estimator.loss = {loss!r} is not allowed; allowed: mse, l1, huber")
        if scheduler not in ("cosine", "none"):
            raise ConfigError(f"estimator.scheduler = {scheduler!r} is not allowed; allowed: cosine, none")
        self.save_hyperparameters()
        self.net = build_model(model, **(model_kwargs or {}))
        # cv_plus: the networks trained without one fold each (filled by PredictorEstimator.fit or a checkpoint)
        self.cv_nets = nn.ModuleList(build_model(model, **(model_kwargs or {}))
                                     for _ in range(int((interval_cv or {}).get("folds", 0))))
        self.transform = TargetTransform(target_transform, target_mean, target_std)
        self.val_metrics = latency_metrics("val/")

    def forward(self, batch: dict) -> torch.Tensor:
        """The point prediction (transformed units)."""
        return _point(self.net(batch))

    def cv_bounds(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``interval_method=cv_plus``: the CV+ interval (transformed units) from the fold networks."""
        cv = self.hparams.get("interval_cv") or {}
        if not len(self.cv_nets) or not cv:
            raise ConfigError("this predictor has no cv_plus fold networks: train it with estimator.interval=0.9 "
                              "estimator.interval_method=cv_plus")
        from hwnas.predictors.intervals import cv_plus_bounds

        z = torch.stack([_point(net(batch)) for net in self.cv_nets])
        return cv_plus_bounds(z, cv["fold_of"], cv["residuals"], float(self.hparams.interval))

    @property
    def has_quantile_heads(self) -> bool:
        return bool(self.hparams.get("interval")) and self.hparams.get("interval_method", "quantile") == "quantile"

    def bounds(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``interval`` (transformed units): the quantile heads, widened by ``interval_offset``, around the point."""
        if not self.has_quantile_heads:
            raise ConfigError("this predictor has no quantile heads: train it with estimator.interval=0.9 (model=mlp)")
        out = self.net(batch)
        q = float(self.hparams.get("interval_offset", 0.0))
        # exactly the conformal set {y: max(lo - y, y - hi) <= q} of calibrate_interval's score (its coverage
        # guarantee holds for this form; with q < 0, heads that were too wide, it may exclude the point)
        lo = torch.minimum(out[:, 1], out[:, 0]) - q
        hi = torch.maximum(out[:, 2], out[:, 0]) + q
        return lo, hi

    def predict_ms(self, batch: dict) -> torch.Tensor:
        return self.transform.inverse(self(batch))

    def _loss(self, batch):
        out, target = self.net(batch), self.transform.forward(batch["y"])
        z = out[:, 0] if out.dim() == 2 else out
        if self.hparams.loss == "mse":
            loss = F.mse_loss(z, target)
        elif self.hparams.loss == "l1":
            loss = F.l1_loss(z, target)
        else:
            loss = F.smooth_l1_loss(z, target, beta=0.1)
        if self.hparams.rank_weight:
            loss = loss + self.hparams.rank_weight * pairwise_rank_loss(z, target)
        if self.has_quantile_heads:  # pinball loss of the two quantile heads
            c = float(self.hparams.interval)
            for head, tau in ((1, (1 - c) / 2), (2, (1 + c) / 2)):
                err = target - out[:, head]
                loss = loss + torch.maximum(tau * err, (tau - 1) * err).mean()
        return loss

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=len(batch["y"]))
        return loss

    def validation_step(self, batch, batch_idx):
        self.val_metrics.update(self.predict_ms(batch).double(), batch["y"].double())

    def on_validation_epoch_end(self):
        self.log_dict(in_percent(self.val_metrics.compute(), "val/"))  # the units of the final val/ metrics
        self.val_metrics.reset()

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        if self.hparams.scheduler == "none" or not self.trainer.max_epochs or self.trainer.max_epochs < 1:
            return opt
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.trainer.max_epochs)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


def set_target(module: LatencyPredictor, target: str) -> LatencyPredictor:
    """Record that ``module`` predicts ``target`` (a key of :data:`TARGETS`); saved with it."""
    if target not in TARGETS:
        raise ConfigError(f"predictor target = {target!r} is not allowed; allowed: {', '.join(TARGETS)}")
    module.hparams.target = target
    return module


def predicts(module: LatencyPredictor) -> dict:
    """The record a checkpoint carries of what its network predicts: target, unit, search space."""
    target = module.hparams.get("target", "latency")
    return {"target": target, "unit": TARGETS[target], "space": module.hparams.get("space", "")}


def save_predictor(module: LatencyPredictor, path: str | os.PathLike) -> Path:
    """Atomically write ``{format, predicts, hparams, state_dict}`` (primitives and tensors only)."""
    payload = {"format": FORMAT, "predicts": predicts(module), "hparams": dict(module.hparams),
               "state_dict": module.net.state_dict()}
    if len(module.cv_nets):
        payload["cv_state_dicts"] = [net.state_dict() for net in module.cv_nets]
    return atomic_torch_save(payload, path)


# ----------------------------------------------------------------------------- what a file is, what a role needs
@dataclass(frozen=True)
class Role:
    """A place that reads a checkpoint: what it needs, where such a file comes from, the option naming it."""

    noun: str       # "... is not <noun>"
    needs: str
    source: str
    setting: str


ROLES = {
    "latency": Role("an hwnas predictor checkpoint", "a latency predictor (ms)",
                    "e.g. the predictor.pt of job=train_predictor", "estimator.checkpoint"),
    "accuracy": Role("an hwnas predictor checkpoint", "an accuracy predictor (percent)", "e.g. the "
                     "accuracy_predictor.pt that accuracy=predictor accuracy.fit_data=<CSV> writes in its run dir",
                     "accuracy.checkpoint"),
    "ofa_accuracy": Role("a state dict of OFA's accuracy predictor", "OFA's published accuracy predictor",
                         "ofa/acc_predictor.pth of the data root (a state dict of Linear 128-400-400-400-1)",
                         "accuracy.path"),
    "supernet": Role("an hwnas supernet checkpoint", "an OFA supernet", "the supernet.pt of job=train_supernet",
                     "the supernet checkpoint"),
    "transfer": Role("an hwnas transfer checkpoint", "a multi-device latency predictor",
                     "the pretrained.pt of job=transfer",
                     "the pretrained predictor"),
}
#: Where a file of each kind belongs (``{}``: its path).
USES = {"latency": "this file belongs in estimator=predictor estimator.checkpoint={}",
        "accuracy": "this file belongs in accuracy=predictor accuracy.checkpoint={}",
        "ofa_accuracy": "this file belongs in accuracy=ofa_predictor accuracy.path={}",
        "supernet": "this file belongs in job=eval_subnets eval_subnets.checkpoint={}",
        "transfer": "this file is job=transfer's pretraining cache, adapted to each target device there",
        "lightning": "the job's finished model is the .pt file it wrote in its run dir (predictor.pt, supernet.pt)"}
_UNRECORDED = "an earlier hwnas wrote it without a target record"
_OFA_KEYS = {f"{i}.{p}" for i in (0, 2, 4, 6) for p in ("weight", "bias")}
_LN_100 = math.log(100.0)


@dataclass(frozen=True)
class Identity:
    """What a loaded checkpoint holds: ``kind`` (a key of ROLES, ``lightning`` or ``unknown``) and in words;
    ``judged``: for an hwnas predictor that records no target, how its target was told from its contents."""

    kind: str
    description: str
    judged: str = ""
    certain: bool = True


def judge_target(payload: dict) -> tuple[str, str, bool]:
    """``(target, how, certain)`` of an ``hwnas-predictor/1`` payload; see :func:`load_predictor` for the rule."""
    record = payload.get("predicts")
    hp = payload.get("hparams") if isinstance(payload.get("hparams"), dict) else {}
    for where in (record, hp):
        if isinstance(where, dict) and where.get("target") in TARGETS:
            return where["target"], "", True
    transform, mean = hp.get("target_transform", "log"), hp.get("target_mean", 0.0)
    mean = float(mean) if isinstance(mean, (int, float)) else 0.0
    seen = f"target_transform={transform}, target mean {mean:.4g}"
    if (transform == "log" and mean > _LN_100) or (transform == "none" and mean > 100.0):
        return "latency", f"{seen}, which no percentage averages", True
    if transform == "log":
        return "latency", f"{seen}, as hwnas trains latency predictors", False
    return "accuracy", f"{seen}, as accuracy=predictor trains", False


def identify(payload) -> Identity:
    """What a ``torch.load``-ed checkpoint holds, from its format record or, for foreign files, its keys."""
    if not isinstance(payload, dict):
        return Identity("unknown", f"a {type(payload).__name__}, not a checkpoint dict")
    fmt = payload.get("format")
    if fmt == FORMAT:
        target, how, certain = judge_target(payload)
        hp = payload.get("hparams") if isinstance(payload.get("hparams"), dict) else {}
        space = (payload.get("predicts") or {}).get("space") or hp.get("space") or "?"
        return Identity(target, f"{'an' if target[0] in 'aeiou' else 'a'} {target} predictor ({TARGETS[target]}, "
                                f"search space {space})", how, certain)
    if fmt == TRANSFER_FORMAT:
        space = (payload.get("hparams") or {}).get("space", "?")
        return Identity("transfer", f"job=transfer's multi-device latency predictor (search space {space}; it predicts "
                                    f"for a device only once adapted to its samples)")
    if fmt == SUPERNET_FORMAT:
        space = (payload.get("space") or {}).get("name", "?")
        return Identity("supernet", f"an OFA supernet of job=train_supernet (search space {space})")
    if "pytorch-lightning_version" in payload:
        return Identity("lightning", "a PyTorch Lightning training checkpoint (the resume state in checkpoints/)")
    if isinstance(fmt, str):
        return Identity("unknown", f"a checkpoint of format {fmt!r} (a newer hwnas?)")
    keys = {str(k).removeprefix("layers.") for k in payload}
    if payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        if "0.weight" in keys and keys <= _OFA_KEYS | {"base_acc"}:
            return Identity("ofa_accuracy", "OFA's published accuracy predictor (ImageNet top-1 as a fraction, on "
                                            "OFA's 128-d encoding)")
        shown = ", ".join(sorted(map(str, payload))[:3])
        return Identity("unknown", f"a bare state dict (keys {shown}, ...) without an hwnas format record")
    shown = ", ".join(sorted(map(str, payload))[:4])
    return Identity("unknown", f"a dict without an hwnas format record (keys {shown})")


def _load(path: Path, role: Role, setting: str):
    if not path.is_file():
        raise DataError(f"{setting} '{path}' does not exist; it needs {role.needs}, {role.source}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        with open(path, "rb") as fh:
            head = fh.read(4)
        # torch.save writes a zip (PK..) or, before torch 1.6, a pickle (0x80): anything else is no torch file
        what = (f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}" if head[:2] == b"PK" or head[:1] == b"\x80"
                else "not a torch.save file at all: a CSV, text or other file")
        raise DataError(f"{setting} '{path}' is not {role.noun} ({what}); it needs {role.source}") from None


def read_checkpoint(path: str | os.PathLike, role: str = "latency", setting: str | None = None) -> dict:
    """The payload of a checkpoint for ``role`` (a key of :data:`ROLES`; ``setting``: the option that named the
    file, for the message), or one DataError line naming the file, what it holds and what the role needs."""
    need, path = ROLES[role], Path(path)
    setting = setting or need.setting
    payload = _load(path, need, setting)
    identity = identify(payload)
    if identity.kind != role:
        if identity.kind == "unknown":
            raise DataError(f"{setting} '{path}' is not {need.noun}: it is {identity.description}; "
                            f"{setting} needs {need.needs}, {need.source}")
        judged = f" by its contents ({_UNRECORDED}: {identity.judged})" if identity.judged else ""
        use = USES.get(identity.kind, "").format(path)
        stamp = ""
        if not identity.certain and role in TARGETS:
            stamp = f"; if it does predict {role}, {_stamp(path, role)} records that"
        raise DataError(f"{setting} '{path}' is {identity.description}{judged}, not {need.needs}: {setting} needs "
                        f"{need.source}" + (f"; {use}" if use else "") + stamp)
    if not identity.certain:
        other = next(t for t in TARGETS if t != role)
        warn(f"{setting} '{path}' is read as {identity.description} by its contents ({_UNRECORDED}: "
             f"{identity.judged}); if it predicts {other}, {_stamp(path, other)} records that")
    return payload


def _stamp(path, target: str) -> str:
    return f"python -c \"from hwnas.predictors.module import stamp_predictor; stamp_predictor('{path}', '{target}')\""


def load_predictor(path: str | os.PathLike, target: str = "latency", setting: str | None = None) -> LatencyPredictor:
    """The predictor of a :func:`save_predictor` file, refused (one DataError line) unless it predicts ``target``.

    Files of earlier hwnas versions record no target; it is told from the target statistics they hold
    (``target_transform`` and ``target_mean``, the mean of the transformed training targets):

    - a mean no percentage can have (transform ``none``: > 100; ``log``: > ln 100) is latency, for certain;
    - otherwise the transform decides: ``log`` (hwnas's latency default) is latency, ``none`` (the default of
      ``accuracy=predictor``) is accuracy. Such a file loads in the role so judged with a one-line warning
      saying so, and the other role refuses it with the same reason: a judgement that is wrong is never
      silent. :func:`stamp_predictor` records the target of such a file once for all.
    """
    payload = read_checkpoint(path, target, setting)
    module = LatencyPredictor(**{**payload["hparams"], "target": target})
    module.net.load_state_dict(payload["state_dict"])
    states = payload.get("cv_state_dicts") or []
    if len(states) != len(module.cv_nets):
        raise DataError(f"{setting or ROLES[target].setting} '{path}' records {len(module.cv_nets)} cv_plus fold "
                        f"networks but holds {len(states)}: a damaged or hand-edited file; retrain it")
    for net, state in zip(module.cv_nets, states):
        net.load_state_dict(state)
    return module.eval()


def load_into(estimator, path: str | os.PathLike, target: str, setting: str):
    """Give a ``PredictorEstimator`` built without a checkpoint the predictor of ``path``, checked to predict
    ``target`` (its own ``checkpoint=`` reads latency predictors named by ``estimator.checkpoint`` only)."""
    estimator.module = load_predictor(path, target, setting)
    estimator.checkpoint, estimator.needs_fit, estimator.fitted = str(path), False, True
    return estimator


def stamp_predictor(path: str | os.PathLike, target: str) -> Path:
    """Record in an earlier hwnas predictor file (no ``predicts`` record) that it predicts ``target``."""
    if target not in TARGETS:
        raise ConfigError(f"target = {target!r} is not allowed; allowed: {', '.join(TARGETS)}")
    path = Path(path)
    payload = _load(path, ROLES[target], "predictor")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"'{path}' is {identify(payload).description}, not an hwnas predictor checkpoint")
    payload["hparams"] = {**payload["hparams"], "target": target}
    payload["predicts"] = {"target": target, "unit": TARGETS[target], "space": payload["hparams"].get("space", "")}
    return atomic_torch_save(payload, path)
