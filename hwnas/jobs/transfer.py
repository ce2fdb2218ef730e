"""Transfer latency predictors to new devices (few-shot, fine-tune, hardware-generalized zero-shot).

Protocol (NASFLAT, Akhauri & Abdelfattah 2024): pretrain on the task's train devices, adapt to each
test device from K = 20 measured architectures, predict every architecture of the space's table and
score Spearman over all of them, the K adaptation samples included (as NASFLAT's own evaluation does;
with 20 of 5,000-15,625 architectures they barely move it). ``spearman_unseen_*`` leaves them out.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import OmegaConf
from scipy.stats import spearmanr

from hwnas.data.tables import load_fbnet_latency, load_nb201_latency
from hwnas.devices import TableDevice
from hwnas.devices.specs import descriptor_for
from hwnas.errors import ConfigError, choices_text
from hwnas.estimators.flops import FlopsEstimator
from hwnas.estimators.hybrid import ResidualEstimator
from hwnas.estimators.selection import BLEND, Blend, cross_validate
from hwnas.io import write_csv
from hwnas.metrics import MIN_SCORED, evaluate_predictions
from hwnas.options import count, number, seed
from hwnas.predictors import PredictorEstimator
from hwnas.predictors.module import load_into
from hwnas.predictors.stacking import DEFAULT_RECIPE, StackedPredictor, arch_blocks, check_recipe
from hwnas.predictors.transfer import (REPRESENTATIONS, SELECTIONS, MultiDevicePredictor, TransferredPredictor,
                                       cached_pretrain, fine_tune, fingerprint_key, select_samples)

METHODS = ("few_shot", "finetune", "hwgen")
#: How a few-shot transfer maps to the new device: fine-tune the pretrained network, or a ridge regression
#: on the source devices' latencies and operation counts (hwnas/predictors/stacking.py).
HEADS = ("ridge", "network")
#: transfer.method=finetune: flops = cross-validate the fine-tuned network against FLOPs fitted on the same
#: samples, their blend and the network fine-tuned on latency / FLOPs fit (hwnas/estimators/hybrid.py), and keep
#: the winner (hwnas/estimators/selection.py); none = the network always.
FALLBACKS = ("flops", "none")
CHOICES = ("finetuned", "flops", BLEND, "residual")
DEFAULT_SAMPLES = {"few_shot": 20, "finetune": 700}
#: The published figures of a task (its ``published``) are few-shot from this many samples per test device.
PUBLISHED_SAMPLES = 20
#: Fewest target samples to adapt from (the per-device scale is a standard deviation).
MIN_SAMPLES = 2
HELP_TABLES = {"nb201": load_nb201_latency, "fbnet": load_fbnet_latency}
PER_DEVICE = ("spearman", "kendall", "rmse_ms", "rmse_pct", "mape", "within_10pct")
TASKS_DIR = Path(__file__).resolve().parents[1] / "conf" / "task"


def task_names() -> list[str]:
    return sorted(p.stem for p in TASKS_DIR.glob("*.yaml"))


class Target:
    """A device to transfer to: its name, every architecture it has a latency for, its descriptor."""

    def __init__(self, name: str, archs: list, latency_ms: np.ndarray, descriptor, rows: np.ndarray | None = None):
        self.name, self.archs, self.latency_ms, self.descriptor = name, archs, np.asarray(latency_ms), descriptor
        self.rows = rows  # row of each arch in the space's HELP table (-1: not in it), when there is one


# ----------------------------------------------------------------------------- config checks
def _list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in (OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)]


def _check_devices(names: list[str], allowed: list[str], key: str, space: str) -> None:
    for name in names:
        if name not in allowed:
            raise ConfigError(f"{key} has {name!r}, not a device of the {space} HELP table; "
                              f"allowed: {choices_text(allowed)}")


def _options(cfg) -> dict:
    t = cfg.transfer
    method = str(t.method)
    if method not in METHODS:
        raise ConfigError(f"transfer.method = {method!r} is not allowed; allowed: {choices_text(METHODS)}")
    selection = str(t.selection)
    if selection not in SELECTIONS:
        raise ConfigError(f"transfer.selection = {selection!r} is not allowed; allowed: {choices_text(SELECTIONS)}")
    representation = _list(t.representation)
    bad = [r for r in representation if r not in REPRESENTATIONS]
    if bad or not representation:
        raise ConfigError(f"transfer.representation = {representation} is not allowed; choose one or more of "
                          f"{choices_text(REPRESENTATIONS)}")
    samples = 0
    if method != "hwgen":
        samples = count(t.get("samples"), "transfer.samples", MIN_SAMPLES, allow_none=True,
                        why="target measurements to adapt from: a device's scale needs two")
        samples = DEFAULT_SAMPLES[method] if samples is None else samples
    pretrain, adapt, finetune = t.pretrain, t.adapt, t.finetune
    head = str(adapt.get("head", "ridge"))
    if head not in HEADS:
        raise ConfigError(f"transfer.adapt.head = {head!r} is not allowed; allowed: {choices_text(HEADS)}")
    features = adapt.get("features")
    features = check_recipe(DEFAULT_RECIPE if features is None else
                            OmegaConf.to_container(features) if OmegaConf.is_config(features) else features)
    per_device = count(pretrain.get("archs_per_device"), "transfer.pretrain.archs_per_device", 2, allow_none=True,
                       why="architecture-latency pairs per source device; null: all of the table")
    return dict(method=method, selection=selection, head=head, features=features, representation=representation, samples=samples,
                seed=seed(t.seed, "transfer.seed"), per_device=per_device,
                embedding_dim=count(t.embedding_dim, "transfer.embedding_dim", 1 if "embedding" in representation else 0,
                                    why="the width of the learned device embedding"),
                pretrain_epochs=count(pretrain.epochs, "transfer.pretrain.epochs", 1),
                pretrain_lr=number(pretrain.lr, "transfer.pretrain.lr", 0.0, exclusive_minimum=True),
                pretrain_batch_size=count(pretrain.batch_size, "transfer.pretrain.batch_size", 1),
                adapt_steps=count(adapt.steps, "transfer.adapt.steps", 0, why="0: the device representation alone adapts"),
                adapt_lr=number(adapt.lr, "transfer.adapt.lr", 0.0, exclusive_minimum=True),
                adapt_freeze=count(adapt.freeze_layers, "transfer.adapt.freeze_layers", 0),
                finetune_freeze=count(finetune.freeze_layers, "transfer.finetune.freeze_layers", 0),
                finetune_epochs=count(finetune.epochs, "transfer.finetune.epochs", 1),
                finetune_lr=number(finetune.lr, "transfer.finetune.lr", 0.0, exclusive_minimum=True),
                finetune_fallback=_fallback(finetune.get("fallback", "flops")),
                finetune_folds=count(finetune.get("folds", 5), "transfer.finetune.folds", 2,
                                     why="cross-validation folds of the target samples (fallback=flops)"))


def _fallback(value) -> str:
    value = "none" if value is None else str(value)
    if value not in FALLBACKS:
        raise ConfigError(f"transfer.finetune.fallback = {value!r} is not allowed; allowed: {choices_text(FALLBACKS)}")
    return value


def _check_samples(k: int, targets: list["Target"]) -> None:
    """Each target keeps >= MIN_SCORED architectures it was not adapted on, else its score is its training fit."""
    for target in targets:
        n = len(target.archs)
        if n - k < MIN_SCORED:
            raise ConfigError(f"transfer.samples = {k} leaves {max(n - k, 0)} of the {n} architectures of "
                              f"{target.name} unseen; its score would be the fit to its own adaptation samples "
                              f"(>= {MIN_SCORED} unseen needed); allowed: {MIN_SAMPLES}..{n - MIN_SCORED}")


def _comparable(cfg, opts, sources: list[str], names: list[str]) -> str:
    """Why this run is not the task's published protocol (empty: it is, and its figures may stand beside it;
    a subset of the task's test devices still is)."""
    task = cfg.get("task")
    if opts["method"] != "few_shot":
        return f"transfer.method={opts['method']}, not few_shot"
    if opts["samples"] != PUBLISHED_SAMPLES:
        return f"transfer.samples={opts['samples']}, not {PUBLISHED_SAMPLES}"
    if cfg.transfer.target.get("path"):
        return "transfer.target.path is not one of the task's test devices"
    if sorted(sources) != sorted(_list(task.train_devices)):
        return "its source devices are not the task's train devices"
    others = [n for n in names if n not in _list(task.test_devices)]
    if others:
        return f"{others[0]} is not one of the task's test devices"
    return ""


