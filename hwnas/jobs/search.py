"""Hardware-aware search: the most accurate architecture under each latency budget, and the
accuracy-latency Pareto front; with ``search.verify=true`` both re-scored against the device."""
from __future__ import annotations

import time

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hwnas.errors import ConfigError, choices_text
from hwnas.estimators.fitting import fit_from_config
from hwnas.io import write_csv
from hwnas.plots import pareto_plot
from hwnas.search.accuracy import default_accuracy
from hwnas.search.budgets import check_budgets, search_under_budgets
from hwnas.search.constraints import Constraint, SoftPenalty, formulation
from hwnas.search.device_check import check_on_device, check_value
from hwnas.options import count, number
from hwnas.search.margin import held_out, measure_margin, parse_margin
from hwnas.search.objectives import (COSTS, accuracy_metric, cost_metrics, device_latency_metric, latency_metric,
                                     upper_latency_metric)
from hwnas.search.problem import SearchProblem
from hwnas.search.verify import hv_ratio, pick_records, true_latency, verify

LATENCY_SOURCES = ("estimator", "device")
#: search.latency_margin=auto measures a quantile: hwnas.search.margin.held_out needs >= 10 architectures.
MIN_MARGIN_SAMPLES = 10
#: Per-budget record fields reported in metrics.json as ``budget_<b>ms/<field>``.
BUDGET_METRICS = ("accuracy", "predicted_latency_ms", "true_latency_ms", "violation", "violation_pct",
                  "underestimate_pct", "checked_latency_ms", "true_accuracy", "optimum_accuracy", "regret")


def _plain(node):
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _fmt(v, digits: int = 4) -> str:
    if isinstance(v, str):
        return v
    return "" if v is None or not np.isfinite(v) else f"{v:.{digits}g}"


def hv_reference(value) -> tuple[float, float] | None:
    """``search.hv_reference``: ``[accuracy %, latency ms]`` (accuracy in [0, 100], latency > 0), or None."""
    if value is None:
        return None
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ConfigError(f"search.hv_reference = {value!r} must be [accuracy %, latency ms] or null")
    return (number(value[0], "search.hv_reference[0] (accuracy %)", 0.0, 100.0),
            number(value[1], "search.hv_reference[1] (latency ms)", 0.0, exclusive_minimum=True))


def interval_label(estimator) -> str:
    """The latency label of ``latency_margin=uncertainty``; a ConfigError for an estimator without error bars."""
    hp = getattr(getattr(estimator, "module", None), "hparams", None)
    coverage = float(hp.get("interval") or 0.0) if hp is not None else 0.0
    if not coverage:
        raise ConfigError(f"search.latency_margin=uncertainty searches under each architecture's error bar, and "
                          f"estimator={estimator.label} has none: train a predictor with estimator.interval=0.9 "
                          f"(job=train_predictor calibrates it) and give estimator.checkpoint=<its predictor.pt>")
    method = hp.get("interval_method", "quantile")
    how = (f"CV+ over {int(hp.interval_cv['folds'])} folds of its {len(hp.interval_cv['residuals'])} training samples"
           if method == "cv_plus" and hp.get("interval_cv") else
           f"calibration offset {float(hp.get('interval_offset', 0.0)):+.3g}")
    return f"estimator={estimator.label}, upper end of its {coverage:.0%} {method} interval ({how})"


