"""The main job (``hwnas`` with no arguments): the whole device-aware NAS story on this machine.

Stages, each one ordinary job run in ``<run dir>/stages/<n>_<job>/`` with its own config and
``metrics.json``:

1. ``train_supernet``  — the tiny weight-sharing supernet (progressive shrinking) on the data;
2. ``eval_subnets``    — accuracy of N sampled subnets (the accuracy dataset);
3. ``measure``         — latency of M sampled subnets on the local device (the latency dataset);
4. ``build_lut``       — the layer lookup table of the space on the same device;
5. ``train_predictor`` — the learned latency predictor on the measured subnets;
6. ``evaluate``        — lookup table, FLOPs and predictor side by side on held-out subnets;
7. ``search``          — accuracy predictor (trained on 2) x latency estimator, one search per
   latency budget, every pick and the Pareto front verified by measuring it on the device.

A stage whose ``metrics.json`` exists with the same stage config is skipped, so rerunning with the
same ``hydra.run.dir`` continues an interrupted pipeline at the stage that did not finish (and
that stage resumes inside itself: checkpoints, appended rows).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from hwnas.errors import ConfigError
from hwnas.options import count
from hwnas.io import write_csv
from hwnas.search.margin import parse_margin

#: groups and top-level keys whose user overrides do not reach a stage that sets them itself
#: the run dir entry this job keeps consistent itself (per-stage records), which a changed pipeline config
#: therefore does not move aside as a whole: only the stages whose config changed rerun
KEEPS = ("stages",)

GROUPS = ("search_space", "device", "estimator", "search_strategy", "accuracy", "data", "supernet", "task", "trainer",
          "logger", "paths")


@dataclass
class Stage:
    job: str
    overrides: list[str]
    tag: str = ""

    def name(self, i: int) -> str:
        return f"{i}_{self.job}" + (f"_{self.tag}" if self.tag else "")


def _flat(prefix: str, node) -> list[str]:
    """``key=value`` overrides reproducing ``node`` under ``prefix`` (nested nodes key by key; lists, scalars)."""
    out = []
    for key, value in OmegaConf.to_container(node, resolve=True).items():
        if key.startswith("_") and prefix.count(".") == 0:
            continue
        if isinstance(value, dict) and value:
            out += _flat(f"{prefix}.{key}", OmegaConf.create(value))
        else:
            out.append(f"{prefix}.{key}={json.dumps(value) if isinstance(value, (list, dict)) else _scalar(value)}")
    return out


def _scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if not isinstance(value, str) else f"'{value}'"


#: groups whose choice in the pipeline's run every stage inherits (the others each stage sets itself)
INHERITED_CHOICES = ("search_strategy", "accuracy", "data", "supernet", "trainer", "logger", "paths")


def _choice(group: str, default: str) -> str:
    """The option of ``group`` this run composed (``device=onnxruntime``), or ``default`` outside Hydra."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.choices.get(group) or default)
    return default


def _user_overrides(cfg: DictConfig) -> list[str]:
    """What every stage inherits: the pipeline run's group choices, then its command-line overrides
    (minus the pipeline's own)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        hc = HydraConfig.get()
        choices = [f"{g}={hc.runtime.choices[g]}" for g in INHERITED_CHOICES
                   if hc.runtime.choices.get(g) not in (None, "null")]
        given = [o for o in hc.overrides.task if _inherited_value(o)]
    else:
        choices, given = [], list(cfg.pipeline.get("overrides") or [])
    return choices + [o for o in given if not _top(o).startswith(("job", "pipeline"))]


def _inherited_value(override: str) -> bool:
    """Whether a stage inherits this command-line override as it is: any dotted key
    (``search.threads=2``, ``~search.plot``), or a top-level ``key=value`` that is neither a group choice
    the stages inherit from the run's choices (``search_strategy=nsga2``) nor a ``group/option`` one."""
    key = override.split("=", 1)[0]
    if "." in key:
        return True
    return "=" in override and "/" not in key and _top(override) not in INHERITED_CHOICES