def _help_table(space_name: str, data_dir):
    if space_name not in HELP_TABLES:
        raise ConfigError(f"job=transfer pretrains on HELP's multi-device tables, which exist for search_space "
                          f"{choices_text(HELP_TABLES)}; search_space={space_name} has none "
                          f"(OFA/CompOFA: transfer.method=finetune)")
    return HELP_TABLES[space_name](data_dir)


def _estimator(cfg, **overrides) -> PredictorEstimator:
    est = instantiate(cfg.estimator, **overrides)
    if not isinstance(est, PredictorEstimator) or not est.needs_fit:
        raise ConfigError("job=transfer trains estimator=predictor or estimator=gcn (without a checkpoint); "
                          f"got estimator={cfg.estimator.get('_target_')}")
    return est


# ----------------------------------------------------------------------------- targets
def _user_target(cfg, space, index: dict[str, int]) -> Target:
    t = cfg.transfer.target
    device = TableDevice(path=str(t.path), column=t.get("column"), name=t.get("name"))
    archs, lat = device.dataset(space)
    rows = np.array([index.get(space.to_string(a), -1) for a in archs], dtype=np.int64)
    return Target(device.name, archs, lat, descriptor_for(device.name).vector(), rows)


def _column_target(name: str, wide, archs) -> Target:
    return Target(name, archs, wide.column(name), descriptor_for(name).vector(), np.arange(len(archs)))