def run(cfg, ctx) -> dict[str, float]:
    s = cfg.search
    budgets = check_budgets(_plain(s.latency_budgets))
    hard = formulation(s.constraint)
    penalty = SoftPenalty.from_config(_plain(s.get("penalty")))
    limits = {k: v for k, v in (_plain(s.get("limits")) or {}).items() if v is not None}
    unknown = [k for k in limits if k not in COSTS]
    if unknown:
        raise ConfigError(f"search.limits.{unknown[0]} is not a constrainable cost; allowed: {choices_text(COSTS)}")
    limits = {k: number(v, f"search.limits.{k}", 0.0, exclusive_minimum=True, hint=" (null: no limit)")
              for k, v in limits.items()}
    threads = count(s.get("threads"), "search.threads", 1, allow_none=True,
                    why="torch intra-op threads while searching; null: torch's default")
    hv_ref = hv_reference(_plain(s.get("hv_reference")))
    if s.latency_source not in LATENCY_SOURCES:
        raise ConfigError(f"search.latency_source = {s.latency_source!r} is not allowed; "
                          f"allowed: {choices_text(LATENCY_SOURCES)}")
    margin = parse_margin(s.get("latency_margin"))
    checks = check_value(0 if s.get("device_check") is None else s.get("device_check"))
    if margin in ("auto", "uncertainty") and s.latency_source != "estimator":
        raise ConfigError(f"search.latency_margin={margin} reads an estimator's error: it needs "
                          f"search.latency_source=estimator")
    if margin in ("auto", "uncertainty"):
        samples = count(s.get("margin_samples", 500), "search.margin_samples", MIN_MARGIN_SAMPLES,
                        why="held-out architectures the margin's quantile (or the interval's calibration) is "
                            "measured on")
    if margin == "auto":
        quantile = number(s.get("margin_quantile", 0.95), "search.margin_quantile", hint=" in (0, 1), e.g. 0.95")
        if not 0.0 < quantile < 1.0:
            raise ConfigError(f"search.margin_quantile = {quantile} must lie in (0, 1), e.g. 0.95")
    space = instantiate(cfg.search_space)
    strategy = instantiate(cfg.search_strategy)
    device = instantiate(cfg.device)

    # ---- objectives and constraints
    extra_metrics: dict[str, float] = {}
    source = (instantiate(cfg.accuracy) if cfg.get("accuracy") is not None
              else default_accuracy(space, cfg.paths.get("data_dir")))
    source.prepare(space, ctx.run_dir)
    if s.latency_source == "estimator":
        estimator = fit_from_config(instantiate(cfg.estimator), space, device)
        latency, latency_label = latency_metric(estimator, space), f"estimator={estimator.label}"
        if margin == "uncertainty":
            interval_label(estimator)  # (an estimator without error bars stops here)
            # fitted by this job: calibrated on architectures it has not seen (cv_plus needs none: its folds did)
            if getattr(estimator, "fit_keys", None) and getattr(estimator, "needs_calibration", True):
                archs, true_ms = held_out(estimator, space, device, s.get("margin_data"), samples,
                                          int(cfg.get("seed", 0)))
                extra_metrics.update(interval_offset=estimator.calibrate_interval(space, archs, true_ms),
                                     interval_calibration_n=len(archs))
            latency, latency_label, margin = upper_latency_metric(estimator, space), interval_label(estimator), 0.0
    else:
        estimator = None
        latency, latency_label = device_latency_metric(device, space), f"device={device.name}"
    costs = cost_metrics(space, list(limits))
    problem = SearchProblem(space, [accuracy_metric(source, space), latency],
                            [(costs[k], Constraint(k, float(v), hard)) for k, v in limits.items()], penalty)

    if margin == "auto":
        archs, true_ms = held_out(estimator, space, device, s.get("margin_data"), samples, int(cfg.get("seed", 0)))
        measured = measure_margin(estimator, space, archs, true_ms, quantile)
        margin, extra_metrics = measured.margin, measured.metrics()
        print(f"latency margin {margin:.1%}: the {measured.quantile:.0%} quantile of estimator={estimator.label}'s "
              f"underestimate on {len(archs)} held-out measured architectures (median |error| "
              f"{extra_metrics['margin_median_abs_error_pct']:.1f} %)")

    # ---- search
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        t0 = time.perf_counter()
        found = search_under_budgets(strategy, space, problem, latency, budgets, hard, margin)
        search_seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(previous_threads)
    result, picks = found.result, found.picks
    checked_ms: dict[str, float] = {}
    if checks:
        t0 = time.perf_counter()
        done = check_on_device(picks, result, lambda archs: true_latency(device, space, archs), checks)
        picks, checked_ms = done.picks, done.measured
        extra_metrics.update(done.metrics(), device_check_seconds=time.perf_counter() - t0)
    front = result.front()
    front = front[np.argsort(result.objectives["latency_ms"][front], kind="stable")]
    front_archs = [result.archs[i] for i in front]
    front_keys = [result.keys[i] for i in front]
    acc, lat = result.objectives["accuracy"][front], result.objectives["latency_ms"][front]

    # ---- costs and ground truth
    cost_of: dict[str, dict[str, float]] = {}
    if s.get("costs", True):
        union = {p.key: p.arch for p in picks if p.arch is not None} | dict(zip(front_keys, front_archs))
        table = space.costs(list(union.values()))
        cost_of = {k: {c: float(table[c][i]) for c in COSTS} for i, k in enumerate(union)}
    verify_front = s.get("verify_front")
    if verify_front not in (None, True, False):
        raise ConfigError(f"search.verify_front = {verify_front!r} is not allowed; allowed: null, true, false")
    checked = verify(space, device, source, picks, front_archs, front_keys, verify_front) if s.verify else None
    records = pick_records(picks, checked, cost_of)
    if checks:  # the measurement that chose the pick (verification measures it again)
        for r in records:
            r["checked_latency_ms"] = checked_ms.get(r["arch"], np.nan)

    metrics: dict[str, float] = {"search_seconds": search_seconds, **found.stats, "n_evaluated": len(result.archs),
                                 "front_size": len(front), "n_budgets": len(budgets),
                                 "n_found": sum(p.arch is not None for p in picks), "latency_margin": margin,
                                 **extra_metrics}
    for r in records:
        tag = f"budget_{r['budget_ms']:g}ms"
        metrics[f"{tag}/found"] = int(bool(r["arch"]))
        metrics.update({f"{tag}/{k}": r[k] for k in BUDGET_METRICS if k in r and np.isfinite(r[k])})
    true_front = None
    if checked is not None:
        violation = np.array([r["violation"] for r in records])
        metrics["violations"] = int(np.nansum(violation))
        metrics["max_violation_pct"] = float(np.nanmax([r["violation_pct"] for r in records] + [0.0]))
        under = np.array([r["underestimate_pct"] for r in records])
        metrics["beyond_margin"] = int(np.sum(under[np.isfinite(under)] > margin * 100))
        regrets = [r["regret"] for r in records if np.isfinite(r.get("regret", np.nan))]
        if regrets:
            metrics.update(mean_regret=float(np.mean(regrets)), max_regret=float(np.max(regrets)))
        truth = checked.truth
        if truth is not None:
            ref = hv_ref or truth.reference(budgets)
            ratio, hv_found, hv_true = hv_ratio(checked.front_accuracy, checked.front_latency_ms, truth, ref)
            metrics.update(hv_ratio=ratio, hv_found=hv_found, hv_true=hv_true, hv_ref_accuracy=ref[0],
                           hv_ref_latency_ms=ref[1])
            tf = truth.front()
            tf = tf[truth.latency_ms[tf] <= 1.5 * max(budgets)]
            true_front = (truth.latency_ms[tf], truth.accuracy[tf])

    # ---- outputs
    pick_columns = list(records[0])
    pick_rows = [[_fmt(r[c]) if c != "budget_ms" else f"{r[c]:g}" for c in pick_columns] for r in records]
    front_columns = ["arch", "accuracy", "predicted_latency_ms", *(COSTS if cost_of else ())]
    front_columns += ["true_latency_ms", "true_accuracy"] if checked is not None else []
    front_rows = []
    for j, key in enumerate(front_keys):
        row = [key, _fmt(acc[j]), _fmt(lat[j]), *(_fmt(cost_of[key][c]) for c in COSTS if cost_of)]
        if checked is not None:
            row += [_fmt(checked.front_latency_ms[j]), _fmt(checked.front_accuracy[j])]
        front_rows.append(row)
    write_csv(ctx.path("picks.csv"), pick_columns, pick_rows)
    write_csv(ctx.path("front.csv"), front_columns, front_rows)
    ctx.tracker.log_table("picks", pick_columns, pick_rows)
    ctx.tracker.log_table("front", front_columns, front_rows)
    where = f"search={strategy.name} on {space.name}, device {device.name}"
    ctx.tracker.log_scatter("front_scatter", front_columns, front_rows, "predicted_latency_ms", "accuracy",
                            title=f"Pareto front ({where})")
    if "true_latency_ms" in front_columns:
        ctx.tracker.log_scatter("front_verified", front_columns, front_rows, "true_latency_ms", "true_accuracy",
                                title=f"Pareto front, verified ({where})")
    if s.get("plot", True):
        png = pareto_plot(ctx.path("front.png"), lat, acc, budgets,
                          np.array([r["predicted_latency_ms"] for r in records]),
                          np.array([r["accuracy"] for r in records]), true_front=true_front,
                          verified=(checked.front_latency_ms, acc) if checked is not None else None,
                          latency_label=f"latency (ms), {latency_label}",
                          title=f"search={strategy.name} on {space.name}, device {device.name}")
        ctx.tracker.log_image("pareto_front", png)
    _print_summary(f"search={strategy.name} on {space.name} (accuracy={source.name}, latency {latency_label})",
                   records, metrics)
    return metrics


