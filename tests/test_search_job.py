"""``hwnas job=search`` end to end with tiny settings, composed as the CLI composes it.

A search may reach any of NB201's 15,625 cells, so the jobs run on a benchmark that covers them all
(``nb201_model``: accuracy and latency tables fitted on the data root's first 300 rows, see
tests/nb201_surrogate.py; the same in fixture and full mode). With a device table and an accuracy table
that list every cell, a job computes regret and the hypervolume ratio by enumeration as it does on the
real tables; ``test_search_job_on_the_real_tables`` runs it on those (full data only).
"""
from __future__ import annotations

import csv
import json

import pytest

import nb201_surrogate
from hwnas.cli import _user_error
from hwnas.errors import ConfigError
from hwnas.jobs import run_job

NB201_PIXEL3 = ["job=search", "search_space=nb201", "device=help", "device.column=pixel3", "logger=csv"]


@pytest.fixture(scope="module")
def surrogate(tmp_path_factory):
    return nb201_surrogate.for_session(tmp_path_factory)


@pytest.fixture
def nb201_model(surrogate):
    """``job=search`` on NB201 with the whole-space surrogate as device (pixel3) and accuracy table."""
    return ["job=search", *surrogate.overrides("pixel3"), "logger=csv"]


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


EVOLUTION = ["search_strategy=evolution", "search_strategy.population=20", "search_strategy.generations=8"]
NSGA2 = ["search_strategy=nsga2", "search_strategy.population=24", "search_strategy.generations=8"]


@pytest.mark.parametrize("options", [EVOLUTION, NSGA2], ids=["evolution", "nsga2"])
def test_search_job_writes_picks_front_plot_and_metrics(compose_cfg, tmp_path, data_dir, nb201_model, options):
    _check_search_outputs(compose_cfg(*nb201_model, f"paths.data_dir={data_dir}", *options, "estimator=flops",
                                      "search.latency_budgets=[5,12.5]", "search.verify=true"), tmp_path / "run")


def test_search_job_on_the_real_tables(compose_cfg, tmp_path, full_data_dir):
    """HELP's Pixel 3 table and NB201's CIFAR-10 accuracy (the default of nb201): regret and hypervolume ratio
    against the true optimum and front of the real benchmark."""
    _check_search_outputs(compose_cfg(*NB201_PIXEL3, f"paths.data_dir={full_data_dir}", *NSGA2, "estimator=flops",
                                      "search.latency_budgets=[5,12.5]", "search.verify=true"), tmp_path / "run")


def _check_search_outputs(cfg, run):
    metrics = run_job(cfg, run_dir=run)
    saved = json.loads((run / "metrics.json").read_text())
    for key in ("budget_5ms/accuracy", "budget_5ms/true_latency_ms", "budget_5ms/violation", "budget_5ms/regret",
                "budget_12.5ms/predicted_latency_ms", "hv_ratio", "search_seconds", "cache_hit_rate", "violations",
                "max_violation_pct"):
        assert key in saved, key
    assert 0 < saved["hv_ratio"] <= 1.0 + 1e-9
    assert saved["budget_5ms/regret"] >= 0 and saved["budget_12.5ms/regret"] >= 0
    assert saved["budget_5ms/predicted_latency_ms"] <= 5.0  # hard constraint on the estimate
    picks = _rows(run / "picks.csv")
    assert [float(r["budget_ms"]) for r in picks] == [5.0, 12.5]
    assert {"arch", "accuracy", "predicted_latency_ms", "flops", "true_latency_ms", "regret"} <= set(picks[0])
    front = _rows(run / "front.csv")
    assert len(front) == saved["front_size"] > 1
    assert (run / "front.png").read_bytes()[:4] == b"\x89PNG"
    assert metrics["cache_hit_rate"] == saved["cache_hit_rate"]


def test_search_job_on_the_device_latency_has_no_violations(compose_cfg, tmp_path, data_dir, nb201_model):
    cfg = compose_cfg(*nb201_model, f"paths.data_dir={data_dir}", "search_strategy=evolution",
                      "search_strategy.population=20", "search_strategy.generations=10", "search.latency_source=device",
                      "search.latency_budgets=[8]", "search.latency_margin=0.25", "search.verify=true",
                      "search.plot=false", "search.costs=false")
    metrics = run_job(cfg, run_dir=tmp_path / "run")
    assert metrics["violations"] == 0 and metrics["budget_8ms/true_latency_ms"] <= 6  # searched under 8 x 0.75
    assert not (tmp_path / "run" / "front.png").exists()