def _sources_and_targets(cfg, space, wide, archs, allow_user_target: bool = True):
    task = cfg.get("task")
    if task is not None and task.get("space") and task.space != space.name:
        raise ConfigError(f"task={task.get('name')} is a {task.space} task but search_space={space.name}; "
                          f"drop the search_space override (the task sets it)")
    sources = _list(cfg.transfer.get("source_devices")) or (_list(task.train_devices) if task is not None else [])
    if not sources:
        raise ConfigError(f"job=transfer needs task=<name> (allowed: {choices_text(task_names())}) or "
                          f"transfer.source_devices=[...] (devices of the {space.name} HELP table)")
    key = "transfer.source_devices" if cfg.transfer.get("source_devices") else "task.train_devices"
    _check_devices(sources, wide.devices, key, space.name)
    index = {a: i for i, a in enumerate(wide.archs)}
    if cfg.transfer.target.get("path"):
        if not allow_user_target:
            raise ConfigError("transfer.hwgen.leave_one_out=true rotates over table devices; drop transfer.target.path")
        targets = [_user_target(cfg, space, index)]
    else:
        names = _list(cfg.transfer.get("test_devices")) or (_list(task.test_devices) if task is not None else [])
        if not names:
            raise ConfigError("job=transfer needs target devices: task=<name>, transfer.test_devices=[...], or "
                              "transfer.target.path=<CSV with arch, latency_ms>")
        key = "transfer.test_devices" if cfg.transfer.get("test_devices") else "task.test_devices"
        _check_devices(names, wide.devices, key, space.name)
        targets = [_column_target(n, wide, archs) for n in names]
    leaked = [t.name for t in targets if t.name in sources]
    if leaked:
        raise ConfigError(f"target device {leaked[0]!r} is also a source device; a transfer target must be unseen "
                          f"(sources: {choices_text(sources)})")
    return sources, targets