def _top(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~").split(".", 1)[0].split("@", 1)[0]


def _compose(overrides: list[str]) -> DictConfig:
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose(config_name="config", overrides=overrides)
    with initialize_config_module(config_module="hwnas.conf", version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def stage_config(stage: Stage, user: list[str]) -> DictConfig:
    """The stage's job config: the user's overrides, except where the stage sets that group itself.

    Options of one job's section (``+train_supernet.calibration_images=128`` on the pipeline's
    command line) reach that job's stage only.
    """
    from hwnas.jobs import list_jobs

    jobs = set(list_jobs())
    owned = {_top(o) for o in stage.overrides}
    inherited = []
    for o in user:
        top = _top(o)
        if top in jobs:
            if top == stage.job:
                inherited.append(o.lstrip("+"))
        elif top not in owned or top not in GROUPS:
            inherited.append(o)
    return _compose([f"job={stage.job}", *inherited, *stage.overrides])


def run_stage(i: int, stage: Stage, user: list[str], ctx, log: list[dict], upstream: str = "") -> tuple[dict, str]:
    """Run one stage in its folder, or reuse its finished result; returns its metrics and its key.

    A stage's key (its run record's fingerprint, :mod:`hwnas.runs`) hashes its config and the key of
    the stage before it, so a stage that reran (new data) makes every later stage rerun too, and
    the outputs of its earlier run are moved aside before it does.
    """
    from hwnas import runs
    from hwnas.jobs import run_job

    cfg = stage_config(stage, user)
    folder = ctx.path("stages") / stage.name(i)
    key = runs.fingerprint(OmegaConf.to_container(cfg, resolve=True), upstream)
    record, metrics_file = runs.read_record(folder) or {}, folder / "metrics.json"
    if metrics_file.exists() and record.get("fingerprint") == key and record.get("status") == "finished":
        print(f"pipeline: stage {stage.name(i)}: finished earlier, reused ({folder})")
        metrics = json.loads(metrics_file.read_text())
        log.append({"stage": stage.name(i), "seconds": 0.0, "reused": True})
        return metrics, key
    print(f"pipeline: stage {stage.name(i)} ...", flush=True)
    t0 = time.perf_counter()
    metrics = run_job(cfg, run_dir=folder, tracker=ctx.tracker, prefix=f"{stage.name(i)[len(str(i)) + 1:]}/",
                      identity=upstream)
    seconds = time.perf_counter() - t0
    log.append({"stage": stage.name(i), "seconds": seconds, "reused": False})
    return metrics, key


def _margin(value, held_out_csv: Path) -> list[str]:
    """The search stage's margin: a number as given; ``auto``: the search estimator's measured error on
    the subnets the latency predictor was tested on (stage 5's held-out split, measured in stage 3)."""
    margin = parse_margin(value)
    if margin == "auto":
        return ["search.latency_margin=auto", f"search.margin_data={held_out_csv}"]
    return [f"search.latency_margin={margin}"]


def _budgets(cfg, latency_csv: Path) -> list[float]:
    given = cfg.pipeline.get("latency_budgets")
    if given:
        return [float(b) for b in given]
    lat = pd.read_csv(latency_csv)["latency_ms"].to_numpy()
    qs = [float(q) for q in cfg.pipeline.budget_quantiles]
    return [float(f"{b:.3g}") for b in np.quantile(lat, qs)]


COMPARABLE = ("flops", "lut", "lut_calibrated", "predictor")
SEARCH_LATENCY = ("predictor", "lut")


def _check_options(p) -> None:
    """Every pipeline option checked before the first stage spends minutes."""
    for est in p.compare:
        if est not in COMPARABLE:
            raise ConfigError(f"pipeline.compare item {est!r} is not allowed; allowed: {', '.join(COMPARABLE)}")
    if p.latency_estimator not in SEARCH_LATENCY:
        raise ConfigError(f"pipeline.latency_estimator = {p.latency_estimator!r} is not allowed; "
                          f"allowed: {', '.join(SEARCH_LATENCY)}")
    for key in ("accuracy_samples", "latency_samples"):
        if int(p[key]) < 10:
            raise ConfigError(f"pipeline.{key} = {p[key]} must be >= 10 (a predictor learns from them)")
    if not p.get("latency_budgets"):
        qs = [float(q) for q in p.budget_quantiles]
        if not qs or any(not 0 < q < 1 for q in qs):
            raise ConfigError(f"pipeline.budget_quantiles = {qs} must be fractions in (0, 1)")
    elif any(float(b) <= 0 for b in p.latency_budgets):
        raise ConfigError(f"pipeline.latency_budgets = {list(p.latency_budgets)} must be > 0 ms")
    if parse_margin(p.latency_margin) == "auto":
        from hwnas.predictors.data import split_indices  # (Lightning: imported only when needed)

        n = int(p.latency_samples)
        held = len(split_indices(n, [0.7, 0.15, 0.15], 0)[2])  # job=train_predictor's (default) test split
        if held < 10:
            raise ConfigError(f"pipeline.latency_margin=auto measures the latency model's error on the 15 % of "
                              f"pipeline.latency_samples = {n} held out of its training ({held} subnets); at least "
                              f"10 are needed: raise latency_samples to >= 67 or give a fixed margin, e.g. 0.05")


def run(cfg, ctx) -> dict[str, float]:
    p = cfg.pipeline
    if str(cfg.search_space.name) not in ("ofa_mbv3", "compofa_fixed", "compofa_elastic"):
        raise ConfigError(f"the pipeline trains a weight-sharing supernet: search_space = {cfg.search_space.name!r} is "
                          f"not allowed; allowed: ofa_mbv3, compofa_fixed, compofa_elastic (for nb201/fbnet, run "
                          f"job=search with a table device)")
    kind = str(cfg.device.get("kind", ""))
    if kind not in ("cpu", "cuda"):
        raise ConfigError(f"the pipeline measures latency on this machine: device = "
                          f"{cfg.device.get('source') or cfg.device.get('path') or cfg.device.get('_target_')!r} "
                          f"is not allowed; allowed: local_cpu, local_cuda, onnxruntime, onnxruntime_int8, openvino, litert")
    _check_options(p)
    user = _user_overrides(cfg)
    # the space of every stage: the configured one with the pipeline's (tiny) settings, except what the
    # command line sets explicitly
    given = [o.lstrip("+~") for o in user if o.lstrip("+~").startswith("search_space.")]
    space = _flat("search_space", OmegaConf.merge(cfg.search_space, p.get("space") or {})) + given
    dev = _flat("device", cfg.device)
    stages_dir = ctx.path("stages")
    log: list[dict] = []
    t0 = time.perf_counter()
    out: dict[str, float] = {}

    chain = [""]

    def stage(i, job, overrides, tag=""):
        st = Stage(job, overrides, tag)
        metrics, chain[0] = run_stage(i, st, user, ctx, log, chain[0])
        label = job + (f"_{tag}" if tag else "")
        out.update({f"{label}/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})
        return stages_dir / st.name(i)

    sn = stage(1, "train_supernet", [*space, *p.supernet_overrides])
    # each stage's output file lies in its own folder, so a stage that reruns on a changed config starts
    # from an empty file (hwnas.runs moves the old one aside with its identity record)
    folder = lambda i, job: stages_dir / Stage(job, []).name(i)  # noqa: E731
    acc_csv, lat_csv = folder(2, "eval_subnets") / "accuracy.csv", folder(3, "measure") / "latency.csv"
    lut, predictor = folder(4, "build_lut") / "lut.yaml", folder(5, "train_predictor") / "latency_predictor.pt"
    n_fit = int(round(0.7 * int(p.latency_samples)))
    extra = {"lut": ["estimator=lut", f"estimator.path={lut}", "estimator.statistic=median"],
             "lut_calibrated": ["estimator=lut", f"estimator.path={lut}", "estimator.statistic=median",
                                "estimator.calibrate=per_resolution", f"estimator.fit_samples={n_fit}"],
             "flops": ["estimator=flops", f"estimator.fit_samples={n_fit}"],
             "predictor": ["estimator=predictor", f"estimator.fit_samples={n_fit}", *p.predictor_overrides]}
    latency = {"predictor": ["estimator=predictor", f"estimator.checkpoint={predictor}"],
               "lut": ["estimator=lut", f"estimator.path={lut}", "estimator.statistic=median"]}
    stage(2, "eval_subnets", [f"eval_subnets.checkpoint={sn / 'supernet.pt'}", f"eval_subnets.n={int(p.accuracy_samples)}",
                              f"eval_subnets.output={acc_csv}"])
    on_device = [*space, f"device={_choice('device', f'local_{kind}')}", *dev]
    stage(3, "measure", [*on_device, f"measure.n={int(p.latency_samples)}", f"measure.output={lat_csv}",
                         f"measure.noise_subset={count(p.noise_subset, 'pipeline.noise_subset', 0, int(p.latency_samples), why='measured subnets re-measured for the noise floor')}"])
    stage(4, "build_lut", [*on_device, f"build_lut.output={lut}"])
    table = [*space, "device=table", f"device.path={lat_csv}"]
    trained = stage(5, "train_predictor", [*table, "estimator=predictor", f"train.output={predictor}", *p.predictor_overrides])
    for est in p.compare:
        stage(6, "evaluate", [*table, *extra[est], f"evaluate.train_samples={n_fit}"], tag=est)
    budgets = _budgets(cfg, lat_csv)  # after measuring: the default budgets are quantiles of the measurements
    # picks are verified beside the measured dataset's probes, divided by the drift since (hwnas.measure.probes)
    probes = folder(3, "measure") / "noise_floor.csv"
    reference = [f"device.reference={probes}"] if probes.exists() else []
    found = stage(7, "search", [*on_device, *reference, *latency[p.latency_estimator], "accuracy=predictor",
                                f"accuracy.fit_data={acc_csv}", f"search.latency_budgets={json.dumps(budgets)}",
                                "search.verify=true", *_margin(p.latency_margin, trained / "predictions.csv"),
                                *p.search_overrides])
    out["pipeline_seconds"] = time.perf_counter() - t0
    write_csv(ctx.path("stages.csv"), ["stage", "seconds", "reused"],
              [[r["stage"], f"{r['seconds']:.1f}", int(r["reused"])] for r in log])
    _summary(found / "picks.csv", found / "front.png", ctx)
    return out


def _summary(picks_csv: Path, png: Path, ctx) -> None:
    picks = pd.read_csv(picks_csv)
    rows = []
    for _, r in picks.iterrows():
        if not isinstance(r["arch"], str) or not r["arch"]:
            rows.append([f"{r['budget_ms']:g}", "-", "-", "-", "-", "(no architecture meets this budget)"])
            continue
        ok = "yes" if r.get("true_latency_ms", np.nan) <= r["budget_ms"] else "NO"
        rows.append([f"{r['budget_ms']:g}", f"{r['accuracy']:.2f}", f"{r['predicted_latency_ms']:.3f}",
                     f"{r.get('true_latency_ms', float('nan')):.3f}", ok, str(r["arch"])])
    head = ["budget ms", "pred. acc %", "pred. ms", "measured ms", "within", "arch"]
    write_csv(ctx.path("summary.csv"), head, rows)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head[:-1])]
    print("\n" + "  ".join(h.rjust(w) for h, w in zip(head, widths)) + "  arch")
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    print(f"\nPareto front: {png}; every stage: {ctx.path('stages')}")