def test_exhaustive_search_on_exact_latencies_has_zero_regret_on_every_budget(compose_cfg, tmp_path, data_dir, nb201_model):
    """Every cell evaluated with the device's own latencies and the accuracy table: each pick is the optimum."""
    budgets = [3, 5, 8, 12.5]
    cfg = compose_cfg(*nb201_model, f"paths.data_dir={data_dir}", "search_strategy=exhaustive",
                      "search.latency_source=device", f"search.latency_budgets=[{','.join(map(str, budgets))}]",
                      "search.verify=true", "search.plot=false")
    m = run_job(cfg, run_dir=tmp_path / "run")
    for b in budgets:
        assert m[f"budget_{b}ms/regret"] == 0 and m[f"budget_{b}ms/violation"] == 0
    assert m["hv_ratio"] == pytest.approx(1.0)
    from hwnas.search.exhaustive import ExhaustiveSearch
    from hwnas.spaces import get_space

    with pytest.raises(ConfigError, match="search_strategy=exhaustive: ofa_mbv3 has .* architectures, more than"):
        ExhaustiveSearch().run(get_space("ofa_mbv3"), lambda archs: {"latency": [1.0] * len(archs)})


def test_auto_margin_is_the_estimators_measured_error(compose_cfg, tmp_path, data_dir, nb201_model):
    """latency_margin=auto: the 95 % quantile of the FLOPs model's underestimate on pixel3 cells it was not
    fitted on; the search runs under budget x (1 - margin), and a pick can only violate beyond it."""
    cfg = compose_cfg(*nb201_model, f"paths.data_dir={data_dir}", "search_strategy.population=20",
                      "search_strategy.generations=8", "estimator=flops", "search.latency_budgets=[8,12]",
                      "search.latency_margin=auto", "search.margin_samples=300", "search.verify=true",
                      "search.plot=false", "seed=3")
    metrics = run_job(cfg, run_dir=tmp_path / "run")
    assert metrics["margin_n"] == 300 and metrics["margin_quantile"] == 0.95
    assert 0.05 < metrics["latency_margin"] < 0.9  # FLOPs is a rough model of a phone
    for b in (8, 12):
        assert metrics[f"budget_{b}ms/predicted_latency_ms"] <= b * (1 - metrics["latency_margin"]) + 1e-9
        under = metrics[f"budget_{b}ms/underestimate_pct"]
        if metrics[f"budget_{b}ms/violation"]:
            assert under > metrics["latency_margin"] * 100
    assert metrics["beyond_margin"] >= metrics["violations"]
    picks = _rows(tmp_path / "run" / "picks.csv")
    assert "underestimate_pct" in picks[0]


def test_auto_margin_from_a_held_out_csv(compose_cfg, tmp_path, data_dir, nb201_model):
    """margin_data: measured architectures as a latency CSV; the margin equals the quantile computed by hand."""
    import numpy as np
    from hydra.utils import instantiate

    from hwnas.estimators.fitting import fit_from_config

    base = compose_cfg(*nb201_model, f"paths.data_dir={data_dir}", "estimator=flops", "seed=1")
    space, device = instantiate(base.search_space), instantiate(base.device)
    archs, lat = device.dataset(space)
    idx = np.random.default_rng(0).choice(len(archs), size=40, replace=False)
    held = tmp_path / "held.csv"
    held.write_text("arch,latency_ms\n" + "".join(f'"{space.to_string(archs[i])}",{float(lat[i])!r}\n' for i in idx))
    cfg = compose_cfg(*nb201_model, f"paths.data_dir={data_dir}", "search_strategy.population=20",
                      "search_strategy.generations=5", "estimator=flops", "search.latency_budgets=[10]",
                      "search.latency_margin=auto", f"search.margin_data={held}", "search.margin_quantile=0.9",
                      "search.plot=false", "seed=1")
    metrics = run_job(cfg, run_dir=tmp_path / "run")
    est = fit_from_config(instantiate(base.estimator), space, device)  # the same fit (fit_seed = seed)
    keep = [i for i in idx if space.to_string(archs[i]) not in est.fit_keys]
    assert metrics["margin_n"] == len(keep) >= 30
    pred, true = est.predict(space, [archs[i] for i in keep]), lat[keep]
    expected = float(np.clip(np.quantile((true - pred) / true, 0.9), 0, 0.9))
    assert metrics["latency_margin"] == pytest.approx(expected, rel=1e-9)