def _pretrain_pairs(wide, archs, devices: list[str], per_device: int | None, seed: int) -> dict:
    """(archs, latency) pairs of each source device: a seeded subset of rows per device (None: all)."""
    pairs = {}
    for i, name in enumerate(devices):
        col = wide.column(name)
        if per_device is None or per_device >= len(archs):
            rows = np.arange(len(archs))
        else:
            rows = np.sort(np.random.default_rng([seed, i]).choice(len(archs), size=per_device, replace=False))
        pairs[name] = ([archs[r] for r in rows], col[rows])
    return pairs


# ----------------------------------------------------------------------------- scoring
def _score(target: Target, pred: np.ndarray, adapted: np.ndarray, flops: np.ndarray | None) -> dict[str, float]:
    m = evaluate_predictions(pred, target.latency_ms)
    out = {f"{k}_{target.name}": m[k] for k in PER_DEVICE}
    unseen = np.ones(len(pred), dtype=bool)
    unseen[adapted] = False
    if unseen.sum() > 2 and not unseen.all():
        out[f"spearman_unseen_{target.name}"] = float(spearmanr(pred[unseen], target.latency_ms[unseen]).statistic)
    elif unseen.all():
        out[f"spearman_unseen_{target.name}"] = m["spearman"]
    if flops is not None:
        out[f"flops_spearman_{target.name}"] = float(spearmanr(flops, target.latency_ms).statistic)
    return out


def _summary(metrics: dict, names: list[str], published: dict) -> dict[str, float]:
    out = dict(metrics)
    for k in (*PER_DEVICE, "spearman_unseen", "rmse_ms_unseen", "rmse_pct_unseen", "kendall_unseen", "flops_spearman",
              *(f"{m}_{x}_unseen" for m in ("network", "flops_fit", "residual") for x in ("rmse_ms", "rmse_pct", "spearman"))):
        values = [metrics[f"{k}_{n}"] for n in names if f"{k}_{n}" in metrics]
        if values:
            out[f"{k}_mean"] = float(np.mean(values))
    for paper, value in (published or {}).items():
        out[f"published_{paper}"] = float(value)
    return out


def _print_table(method: str, names: list[str], metrics: dict, published: dict, seconds: float) -> None:
    lines = [f"job=transfer method={method}: Spearman over all architectures of each target",
             f"{'device':<16}{'spearman':>10}{'kendall':>10}{'rmse %':>9}{'FLOPs':>8}"]
    for n in [*names, "mean"]:
        row = [metrics.get(f"{k}_{n}", np.nan) for k in ("spearman", "kendall", "rmse_pct", "flops_spearman")]
        lines.append(f"{n:<16}{row[0]:>10.3f}{row[1]:>10.3f}{row[2]:>9.1f}{row[3]:>8.3f}")
    if published:
        lines.append("published (mean Spearman): " + ", ".join(f"{k} {v}" for k, v in published.items()))
    lines.append(f"wall time {seconds:.0f} s")
    print("\n".join(lines))


def _write_predictions(ctx, rows: list) -> None:
    columns = ["device", "arch", "latency_ms", "predicted_ms", "adaptation_sample"]
    write_csv(ctx.path("predictions.csv"), columns, rows)
    ctx.tracker.log_table("transfer_predictions", columns, rows[:2000])


def _rows(space, target: Target, pred: np.ndarray, adapted: np.ndarray) -> list:
    flag = np.zeros(len(pred), dtype=np.int8)
    flag[adapted] = 1
    return [[target.name, space.to_string(a), f"{t:.6g}", f"{p:.6g}", int(f)]
            for a, t, p, f in zip(target.archs, target.latency_ms, pred, flag)]


def _flops(space, archs, enabled: bool) -> np.ndarray | None:
    return np.asarray(space.costs(archs)["flops"], dtype=np.float64) if enabled else None


