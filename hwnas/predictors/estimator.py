"""A learned latency predictor as an estimator: trains with Lightning, predicts in large batches."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from hwnas.checkpoints import check_same_config, checkpointing, plugins
from hwnas.errors import ConfigError, DataError
from hwnas.estimators.base import LatencyEstimator
from hwnas.predictors import intervals
from hwnas.predictors.data import LatencyDataModule, TargetTransform, featurize
from hwnas.predictors.models import MODELS
from hwnas.predictors.module import LatencyPredictor, load_predictor, save_predictor

#: the L2 penalties ``estimator.model=ridge`` chooses from by leave-one-out error when ``estimator.alpha`` is null
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 13))

DEFAULT_TRAINER = {"_target_": "pytorch_lightning.Trainer", "accelerator": "cpu", "devices": 1}


def _trainer_dict(trainer_cfg) -> dict:
    """The ``trainer`` group (a DictConfig, a dict, or None: :data:`DEFAULT_TRAINER`) as a plain dict to edit."""
    if isinstance(trainer_cfg, DictConfig):
        return OmegaConf.to_container(trainer_cfg, resolve=True)
    return dict(trainer_cfg or DEFAULT_TRAINER)


def manual_optimization_trainer(trainer_cfg) -> dict:
    """The ``trainer`` group for a module that steps its own optimizers (supernet, differentiable search):
    elastic or unchosen candidates leave parameters unused under DDP, no sanity validation, no automatic
    gradient clipping (Lightning refuses it under manual optimization)."""
    tc = _trainer_dict(trainer_cfg)
    if tc.get("strategy") == "ddp":
        tc["strategy"] = "ddp_find_unused_parameters_true"
    tc["num_sanity_val_steps"] = 0
    tc.pop("gradient_clip_val", None)
    return tc


def make_trainer(trainer_cfg, max_epochs: int, work_dir: Path | None, logger=False, progress: bool | None = None,
                 callbacks: Sequence = (), validate: bool = True) -> pl.Trainer:
    """A Trainer from the ``trainer`` group; with checkpoint ``callbacks`` (:func:`hwnas.checkpoints.checkpointing`)
    every checkpoint it writes is verified before it replaces the previous one."""
    cfg = _trainer_dict(trainer_cfg)
    from hwnas.interrupts import lightning_progress

    # the trainer group's own callbacks (``_target_`` each, e.g. EarlyStopping) run beside the job's checkpointing
    # the job's length (estimator.epochs, supernet.phases) unless the trainer group sets one: then, as in Lightning,
    # trainer.max_epochs is how long it trains
    length = cfg.get("max_epochs")
    cfg.update(max_epochs=int(max_epochs if length is None else length), logger=logger, enable_model_summary=False,
               callbacks=[*callbacks, *(cfg.get("callbacks") or []), lightning_progress()],  # progress: for the interrupt message
               default_root_dir=str(work_dir) if work_dir else None, enable_checkpointing=bool(callbacks))
    if callbacks:
        cfg["plugins"] = [*(cfg.get("plugins") or []), *plugins()]
    cfg.setdefault("log_every_n_steps", 1)
    if not validate:
        cfg["limit_val_batches"] = 0
    if progress is not None:
        cfg["enable_progress_bar"] = progress
    return instantiate(cfg)


def solve_ridge(module: LatencyPredictor, x: torch.Tensor, y: torch.Tensor, alpha: float | None = None) -> float:
    """Fit the single linear layer of a ``model=ridge`` predictor to the (transformed) targets in closed form.

    Ridge regression (scikit-learn) on the encoding: with one-hot layer choices it learns what each
    choice of each layer adds to the (log) latency, an additive model like a lookup table but fitted
    to whole-network measurements, so per-network overheads are part of it. ``alpha`` null: the
    penalty of :data:`RIDGE_ALPHAS` with the least leave-one-out error (``RidgeCV``'s efficient LOO).
    Returns the penalty used.
    """
    from sklearn.linear_model import Ridge, RidgeCV

    xs = x.double().numpy()
    z = module.transform.forward(y.double()).numpy()
    reg = RidgeCV(alphas=RIDGE_ALPHAS) if alpha is None else Ridge(alpha=alpha)
    reg.fit(xs, z)
    linear = module.net.net[-1]
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(np.asarray(reg.coef_).reshape(1, -1), dtype=linear.weight.dtype))
        linear.bias.fill_(float(reg.intercept_))
    module.eval()
    return float(reg.alpha_) if alpha is None else float(alpha)


class PredictorEstimator(LatencyEstimator):
    """``estimator=predictor``: load ``checkpoint`` or learn from samples (``fit``)."""

    name = "predictor"

    def __init__(self, checkpoint: str | None = None, model: str = "mlp", hidden: Sequence[int] = (400, 400, 400),
                 gcn_hidden: int = 128, gcn_layers: int = 4, dropout: float = 0.0, encoding: str = "onehot",
                 target_transform: str = "log", loss: str = "mse", rank_weight: float = 0.0, lr: float = 1e-3,
                 weight_decay: float = 0.0, epochs: int = 200, batch_size: int = 256, trainer=None, seed: int = 0,
                 progress_bar: bool | None = None, predict_batch_size: int = 65536, precision: str = "32",
                 alpha: float | None = None, interval: float | None = None, interval_method: str = "quantile",
                 interval_folds: int = 5, **fit_options):
        self.needs_fit = checkpoint is None
        super().__init__(**fit_options)
        if model not in MODELS:
            raise ConfigError(f"estimator.model = {model!r} is not allowed; allowed: {', '.join(MODELS)}")
        if alpha is not None and not float(alpha) > 0:
            raise ConfigError(f"estimator.alpha = {alpha!r} is not allowed; allowed: a penalty > 0, or null (chosen "
                              f"by leave-one-out error among {RIDGE_ALPHAS[0]:g}..{RIDGE_ALPHAS[-1]:g})")
        self.alpha = None if alpha is None else float(alpha)
        if interval is not None and not 0 < float(interval) < 1:
            raise ConfigError(f"estimator.interval = {interval!r} is not allowed; allowed: a coverage in (0, 1), "
                              f"e.g. 0.9, or null (no error bars)")
        self.interval_method = intervals.check_method(interval_method)
        if interval is not None and model != "mlp" and interval_method == "quantile":
            raise ConfigError(f"estimator.interval (error bars from quantile heads) needs estimator.model=mlp; "
                              f"model = {model!r} has none (estimator.interval_method=cv_plus or flops_gap works "
                              f"with any model)")
        self.interval = None if interval is None else float(interval)
        self.resolutions: list[int] = []  # the training set's input sizes (encoding=layers codes these)
        self.ridge_alpha: float | None = None  # the penalty a ridge fit used
        self.options = dict(model=model, hidden=list(hidden), gcn_hidden=gcn_hidden, gcn_layers=gcn_layers,
                            dropout=dropout, encoding=encoding, target_transform=target_transform, loss=loss,
                            rank_weight=rank_weight, lr=lr, weight_decay=weight_decay)
        from hwnas.options import count, integer

        self.epochs = count(epochs, "estimator.epochs", 1, why="passes over the training set")
        self.interval_folds = count(interval_folds, "estimator.interval_folds", 2,
                                    why="cv_plus: models each trained without one fold of the samples")
        self.batch_size = count(batch_size, "estimator.batch_size", 1, why="architectures per training step")
        self.seed = integer(seed, "estimator.seed", minimum=0)
        self.trainer_cfg, self.progress_bar = trainer, progress_bar
        self.predict_batch_size = count(predict_batch_size, "estimator.predict_batch_size", 1,
                                        why="architectures per inference batch")
        if str(precision) not in ("32", "bf16"):
            raise ConfigError(f"estimator.precision = {precision!r} is not allowed; allowed: 32, bf16")
        self.precision = str(precision)
        self.module: LatencyPredictor | None = load_predictor(checkpoint) if checkpoint else None
        self.checkpoint = checkpoint
        self.train_seconds = 0.0
        self.trained_epochs: int | None = None  # epochs the last training ran (trainer.max_epochs may set them)

    @property
    def label(self) -> str:
        model = self.module.hparams.model if self.module is not None else self.options["model"]
        return f"{self.name} ({model})"

    # ------------------------------------------------------------------ training
    def new_module(self, space, features: dict, y: torch.Tensor, device_dim: int = 0, num_devices: int = 0,
                   embedding_dim: int = 0) -> LatencyPredictor:
        o = self.options
        transform = TargetTransform(o["target_transform"]).fit(y)
        extra = dict(device_dim=device_dim, num_devices=num_devices, embedding_dim=embedding_dim)
        if o["model"] in ("mlp", "ridge"):
            hidden = o["hidden"] if o["model"] == "mlp" else []
            kwargs = dict(input_dim=features["x"].shape[1], hidden=hidden, dropout=o["dropout"], **extra)
            if self.interval and self.interval_method == "quantile":
                kwargs["outputs"] = 3  # the point, then the interval's lower and upper quantile heads
            dim = features["x"].shape[1]
        else:
            kwargs = dict(node_features=features["ops"].shape[2], hidden=o["gcn_hidden"], layers=o["gcn_layers"],
                          head=o["hidden"][:1], dropout=o["dropout"], **extra)
            dim = features["ops"].shape[2]
        return LatencyPredictor(model=o["model"], model_kwargs=kwargs, lr=o["lr"], weight_decay=o["weight_decay"],
                                loss=o["loss"], rank_weight=o["rank_weight"], target_transform=transform.kind,
                                target_mean=transform.mean, target_std=transform.std, space=space.name,
                                encoding=o["encoding"], encoding_dim=int(dim), resolutions=tuple(self.resolutions),
                                interval=self.interval or 0.0, interval_method=self.interval_method)

    def featurize(self, space, archs) -> dict:
        model, encoding = self.options["model"], self.options["encoding"]
        if model == "gcn" and encoding != "graph":
            raise ConfigError("estimator.model=gcn needs estimator.encoding=graph")
        if model != "gcn" and encoding == "graph":
            raise ConfigError(f"estimator.model={model} regresses on a vector encoding; estimator.encoding = 'graph' "
                              f"is not allowed with it (allowed: onehot, layers; or estimator=gcn)")
        return featurize(space, archs, encoding, self.resolutions)

    def fit(self, space, archs, latency_ms, val_archs=None, val_latency_ms=None, work_dir: str | Path | None = None,
            logger=False) -> "PredictorEstimator":
        pl.seed_everything(self.seed, workers=True, verbose=False)
        self.resolutions = sorted({int(a.r) for a in archs if getattr(a, "r", None) is not None})
        train = {**self.featurize(space, archs), "y": torch.as_tensor(np.asarray(latency_ms), dtype=torch.float32)}
        val = None
        if val_archs is not None and len(val_archs):
            val = {**self.featurize(space, val_archs), "y": torch.as_tensor(np.asarray(val_latency_ms), dtype=torch.float32)}
        self.module = self.new_module(space, train, train["y"])
        if self.interval and self.interval_method == "flops_gap":  # the reference its error bars are measured from
            self.module.hparams.interval_prior = intervals.fit_prior(space, archs, latency_ms)
        if self.options["model"] == "ridge":  # closed form: nothing to train, checkpoint or resume
            t0 = time.perf_counter()
            self.ridge_alpha = solve_ridge(self.module, train["x"], train["y"], self.alpha)
            self.train_seconds, self.fitted = time.perf_counter() - t0, True
        else:
            self.train_module(LatencyDataModule(train, val, self.batch_size, self.seed), work_dir, logger)
        if self.interval and self.interval_method == "cv_plus":
            self.fit_cv_plus(train, work_dir)
        return self

    def fit_cv_plus(self, train: dict, work_dir=None) -> None:
        """``interval_method=cv_plus``: train ``interval_folds`` more models, each on the samples outside one fold
        (same recipe and target scaling as the full model), and keep them with every sample's out-of-fold residual
        (:mod:`hwnas.predictors.intervals`)."""
        main, n = self.module, len(train["y"])
        folds = intervals.cv_folds(n, self.interval_folds, self.seed)
        intervals.cv_ranks(n, self.interval)  # too few samples for the coverage: say so before training
        z_true = main.transform.forward(train["y"].double())
        residuals = torch.zeros(n, dtype=torch.float64)
        nets, seconds = [], self.train_seconds
        for k in range(self.interval_folds):
            fit_rows, held = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
            pl.seed_everything(self.seed + 1 + k, workers=True, verbose=False)
            module = LatencyPredictor(**{**dict(main.hparams), "interval_cv": None})
            part = {key: v[fit_rows] for key, v in train.items()}
            if self.options["model"] == "ridge":
                solve_ridge(module, part["x"], part["y"], self.ridge_alpha)
            else:
                self.train_module(LatencyDataModule(part, None, self.batch_size, self.seed + 1 + k),
                                  None if work_dir is None else Path(work_dir) / f"cv_fold{k}", module=module)
                seconds += self.train_seconds
            with torch.inference_mode():
                z = module({key: v[held] for key, v in train.items() if key != "y"}).double()
            residuals[held] = (z_true[held] - z).abs()
            nets.append(module.net)
        main.cv_nets.extend(nets)
        main.hparams.interval_cv = {"folds": self.interval_folds, "fold_of": [int(f) for f in folds],
                                    "residuals": [float(r) for r in residuals]}
        self.train_seconds = seconds

    def train_module(self, datamodule, work_dir=None, logger=False, epochs: int | None = None,
                     module: LatencyPredictor | None = None) -> None:
        """Train ``module`` (default ``self.module``); with ``work_dir``, checkpoint every epoch and on interrupt,
        resume if present."""
        module = self.module if module is None else module
        callbacks, resume = [], None
        if work_dir is not None:
            callbacks, resume = checkpointing(Path(work_dir) / "checkpoints")
            if resume is not None:
                check_same_config(resume, module.hparams, self.resume_options())
                print(f"resuming predictor training from {resume.path} (step {resume.global_step})")
        for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)
        trainer = make_trainer(self.trainer_cfg, epochs or self.epochs, work_dir, logger, self.progress_bar, callbacks,
                               validate=bool(datamodule.val))
        t0 = time.perf_counter()
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume.ckpt_path if resume else None)
        self.train_seconds, self.trained_epochs = time.perf_counter() - t0, int(trainer.current_epoch)
        module.eval()
        self.fitted = True

    def resume_options(self) -> dict[str, str]:
        """The hyperparameters (of :class:`LatencyPredictor`) a checkpoint must share with this estimator to be
        resumed, and the option that sets each."""
        net = ({"model_kwargs.hidden": "estimator.hidden"} if self.options["model"] in ("mlp", "ridge") else
               {"model_kwargs.hidden": "estimator.gcn_hidden", "model_kwargs.layers": "estimator.gcn_layers",
                "model_kwargs.head": "estimator.hidden"})
        data = "training set"  # the latencies' mean and spread: another device, table, train.samples or train.split
        return {"space": "search_space", "model": "estimator.model", "encoding": "estimator.encoding", **net,
                "model_kwargs.dropout": "estimator.dropout", "model_kwargs.input_dim": "encoding width (search_space)",
                "model_kwargs.node_features": "encoding width (search_space)",
                "model_kwargs.num_devices": "set of training devices", "model_kwargs.device_dim": "device representation",
                "model_kwargs.embedding_dim": "embedding_dim", "lr": "estimator.lr",
                "weight_decay": "estimator.weight_decay", "loss": "estimator.loss", "rank_weight": "estimator.rank_weight",
                "interval": "estimator.interval", "interval_method": "estimator.interval_method",
                "scheduler": "estimator.scheduler", "target_transform": "estimator.target_transform",
                "target_mean": data, "target_std": data}

    # ------------------------------------------------------------------ inference
    def check_space(self, space) -> None:
        from hwnas.spaces import encoding_family

        hp = self.module.hparams
        if encoding_family(hp.space) != encoding_family(space.name):
            raise DataError(f"predictor checkpoint '{self.checkpoint}' was trained on search space {hp.space!r}, "
                            f"not {space.name!r} (nor a space that shares its encoding)")

    @torch.inference_mode()
    def _predict(self, space, archs) -> np.ndarray:
        return self._batched(space, archs, 1, lambda feats: (self.module(feats),))[0]

    def _batched(self, space, archs, n_outputs: int, outputs, step: int | None = None) -> list[np.ndarray]:
        """``outputs(features)`` (a tuple of ``n_outputs`` transformed-unit tensors) over ``archs`` in chunks, in
        ms; first checked: the space, and (encoding=layers) that every resolution is one the fit saw."""
        self.check_space(space)
        hp = self.module.hparams
        resolutions = list(hp.get("resolutions") or [])
        if hp.encoding == "layers" and resolutions:
            unseen = sorted({int(a.r) for a in archs} - set(resolutions))
            if unseen:
                raise DataError(f"predictor{f' {self.checkpoint!r}' if self.checkpoint else ''} (encoding=layers) was "
                                f"fitted at resolutions {', '.join(map(str, resolutions))} and predicts only those; "
                                f"asked for {', '.join(map(str, unseen[:5]))}: restrict search_space.resolutions or "
                                f"fit with estimator.encoding=onehot")
        # wide encodings (layers: thousands of columns) in chunks of at most ~64 MB of inputs
        step = max(1, min(self.predict_batch_size, step or self.predict_batch_size,
                          16_000_000 // max(1, int(hp.encoding_dim))))
        parts: list[list[np.ndarray]] = []
        for i in range(0, len(archs), step):
            feats = featurize(space, archs[i:i + step], hp.encoding, resolutions)
            dim = feats["x"].shape[1] if "x" in feats else feats["ops"].shape[2]
            if dim != hp.encoding_dim:
                raise DataError(f"predictor checkpoint '{self.checkpoint}' expects {hp.encoding_dim}-d "
                                f"inputs; search space {space.name} encodes to {dim}-d (another width or resolution set?)")
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                zs = outputs(feats)
            parts.append([self.module.transform.inverse(z.double()).numpy() for z in zs])
        if not parts:
            return [np.zeros(0) for _ in range(n_outputs)]
        return [np.concatenate(col) for col in zip(*parts)]

    def _interval_prior(self, space, archs) -> np.ndarray:
        """``flops_gap``: the FLOPs fit's latency (ms) of ``archs``."""
        return intervals.prior_ms(self.module.hparams.interval_prior, space, archs)

    def _has_interval(self):
        if self.module is None:
            raise ConfigError("the predictor must be trained or loaded before it predicts intervals")
        hp = self.module.hparams
        if not hp.get("interval"):
            raise ConfigError("this predictor has no error bars: train it with estimator.interval=0.9")
        return hp

    @torch.inference_mode()
    def predict_interval(self, space, archs) -> tuple[np.ndarray, np.ndarray]:
        """Each architecture's ``estimator.interval`` (e.g. 90 %) latency interval, ms: ``(low, high)``; calibrated
        when :meth:`calibrate_interval` ran on held-out measurements (job=train_predictor does, on its val split)."""
        hp = self._has_interval()
        if hp.get("interval_method") == "cv_plus":
            # n x batch order statistics: batches of at most ~16M candidate bounds
            step = max(1, 16_000_000 // max(1, len((hp.get("interval_cv") or {}).get("residuals", ()))))
            return tuple(self._batched(space, archs, 2, self.module.cv_bounds, step=step))
        if not self.module.has_quantile_heads:  # (interval is set) flops_gap
            if not hp.get("interval_scale"):
                raise ConfigError("a flops_gap interval is set by calibration on held-out measurements, and this "
                                  "predictor was never calibrated: job=train_predictor calibrates it on its "
                                  "validation split, search.latency_margin=uncertainty on search.margin_samples cells")
            if not len(archs):
                return np.zeros(0), np.zeros(0)
            return intervals.bounds(self._predict(space, archs), self._interval_prior(space, archs),
                                    float(hp.interval_offset), float(hp.interval_scale))
        lo, hi = self._batched(space, archs, 2, self.module.bounds)
        return lo, hi

    @property
    def needs_calibration(self) -> bool:
        """Whether the interval is set by :meth:`calibrate_interval` on held-out measurements (quantile, flops_gap)
        or already by the training samples' folds (cv_plus: calibrating leaves it as it is)."""
        return self._has_interval().get("interval_method", "quantile") != "cv_plus"

    @torch.inference_mode()
    def calibrate_interval(self, space, archs, latency_ms) -> float:
        """Widen the interval until it covers ``interval`` of these held-out architectures (split conformal,
        finite-sample corrected); returns the offset (``quantile``: conformalized quantile regression, Romano et
        al., NeurIPS 2019, in transformed units, negative where the heads were too wide; ``flops_gap``: the
        normalized score's quantile, :mod:`hwnas.predictors.intervals`; ``cv_plus``: 0, its folds calibrated it)."""
        hp = self.module.hparams
        if not hp.get("interval"):
            raise ConfigError("this predictor has no error bars to calibrate: train it with estimator.interval=0.9")
        y = np.asarray(latency_ms, dtype=np.float64)
        if len(y) < 2:
            raise DataError(f"calibrating an interval needs >= 2 held-out architectures, got {len(y)}")
        if not self.needs_calibration:
            return 0.0
        if not self.module.has_quantile_heads:  # (interval is set) flops_gap
            hp.interval_offset, hp.interval_scale = intervals.calibrate(
                self._predict(space, archs), self._interval_prior(space, archs), y, float(hp.interval))
            return hp.interval_offset
        hp.interval_offset = 0.0
        lo, hi = self._batched(space, archs, 2, self.module.bounds)
        t = self.module.transform
        z, zlo, zhi = (t.forward(torch.as_tensor(v)).numpy() for v in (y, lo, hi))
        hp.interval_offset = intervals.conformal_quantile(np.maximum(zlo - z, z - zhi), float(hp.interval))
        return hp.interval_offset

    def save(self, path) -> Path:
        if self.module is None:
            raise ConfigError("nothing to save: the predictor has not been trained")
        return save_predictor(self.module, path)