def test_device_check_chooses_picks_by_measurement(compose_cfg, tmp_path, data_dir, nb201_model):
    """device_check: a FLOPs model with no margin overshoots gold_6226 budgets; measuring front members (bisection,
    at most 20 per budget; a table device: lookups) leaves only picks whose device latency meets the budget, each
    a member of the front."""
    common = [*nb201_model, "device.column=gold_6226", f"paths.data_dir={data_dir}", "search_strategy.population=30",
              "search_strategy.generations=10", "estimator=flops", "search.latency_budgets=[8,10,12]",
              "search.verify=true", "search.plot=false", "seed=0"]
    trusted = run_job(compose_cfg(*common), run_dir=tmp_path / "trusted")
    assert trusted["violations"] >= 1  # otherwise this test shows nothing
    checked = run_job(compose_cfg(*common, "search.device_check=20"), run_dir=tmp_path / "checked")
    assert checked["violations"] == 0 and checked["n_found"] >= 1 and 0 < checked["device_checks"] <= 60
    front = {r["arch"]: r for r in _rows(tmp_path / "checked" / "front.csv")}
    picks = {float(r["budget_ms"]): r for r in _rows(tmp_path / "checked" / "picks.csv")}
    for b in (8, 10, 12):
        if not checked[f"budget_{b}ms/found"]:
            continue
        true_ms = checked[f"budget_{b}ms/true_latency_ms"]
        assert checked[f"budget_{b}ms/checked_latency_ms"] == true_ms <= b  # a table: the same lookup
        assert 1 <= checked[f"budget_{b}ms/device_checked"] <= 20
        # the pick is a member of the front (the CSVs write accuracies to 4 significant digits)
        member = front[picks[b]["arch"]]
        assert member["accuracy"] == picks[b]["accuracy"] == f"{checked[f'budget_{b}ms/accuracy']:.4g}"


def test_device_check_bisects_the_front():
    """Along a front whose true latency rises with accuracy, the most accurate member within the budget is
    found with 1 + ceil(log2(n)) measurements; a budget its least accurate member misses gets no pick."""
    import math

    import numpy as np

    from hwnas.search.base import SearchResult
    from hwnas.search.budgets import Pick
    from hwnas.search.device_check import check_on_device

    n = 64
    acc = np.linspace(70, 80, n)
    predicted = np.linspace(5, 10, n)  # the model: 30 % too fast on every member
    true = predicted / 0.7
    result = SearchResult(list(range(n)), {"accuracy": acc, "latency_ms": predicted}, ("accuracy",),
                          keys=[str(i) for i in range(n)])
    calls = []

    def measure(archs):
        calls.extend(archs)
        return true[list(archs)]

    done = check_on_device([Pick(11.0, None, None, {}), Pick(7.0, None, None, {})], result, measure, k=20)
    best = int(np.flatnonzero(true <= 11.0).max())  # the most accurate member truly within 11 ms
    assert done.picks[0].arch == best and done.picks[0].values["accuracy"] == acc[best]
    assert done.tried[0] <= 1 + math.ceil(math.log2(n))
    assert done.picks[1].arch is None and done.tried[1] == 1  # 7 ms: even the least accurate is 7.1 ms
    assert len(calls) == len(set(calls)) == done.metrics()["device_checks"]  # each measured once


@pytest.mark.parametrize("overrides,needles", [
    (["search.latency_budgets=[]"], ["latency_budgets = []"]),
    (["search.latency_budgets=[5,-1]"], ["-1", "> 0"]),
    (["search.latency_budgets=[5]", "accuracy=nb201", "accuracy.dataset=cifar11"], ["cifar11", "imagenet16_120"]),
    (["search.latency_budgets=[5]", "search_strategy=evolution", "search_strategy.population=1"], ["population = 1"]),
    (["search.latency_budgets=[5]", "+search_strategy.popsize=3"], ["popsize", "population"]),
    (["search.latency_budgets=[5]", "search.constraint=medium"], ["medium", "hard, soft"]),
    (["search.latency_budgets=[5]", "search.latency_margin=1.5"], ["latency_margin = 1.5", "[0, 1)"]),
    (["search.latency_budgets=[5]", "search.latency_margin=sometimes"], ["sometimes", "auto"]),
    (["search.latency_budgets=[5]", "search.device_check=-2"], ["device_check = -2", "number of candidates"]),
    (["search.latency_budgets=[5]", "search.latency_margin=auto", "search.latency_source=device"],
     ["latency_margin=auto", "latency_source=estimator"]),
    (["search.latency_budgets=[5]", "search.latency_margin=auto", "estimator=flops", "search.margin_quantile=1.5"],
     ["margin_quantile = 1.5", "(0, 1)"]),
    (["search.latency_budgets=[5]", "+search.limits.macs=1"], ["macs", "flops"]),
])
def test_search_job_user_errors(compose_cfg, tmp_path, data_dir, overrides, needles):
    cfg = compose_cfg(*NB201_PIXEL3, f"paths.data_dir={data_dir}", "logger=none", *overrides)
    with pytest.raises(Exception) as err:
        run_job(cfg, run_dir=tmp_path / "run")
    error = _user_error(err.value)
    assert isinstance(error, ConfigError), repr(err.value)
    for needle in needles:
        assert needle in str(error)