def _target_flops(space, target: Target, table_flops: np.ndarray | None, enabled: bool) -> np.ndarray | None:
    """FLOPs of the target's architectures, from the table's when every one of them is in it."""
    if not enabled:
        return None
    if table_flops is not None and target.rows is not None and (target.rows >= 0).all():
        return table_flops[target.rows]
    return _flops(space, target.archs, True)


# ----------------------------------------------------------------------------- methods
def _few_shot(cfg, ctx, opts, space) -> dict:
    t = cfg.transfer
    wide = _help_table(space.name, ctx.data_dir)
    archs = space.from_strings(wide.archs)
    sources, targets = _sources_and_targets(cfg, space, wide, archs)
    k = opts["samples"]
    # The K reference architectures: measured on the target, the same K on every source device.
    candidates = np.arange(len(archs))
    user = targets[0] if cfg.transfer.target.get("path") else None
    if user is not None:
        candidates = np.unique(user.rows[user.rows >= 0])
        if len(candidates) < k:
            raise ConfigError(f"transfer.samples = {k}, but only {len(candidates)} architectures of "
                              f"'{t.target.path}' are in the {space.name} HELP table (the reference set must be "
                              f"measured on the source devices too)")
    _check_samples(k, targets)
    need_flops = opts["selection"] == "flops_quantile" or bool(t.flops_baseline)
    all_flops = _flops(space, archs, need_flops)
    pick = select_samples(space, [archs[i] for i in candidates], k, opts["selection"], opts["seed"],
                          flops=all_flops[candidates] if all_flops is not None else None)
    ref_rows = candidates[pick]
    reference_archs = [archs[r] for r in ref_rows]
    per_device = opts["per_device"]
    pairs = _pretrain_pairs(wide, archs, sources, per_device, opts["seed"])
    estimator = _estimator(cfg, target_transform="none", seed=opts["seed"])
    fingerprint = dict(method="few_shot", space=space.name, sources=sources, reference=[wide.archs[r] for r in ref_rows],
                       representation=opts["representation"], embedding_dim=opts["embedding_dim"],
                       archs_per_device=per_device, pretrain=OmegaConf.to_container(t.pretrain, resolve=True),
                       estimator=estimator.options, seed=opts["seed"], data=[wide.source])

    def build():
        model = MultiDevicePredictor(estimator, opts["representation"], opts["embedding_dim"], per_device=True)
        return model.pretrain(space, pairs, reference_archs,
                              {d: wide.column(d)[ref_rows] for d in sources},
                              {d: descriptor_for(d).vector() for d in sources},
                              epochs=opts["pretrain_epochs"], lr=opts["pretrain_lr"],
                              batch_size=opts["pretrain_batch_size"], seed=opts["seed"],
                              work_dir=ctx.path(f"pretrain/{fingerprint_key(fingerprint)}"))

    state = {}

    def pretrained():  # the network: the network head, and the ridge head's source latencies of unmeasured archs
        if "model" not in state:
            state["model"], state["reused"] = _pretrain(ctx, "pretrained.pt", fingerprint, build, estimator,
                                                        bool(t.cache))
        return state["model"]

    head = opts["head"]
    stack = _Stacking(space, wide, archs, sources, opts["features"], pretrained) if head == "ridge" else None
    if stack is None:
        pretrained()
    metrics, rows, adapt_seconds = {}, [], 0.0
    for target in targets:
        if user is not None:
            lookup = {int(r): i for i, r in enumerate(target.rows) if r >= 0}
            adapted = np.array([lookup[int(r)] for r in ref_rows], dtype=np.int64)
        else:
            adapted = ref_rows
        flops = _target_flops(space, target, all_flops, bool(t.flops_baseline))
        if stack is not None:
            src, blocks = stack.inputs(target)
            predictor = stack.predictor().fit(space, reference_archs, target.latency_ms[adapted], src[adapted],
                                              {f: b[adapted] for f, b in blocks.items()})
            pred = predictor.predict_with(space, target.archs, src, blocks)
        else:
            predictor = pretrained().adapt(space, target.name, reference_archs, target.latency_ms[adapted],
                                           target.descriptor, steps=opts["adapt_steps"], lr=opts["adapt_lr"],
                                           freeze_layers=opts["adapt_freeze"],
                                           embedding_init=str(t.adapt.embedding_init), seed=opts["seed"])
            pred = predictor.predict(space, target.archs)
        adapt_seconds += predictor.train_seconds
        metrics.update(_score(target, pred, adapted, flops))
        rows += _rows(space, target, pred, adapted)
    _write_predictions(ctx, rows)
    model = state.get("model")
    return {**metrics, "n_samples": k, "n_sources": len(sources), "n_targets": len(targets),
            "n_pretrain_pairs": sum(len(p[0]) for p in pairs.values()) if model is not None else 0,
            "pretrain_seconds": model.train_seconds if model is not None else 0.0,
            "pretrain_reused": int(state.get("reused", False)), "adapt_seconds": adapt_seconds}, \
        [tg.name for tg in targets], sources