def _print_summary(title: str, records: list[dict], metrics: dict) -> None:
    head = (f"{title}: {metrics['n_evaluated']:,} architectures in {metrics['search_seconds']:.1f} s, cache hit rate "
            f"{metrics['cache_hit_rate']:.1%}, front of {metrics['front_size']}")
    if "hv_ratio" in metrics:
        head += f", hypervolume ratio {metrics['hv_ratio']:.3f}"
    print(head)
    shown = {"budget_ms": "budget_ms", "accuracy": "accuracy", "predicted_latency_ms": "pred_ms",
             "true_latency_ms": "true_ms", "violation": "over", "regret": "regret", "arch": "arch"}
    cols = [c for c in shown if c in records[0]]
    lines = [[shown[c] for c in cols]]
    for r in records:
        row = []
        for c in cols:
            if c == "arch":
                row.append(r[c][:90] or "(nothing met the budget)")
            elif c == "violation":
                row.append("" if not np.isfinite(r[c]) else ("YES" if r[c] else "no"))
            else:
                row.append(f"{r[c]:g}" if c == "budget_ms" else _fmt(r[c], 4 if c != "regret" else 3))
        lines.append(row)
    widths = [max(len(line[i]) for line in lines) for i in range(len(cols))]
    for line in lines:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip())