def test_default_accuracy_is_chosen_by_space(data_dir):
    from hwnas.search.accuracy import NB201Accuracy, default_accuracy
    from hwnas.spaces import get_space

    assert isinstance(default_accuracy(get_space("nb201"), str(data_dir)), NB201Accuracy)
    with pytest.raises(ConfigError, match="fbnet.*accuracy=table"):
        default_accuracy(get_space("fbnet"), str(data_dir))


def test_default_accuracy_of_compofa_is_ofas_predictor(full_data_dir):
    """OFA's released predictor (ofa/acc_predictor.pth: one state dict, not in the fixture root)."""
    from hwnas.search.accuracy import OFAAccuracyPredictor, default_accuracy
    from hwnas.spaces import get_space

    assert isinstance(default_accuracy(get_space("compofa_fixed"), str(full_data_dir)), OFAAccuracyPredictor)


def test_benchmark_times_one_search(compose_cfg, tmp_path, data_dir, surrogate):
    # accuracy: the surrogate's table, which lists every cell the search reaches
    cfg = compose_cfg("job=benchmark", "search_space=nb201", *surrogate.accuracy_overrides(), "estimator=predictor",
                      "search_strategy=evolution",
                      "search_strategy.population=10", "search_strategy.generations=3", "benchmark.search=true",
                      "benchmark.n=200", "benchmark.repeats=1", "benchmark.threads=1", "logger=none",
                      f"paths.data_dir={data_dir}")
    metrics = run_job(cfg, run_dir=tmp_path / "run")
    assert metrics["search_seconds"] > 0 and metrics["search_distinct_archs"] >= 10
    assert 0 < metrics["search_best_accuracy"] <= 100


def test_search_job_verifies_picks_on_a_local_device(compose_cfg, tmp_path, data_dir, surrogate):
    """Local device: the pick is measured afresh; no ground truth, so no regret or hypervolume (the accuracy
    table is the surrogate's, which lists every cell)."""
    from hwnas.data.tables import load_nb201_latency

    table = load_nb201_latency(data_dir)
    lat = table.column("pixel3")
    fit = tmp_path / "fit.csv"
    fit.write_text("arch,latency_ms\n" + "".join(f"{a},{v}\n" for a, v in zip(table.archs[:200], lat[:200])))
    cfg = compose_cfg("job=search", "search_space=nb201", *surrogate.accuracy_overrides(), "device=local_cpu",
                      "device.repeats=2", "device.warmup=1",
                      "estimator=flops", f"estimator.fit_data={fit}", "search_strategy.population=8",
                      "search_strategy.generations=2", "search.latency_budgets=[10]", "search.verify=true",
                      "search.plot=false", "logger=none", f"paths.data_dir={data_dir}")
    metrics = run_job(cfg, run_dir=tmp_path / "run")
    assert metrics["budget_10ms/true_latency_ms"] > 0 and metrics["violations"] in (0, 1)
    assert "hv_ratio" not in metrics and "budget_10ms/regret" not in metrics
    picks = _rows(tmp_path / "run" / "picks.csv")
    assert float(picks[0]["true_latency_ms"]) == pytest.approx(metrics["budget_10ms/true_latency_ms"], rel=1e-3)