class _Stacking:
    """The ridge head's inputs: source devices' latencies (table, else the pretrained network) and op counts/costs."""

    def __init__(self, space, wide, archs, sources, recipe, pretrained):
        self.space, self.recipe, self.pretrained = space, recipe, pretrained
        self.uses = {f for member in recipe for f in member}
        self.table = np.stack([wide.column(d) for d in sources], axis=1)
        self.blocks = arch_blocks(space, archs, self.uses)

    def predictor(self) -> StackedPredictor:
        return StackedPredictor(self.recipe, source_latency=self.source_latency)

    def source_latency(self, space, archs) -> np.ndarray:
        """Latencies of ``archs`` on the source devices as the pretrained network predicts them."""
        model = self.pretrained()
        return np.stack([TransferredPredictor(model, model.module, s).predict(space, archs) for s in model.sources],
                        axis=1)

    def inputs(self, target: Target) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Source latencies and architecture blocks of every architecture of ``target``."""
        rows = target.rows if target.rows is not None else np.full(len(target.archs), -1)
        have = rows >= 0
        src = np.empty((len(rows), self.table.shape[1]))
        src[have] = self.table[rows[have]]
        blocks = {f: np.empty((len(rows), b.shape[1])) for f, b in self.blocks.items()}
        for f, b in self.blocks.items():
            blocks[f][have] = b[rows[have]]
        if not have.all():
            missing = [a for a, h in zip(target.archs, have) if not h]
            for f, b in arch_blocks(self.space, missing, self.uses).items():
                blocks[f][~have] = b
            if "sources" in self.uses:
                src[~have] = self.source_latency(self.space, missing)
        return src, blocks


def _pretrain(ctx, name: str, fingerprint: dict, build, estimator, cache: bool):
    path = ctx.path(name)
    if not cache:
        model = build()
        model.save(path, fingerprint)
        return model, False
    model, reused = cached_pretrain(path, fingerprint, build, estimator)
    if reused:
        print(f"job=transfer: reusing the pretrained predictor {path}")
    return model, reused


def _hwgen(cfg, ctx, opts, space) -> dict:
    t = cfg.transfer
    wide = _help_table(space.name, ctx.data_dir)
    archs = space.from_strings(wide.archs)
    loo = bool(t.hwgen.leave_one_out)
    sources, targets = _sources_and_targets(cfg, space, wide, archs, allow_user_target=not loo)
    if loo:
        devices = [*sources, *[tg.name for tg in targets]]
        plan = [([d for d in devices if d != held], _column_target(held, wide, archs)) for held in devices]
    else:
        plan = [(sources, tg) for tg in targets]
    per_device = opts["per_device"]
    estimator = _estimator(cfg, target_transform="none", seed=opts["seed"])
    all_flops = _flops(space, archs, bool(t.flops_baseline))
    metrics, rows, seconds, reused_all, models = {}, [], 0.0, True, {}
    for train_devices, target in plan:
        key = tuple(train_devices)
        if key not in models:
            pairs = _pretrain_pairs(wide, archs, train_devices, per_device, opts["seed"])
            fingerprint = dict(method="hwgen", space=space.name, sources=train_devices, archs_per_device=per_device,
                               pretrain=OmegaConf.to_container(t.pretrain, resolve=True), estimator=estimator.options,
                               seed=opts["seed"], data=[wide.source])

            def build(pairs=pairs, fingerprint=fingerprint, train_devices=train_devices):
                model = MultiDevicePredictor(estimator, ["descriptor"], per_device=False)
                return model.pretrain(space, pairs, descriptors={d: descriptor_for(d).vector() for d in train_devices},
                                      epochs=opts["pretrain_epochs"], lr=opts["pretrain_lr"],
                                      batch_size=opts["pretrain_batch_size"], seed=opts["seed"],
                                      work_dir=ctx.path(f"pretrain/{fingerprint_key(fingerprint)}"))

            name = f"pretrained_holdout-{target.name}.pt" if loo else "pretrained.pt"
            models[key], reused = _pretrain(ctx, name, fingerprint, build, estimator, bool(t.cache))
            reused_all &= reused
            seconds += models[key].train_seconds
        pred = models[key].for_device(target.name, target.descriptor).predict(space, target.archs)
        flops = _target_flops(space, target, all_flops, bool(t.flops_baseline))
        none = np.zeros(0, dtype=np.int64)
        metrics.update(_score(target, pred, none, flops))
        rows += _rows(space, target, pred, none)
    _write_predictions(ctx, rows)
    return {**metrics, "n_samples": 0, "n_targets": len(plan), "pretrain_seconds": seconds,
            "pretrain_reused": int(reused_all), "n_models": len(models)}, [tg.name for _, tg in plan], sources


def _finetune_targets(cfg, ctx, space) -> list[Target]:
    t = cfg.transfer
    if t.target.get("path"):
        return [_user_target(cfg, space, {})]
    task = cfg.get("task")
    names = _list(t.get("test_devices")) or (_list(task.test_devices) if task is not None else [])
    if names:
        wide = _help_table(space.name, ctx.data_dir)
        _check_devices(names, wide.devices, "transfer.test_devices", space.name)
        archs = space.from_strings(wide.archs)
        return [_column_target(n, wide, archs) for n in names]
    device = instantiate(cfg.device)
    if not isinstance(device, TableDevice):
        raise ConfigError("transfer.method=finetune needs the target's latencies: device=help/syed/table, "
                          "transfer.test_devices=[...] or transfer.target.path=<CSV with arch, latency_ms>")
    archs, lat = device.dataset(space)
    return [Target(device.name, archs, lat, device.descriptor.vector())]


def _finetune(cfg, ctx, opts, space) -> dict:
    t = cfg.transfer
    if not t.get("base"):
        raise ConfigError("transfer.method=finetune needs transfer.base=<predictor.pt> (e.g. from job=train_predictor "
                          "search_space=ofa_mbv3 device=syed device.column=note10_lut)")
    base = PredictorEstimator(trainer=cfg.trainer, seed=opts["seed"], progress_bar=cfg.estimator.get("progress_bar"),
                              batch_size=count(cfg.estimator.get("batch_size", 256), "estimator.batch_size", 1))
    load_into(base, t.base, "latency", "transfer.base")  # an accuracy predictor or supernet is refused by name
    targets = _finetune_targets(cfg, ctx, space)
    _check_samples(opts["samples"], targets)
    metrics, rows, seconds = {}, [], 0.0
    for target in targets:
        k = opts["samples"]
        flops = _flops(space, target.archs, opts["selection"] == "flops_quantile" or bool(t.flops_baseline))
        adapted = select_samples(space, target.archs, k, opts["selection"], opts["seed"], flops=flops)
        fit_archs, fit_ms = [target.archs[i] for i in adapted], target.latency_ms[adapted]

        def tune(a, y):
            return fine_tune(base, space, a, y, freeze_layers=opts["finetune_freeze"], epochs=opts["finetune_epochs"],
                             lr=opts["finetune_lr"], seed=opts["seed"])

        def flops_fit(a, y):
            return FlopsEstimator(fit_samples=len(y)).fit(space, a, y)

        def residual(a, y):  # the network fine-tuned on latency / (FLOPs fitted on the same samples)
            return ResidualEstimator(FlopsEstimator(fit_samples=len(y)), tune).fit(space, a, y)

        tuned = tune(fit_archs, fit_ms)
        seconds += tuned.train_seconds
        tuned.save(ctx.path("predictor.pt" if len(targets) == 1 else f"predictor_{target.name}.pt"))
        baseline = flops_fit(fit_archs, fit_ms)  # FLOPs fitted on the same samples: beside every result
        corrected = residual(fit_archs, fit_ms)
        chosen, choice = tuned, "finetuned"
        if opts["finetune_fallback"] == "flops" and k >= 3:  # every fold keeps >= 2 samples to fit on
            errors = cross_validate({"finetuned": tune, "flops": flops_fit, "residual": residual}, space, fit_archs,
                                    fit_ms, folds=opts["finetune_folds"], seed=opts["seed"],
                                    blend=("finetuned", "flops"))
            choice = min(errors, key=errors.get)
            chosen = {"finetuned": tuned, "flops": baseline, BLEND: Blend([tuned, baseline]),
                      "residual": corrected}[choice]
            metrics.update({f"cv_rmse_log_{name}_{target.name}": e for name, e in errors.items()})
            print(f"job=transfer: {target.name}: {opts['finetune_folds']}-fold cross-validation on the {k} samples "
                  f"(RMSE of log latency: " + ", ".join(f"{n} {e:.3f}" for n, e in errors.items()) + f") keeps {choice}")
        metrics[f"choice_{target.name}"] = float(CHOICES.index(choice))
        pred = chosen.predict(space, target.archs)
        metrics.update(_score(target, pred, adapted, flops if t.flops_baseline else None))
        unseen = np.setdiff1d(np.arange(len(pred)), adapted)
        held = evaluate_predictions(pred[unseen], target.latency_ms[unseen])
        metrics.update({f"{k}_unseen_{target.name}": held[k] for k in ("rmse_ms", "rmse_pct", "kendall")})
        for name, model in (("network", tuned), ("flops_fit", baseline), ("residual", corrected)):
            m = evaluate_predictions(model.predict(space, [target.archs[i] for i in unseen]), target.latency_ms[unseen])
            metrics.update({f"{name}_{k}_unseen_{target.name}": m[k] for k in ("rmse_ms", "rmse_pct", "spearman")})
        rows += _rows(space, target, pred, adapted)
    _write_predictions(ctx, rows)
    return {**metrics, "n_samples": opts["samples"], "n_targets": len(targets), "adapt_seconds": seconds}, \
        [tg.name for tg in targets], []


def run(cfg, ctx) -> dict[str, float]:
    t0 = time.perf_counter()
    opts = _options(cfg)
    space = instantiate(cfg.search_space)
    method = {"few_shot": _few_shot, "finetune": _finetune, "hwgen": _hwgen}[opts["method"]]
    metrics, names, sources = method(cfg, ctx, opts, space)
    task = cfg.get("task")
    published = dict(OmegaConf.to_container(task.published)) if task is not None and task.get("published") else {}
    differs = _comparable(cfg, opts, sources, names) if published else ""
    if differs:  # the task's figures are of its own protocol: beside another run they would mislead
        print(f"job=transfer: the published figures of task={task.get('name')} ({PUBLISHED_SAMPLES} samples on each of "
              f"its test devices) are not shown: {differs}")
        published = {}
    metrics = _summary(metrics, names, published)
    metrics["wall_seconds"] = time.perf_counter() - t0
    _print_table(opts["method"], names, metrics, published, metrics["wall_seconds"])
    return metrics
