"""The main job end to end at a tiny scale, through the real entry point: every stage runs, the
summary and metrics are written, and a rerun reuses every finished stage."""
from __future__ import annotations

import csv
import json

import pytest

TINY = ["logger=none", "search_space.resolutions=[16,20]", "data.batch_size=128",
        "+train_supernet.calibration_images=128", "+eval_subnets.calibration_images=128",
        "supernet.phases=[{name:full,epochs:1,lr:0.1,ks:max,e:max,d:max,distill:false},"
        "{name:expand,epochs:1,lr:0.03,subnets:2,e:null,d:null,sort_channels:true}]",
        "pipeline.accuracy_samples=10", "pipeline.latency_samples=70", "pipeline.noise_subset=2",
        "device.warmup=1", "device.repeats=3", "search_strategy.generations=5", "search_strategy.population=20",
        "pipeline.compare=[flops,lut_calibrated]"]

STAGES = ["1_train_supernet", "2_eval_subnets", "3_measure", "4_build_lut", "5_train_predictor",
          "6_evaluate_flops", "6_evaluate_lut_calibrated", "7_search"]


def test_pipeline_runs_every_stage_and_a_rerun_reuses_them(tmp_path, run_cli):
    run = tmp_path / "run"
    code, out, err = run_cli(*TINY, f"hydra.run.dir={run}")
    assert code == 0, err[-3000:]
    assert sorted(p.name for p in (run / "stages").iterdir() if p.is_dir()) == STAGES
    for s in STAGES:
        assert (run / "stages" / s / "metrics.json").exists(), s
    metrics = json.loads((run / "metrics.json").read_text())
    # stage 1's parameter counts reach the summary: the supernet's as its checkpoint holds it, and the
    # smallest < median < largest subnet extracted from it (none has more than the whole supernet)
    from hwnas.supernet.ofa import load_supernet

    supernet, _ = load_supernet(run / "stages" / "1_train_supernet" / "supernet.pt")
    assert metrics["train_supernet/params_supernet"] == sum(p.numel() for p in supernet.parameters())
    sizes = [metrics[f"train_supernet/params_{name}"] for name in ("smallest", "median", "largest")]
    assert 0 < sizes[0] < sizes[1] < sizes[2] <= metrics["train_supernet/params_supernet"], sizes
    assert metrics["measure/rows_total"] == 70 and metrics["search/n_budgets"] == 3
    assert metrics["train_predictor/ridge_alpha"] > 0  # the default latency predictor: ridge, closed form
    # latency_margin=auto: the predictor's error on the 11 measured subnets held out of its training
    assert metrics["search/margin_n"] == 11 and 0 <= metrics["search/latency_margin"] < 0.9
    with open(run / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["budget ms"] for r in rows] and len(rows) == 3
    assert "measured ms" in out and "Pareto front" in out
    with open(run / "stages" / "2_eval_subnets" / "accuracy.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 10
    # measured through ONNX Runtime (the main job's device), the picks verified beside the dataset's probes
    with open(run / "stages" / "3_measure" / "latency.csv") as fh:
        assert {r["runtime"] for r in csv.DictReader(fh)} == {"onnxruntime"}
    import yaml

    search = yaml.safe_load((run / "stages" / "7_search" / "config.yaml").read_text())
    assert search["device"]["reference"] == str(run / "stages" / "3_measure" / "noise_floor.csv")

    code, out, err = run_cli(*TINY, f"hydra.run.dir={run}")
    assert code == 0, err[-3000:]
    assert out.count("finished earlier, reused") == len(STAGES)

    # a new latency budget reruns only the search
    code, out, err = run_cli(*TINY, "pipeline.latency_budgets=[1000]", f"hydra.run.dir={run}")
    assert code == 0, err[-3000:]
    assert out.count("finished earlier, reused") == len(STAGES) - 1
    assert json.loads((run / "metrics.json").read_text())["search/n_budgets"] == 1
    # the summary of the three old budgets is not left beside the new config: it moved aside, whole
    assert "pipeline.latency_budgets: null -> [1000]" in err
    assert len(list(csv.DictReader(open(run / "summary.csv")))) == 1
    assert [len(list(csv.DictReader(open(p)))) for p in (run / "superseded").glob("*/summary.csv")] == [3]


@pytest.mark.slow
def test_a_changed_measurement_setup_reruns_its_stage_on_a_fresh_file(tmp_path, run_cli):
    """A pipeline rerun with another timing protocol: the measure stage and those after it rerun; the
    latency file of the old protocol moves aside with its stage instead of refusing the new rows."""
    run = tmp_path / "run"
    assert run_cli(*TINY, f"hydra.run.dir={run}")[0] == 0
    code, out, err = run_cli(*TINY, "device.repeats=4", f"hydra.run.dir={run}")
    assert code == 0, err[-3000:]
    # device options reach every stage's config (the pipeline passes the user's overrides on), so all rerun
    assert out.count("finished earlier, reused") == 0
    identity = json.loads((run / "stages" / "3_measure" / "latency.csv.identity.json").read_text())
    assert identity["identity"]["device.repeats"] == 4, identity
    assert len(list(csv.DictReader(open(run / "stages" / "3_measure" / "latency.csv")))) == 70
    old = list((run / "stages" / "3_measure" / "superseded").glob("*/latency.csv"))
    assert len(old) == 1 and len(list(csv.DictReader(open(old[0])))) == 70


@pytest.mark.parametrize("override, needle", [("search_space=nb201", "search_space = 'nb201' is not allowed"),
                                              ("pipeline.latency_estimator=oracle", "latency_estimator = 'oracle'"),
                                              ("pipeline.compare=[flops,oracle]", "compare item 'oracle'"),
                                              ("pipeline.latency_margin=1.5", "latency_margin = 1.5"),
                                              ("pipeline.latency_samples=40", "latency_samples = 40")])
def test_pipeline_config_errors(tmp_path, run_cli, override, needle):
    code, _, err = run_cli(*TINY[:1], override, f"hydra.run.dir={tmp_path}/r")
    assert code == 2 and needle in err