def test_uncertainty_margin_searches_under_each_architectures_interval(compose_cfg, tmp_path, data_dir, nb201_model):
    """latency_margin=uncertainty: the latency the search constrains is the upper end of a calibrated interval,
    so every pick's upper bound is within its budget, above the point prediction of the same predictor."""
    import numpy as np
    from hydra.utils import instantiate

    from hwnas.predictors import PredictorEstimator

    base = compose_cfg(*nb201_model, f"paths.data_dir={data_dir}")
    space, device = instantiate(base.search_space), instantiate(base.device)
    archs, lat = device.dataset(space)
    est = PredictorEstimator(hidden=[64], epochs=30, batch_size=64, interval=0.9, seed=0, progress_bar=False)
    est.fit(space, archs[:400], lat[:400])
    est.calibrate_interval(space, archs[400:600], lat[400:600])
    path = est.save(tmp_path / "p.pt")
    common = [*nb201_model, f"paths.data_dir={data_dir}", *EVOLUTION, "estimator=predictor",
              f"estimator.checkpoint={path}", "search.latency_budgets=[9]", "search.plot=false", "seed=1"]
    m = run_job(compose_cfg(*common, "search.latency_margin=uncertainty", "search.verify=true"), run_dir=tmp_path / "u")
    pick = _rows(tmp_path / "u" / "picks.csv")[0]
    upper = float(pick["predicted_latency_ms"])
    point = float(est.predict(space, space.from_strings([pick["arch"]]))[0])
    assert upper <= 9 + 1e-9 and upper > point and m["latency_margin"] == 0.0
    plain = PredictorEstimator(hidden=[64], epochs=1, seed=0, progress_bar=False).fit(space, archs[:50], lat[:50])
    no_bars = plain.save(tmp_path / "plain.pt")
    with pytest.raises(ConfigError, match="estimator=predictor \\(mlp\\) has none: train a predictor with estimator.interval"):
        run_job(compose_cfg(*nb201_model, f"paths.data_dir={data_dir}", *EVOLUTION, "estimator=predictor",
                            f"estimator.checkpoint={no_bars}", "search.latency_budgets=[9]",
                            "search.latency_margin=uncertainty"), run_dir=tmp_path / "bad")
    assert np.isfinite(m["budget_9ms/accuracy"])
    # fitted by the search job itself: calibrated on search.margin_samples table cells it was not fitted on
    fitted = run_job(compose_cfg(*nb201_model, f"paths.data_dir={data_dir}", *EVOLUTION, "estimator=predictor",
                                 "estimator.fit_samples=300", "estimator.interval=0.9", "estimator.epochs=20",
                                 "estimator.hidden=[64]", "estimator.progress_bar=false", "search.latency_budgets=[9]",
                                 "search.latency_margin=uncertainty", "search.margin_samples=200", "search.plot=false"),
                     run_dir=tmp_path / "fitted")
    assert fitted["interval_calibration_n"] == 200 and np.isfinite(fitted["interval_offset"])
    # error bars from the gap to a FLOPs fit on the same 300 samples: the pick's upper end, not its point, meets 12 ms
    gap = run_job(compose_cfg(*nb201_model, f"paths.data_dir={data_dir}", *EVOLUTION, "estimator=predictor",
                              "estimator.fit_samples=300", "estimator.interval=0.9", "estimator.interval_method=flops_gap",
                              "estimator.epochs=20", "estimator.hidden=[64]", "estimator.progress_bar=false",
                              "search.latency_budgets=[12]", "search.latency_margin=uncertainty", "search.margin_samples=200",
                              "search.plot=false"), run_dir=tmp_path / "gap")
    pick = _rows(tmp_path / "gap" / "picks.csv")[0]
    assert gap["interval_offset"] > 0 and float(pick["predicted_latency_ms"]) <= 12 + 1e-9
    # CV+ error bars: no held-out cells read (none calibrated, none needed), the pick's upper end meets the budget
    # (the surrogate's log latency spreads over 4 decades: 90 % intervals of a 300-sample MLP span ~10x)
    cv = run_job(compose_cfg(*nb201_model, f"paths.data_dir={data_dir}", *EVOLUTION, "estimator=predictor",
                             "estimator.fit_samples=300", "estimator.interval=0.9", "estimator.interval_method=cv_plus",
                             "estimator.epochs=30", "estimator.batch_size=32", "estimator.hidden=[64]",
                             "estimator.progress_bar=false", "search.latency_budgets=[30]",
                             "search.latency_margin=uncertainty", "search.plot=false"), run_dir=tmp_path / "cv")
    pick = _rows(tmp_path / "cv" / "picks.csv")[0]
    assert "interval_calibration_n" not in cv and cv["budget_30ms/found"] == 1
    assert float(pick["predicted_latency_ms"]) <= 30 + 1e-9
