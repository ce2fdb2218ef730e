"""``logger=wandb`` as a W&B user expects, checked by reading real offline runs back.

wandb 0.31 writes an offline run as ``<dir>/wandb/offline-run-*/run-<id>.wandb`` (a log of protobuf
records: run, config, history, summary) plus the logged tables under ``files/media/table/``; it writes
no ``files/config.yaml`` or ``files/wandb-summary.json`` offline, so the run, its config and summary are
read from the records (:mod:`hwnas.wandb_runs`, which job=report report.source=wandb uses too), the tables
from their JSON files.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

import nb201_surrogate
from conftest import run_hwnas
from hwnas.errors import ConfigError
from hwnas.jobs import run_job
from hwnas.tracking import run_group, run_tags, table_cell
from hwnas.wandb_runs import records

WANDB_VARS = ("WANDB_MODE", "WANDB_DIR", "WANDB_PROJECT", "WANDB_ENTITY")
SEARCH = ["search_strategy=evolution", "search_strategy.population=20", "search_strategy.generations=8",
          "estimator=flops", "search.latency_budgets=[5,12.5]", "search.verify=true", "search.plot=false"]


class OfflineRun:
    """What one offline run folder holds (read by hwnas.wandb_runs): the run record, config, summary, history,
    plots and exit code, and the logged tables under ``files/``."""

    def __init__(self, folder: Path):
        from hwnas.wandb_runs import read_run

        self.folder = folder
        read = read_run(folder, wait=30)  # (W&B's service may still be writing the file)
        self.run, self.config, self.summary, self.history = read.run, read.config, read.summary, read.history
        self.visualize, self.exit_code = read.visualize, read.exit_code

    def table(self, name: str) -> dict:
        """A logged table's JSON (``columns``, ``data``), found through its history entry."""
        return json.loads((self.folder / "files" / self.history[f"{name}/path"]).read_text())


def offline_runs(root: Path) -> list[Path]:
    return sorted(root.rglob("offline-run-*"))


def _csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as fh:
        header, *rows = list(csv.reader(fh))
    return header, rows


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """``hwnas -m job=search ... logger=wandb`` run once from a working dir, the sweep in ``sw/search``,
    with WANDB_DIR, WANDB_PROJECT and WANDB_ENTITY set (WANDB_MODE unset: offline)."""
    surrogate = nb201_surrogate.for_session(tmp_path_factory)
    base = tmp_path_factory.mktemp("wandb_sweep")
    with pytest.MonkeyPatch.context() as mp:
        for var in WANDB_VARS:
            mp.delenv(var, raising=False)
        mp.setenv("WANDB_DIR", str(base / "wandb_dir"))
        mp.setenv("WANDB_PROJECT", "hwnas-test")
        mp.setenv("WANDB_ENTITY", "someone")
        mp.chdir(base)
        code, _, err = run_hwnas("-m", "job=search", *surrogate.overrides("pixel3"), "logger=wandb", *SEARCH,
                                 "logger.tags=[mine]", "hydra.sweep.dir=sw/search")
    assert code == 0, err
    folders = offline_runs(base / "wandb_dir")
    assert len(folders) == 1, folders
    return base, base / "sw" / "search" / "0", OfflineRun(folders[0])


def test_offline_run_goes_to_wandb_dir(sweep):
    base, run_dir, run = sweep
    assert run.folder.parent == base / "wandb_dir" / "wandb"
    assert (run_dir / "metrics.json").exists() and offline_runs(run_dir) == []


def test_run_has_group_job_type_tags_and_project(sweep):
    _, _, run = sweep
    assert run.run.run_group == "sw/search"  # the sweep dir relative to the working dir, not an absolute path
    assert run.run.job_type == "search"
    assert list(run.run.tags) == ["mine", "job:search", "space:nb201", "device:pixel3"]
    assert run.run.project == "hwnas-test" and run.run.entity == "someone"


def test_config_is_the_resolved_config_plus_hydras_choices_and_overrides(sweep):
    _, run_dir, run = sweep
    from omegaconf import OmegaConf

    saved = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "config.yaml"), resolve=True)
    saved.pop("logger")  # resolved here, where the WANDB_* variables of the run are unset
    extra = ("_wandb", "hydra_choices", "overrides", "logger", "inputs")
    assert {k: v for k, v in run.config.items() if k not in extra} == saved
    # the files it read (the surrogate's device and accuracy tables), each as the artifact a writer would log
    assert {k: (v["type"], v["path"]) for k, v in run.config["inputs"].items()} == {
        "device.path": ("measurements", saved["device"]["path"]), "accuracy.path": ("accuracy_table", saved["accuracy"]["path"])}
    assert run.config["logger"] == {"kind": "wandb", "project": "hwnas-test", "entity": "someone", "mode": "offline",
                                    "dir": str(run_dir.parents[2] / "wandb_dir"), "tags": ["mine"]}
    assert run.config["hydra_choices"]["search_strategy"] == "evolution"
    assert run.config["hydra_choices"]["device"] == "table" and run.config["hydra_choices"]["logger"] == "wandb"
    assert run.config["overrides"] == OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"))
    assert "logger.tags=[mine]" in run.config["overrides"]


def test_summary_holds_the_jobs_metrics(sweep):
    _, run_dir, run = sweep
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"hv_ratio", "front_size", "budget_5ms/true_latency_ms"} <= set(metrics)
    for key, value in metrics.items():
        assert run.summary[key] == pytest.approx(value), key


def test_tables_are_numeric(sweep):
    _, run_dir, run = sweep
    for name in ("picks", "front"):
        header, rows = _csv(run_dir / f"{name}.csv")
        table = run.table(name)
        assert table["columns"] == header and len(table["data"]) == len(rows) > 0
        for logged, written in zip(table["data"], rows):
            for column, value, text in zip(header, logged, written):
                if column == "arch":
                    assert value == text
                elif text == "":
                    assert value is None, column
                else:
                    assert isinstance(value, (int, float)) and value == pytest.approx(float(text)), (column, value)
    assert isinstance(run.table("picks")["data"][0][0], int)  # budget 5 ms: an integer literal


def test_front_scatter_plots(sweep):
    _, run_dir, run = sweep
    header, rows = _csv(run_dir / "front.csv")
    charts = {"front_scatter": ("predicted_latency_ms", "accuracy"), "front_verified": ("true_latency_ms", "true_accuracy")}
    for name, (x, y) in charts.items():
        spec = run.visualize[name]
        assert spec["panel_config"]["panelDefId"] == "wandb/scatter/v0"
        assert spec["panel_config"]["fieldSettings"] == {"x": x, "y": y}
        assert "Pareto front" in spec["panel_config"]["stringSettings"]["title"]
        table = run.table(f"{name}_table")
        xs = [r[table["columns"].index(x)] for r in table["data"]]
        assert xs == pytest.approx([float(r[header.index(x)]) for r in rows])


@pytest.fixture
def profile_cfg(compose_cfg, monkeypatch, tmp_path):
    """A quick job (``job=profile`` on NB201, local CPU) with logger=wandb, WANDB_DIR in ``tmp_path/wandb_dir``."""
    for var in WANDB_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    return lambda *extra: compose_cfg("job=profile", "profile.n=2", "search_space=nb201", "logger=wandb", *extra)


def test_without_hydra_the_config_is_the_jobs_and_there_is_no_group(profile_cfg, tmp_path):
    from omegaconf import OmegaConf

    cfg = profile_cfg()
    run_job(cfg, run_dir=tmp_path / "run")
    (folder,) = offline_runs(tmp_path / "wandb_dir")
    run = OfflineRun(folder)
    expected = OmegaConf.to_container(cfg, resolve=True)
    assert {k: v for k, v in run.config.items() if k != "_wandb"} == expected
    assert run.run.run_group == "" and run.run.job_type == "profile"
    assert list(run.run.tags) == ["job:profile", "space:nb201"]  # local_cpu has neither column nor name


def test_wandb_mode_disabled_is_honoured(profile_cfg, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    cfg = profile_cfg()
    assert cfg.logger.mode == "disabled"
    run_job(cfg, run_dir=tmp_path / "run")
    assert (tmp_path / "run" / "metrics.json").exists()
    assert offline_runs(tmp_path) == []


@pytest.mark.parametrize("how", ["override", "env"])
def test_a_bad_mode_is_a_one_line_error(how, monkeypatch, tmp_path, one_line_error):
    for var in WANDB_VARS:
        monkeypatch.delenv(var, raising=False)
    extra = ["logger.mode=sometimes"] if how == "override" else []
    if how == "env":
        monkeypatch.setenv("WANDB_MODE", "sometimes")
    code, _, err = run_hwnas("job=profile", "profile.n=1", "search_space=nb201", "logger=wandb", *extra,
                             f"hydra.run.dir={tmp_path}/run")
    one_line_error(code, err, "logger.mode = 'sometimes' is not allowed; allowed: offline, online, disabled")
    assert offline_runs(tmp_path) == []


def test_table_cell():
    cases = [("12", 12), ("-3", -3), ("0", 0), ("12.5", 12.5), ("1.557e+07", 1.557e7), (".5", 0.5), ("", None),
             (None, None), (np.float64(2.5), 2.5), (np.int64(7), 7), (float("nan"), None), (3, 3), (1.25, 1.25),
             ("nan", "nan"), ("inf", "inf"), ("1e999", "1e999"), ("007", 7.0), ("1_000", "1_000"),
             ("|nor_conv_3x3~0|", "|nor_conv_3x3~0|"), ("pixel3", "pixel3")]
    for value, expected in cases:
        got = table_cell(value)
        assert got == expected and type(got) is type(expected), (value, got)
    assert type(table_cell(np.int64(7))) is int and type(table_cell(np.float32(0.5))) is float
    assert math.isclose(table_cell(" 4.5 "), 4.5)


def test_run_group(tmp_path):
    sweep_dir = tmp_path / "experiments/search_nb201/runs/search/pixel3/predictor"
    assert run_group(sweep_dir, cwd=tmp_path) == "experiments/search_nb201/runs/search/pixel3/predictor"
    assert run_group("experiments/x/0", cwd=tmp_path) == "experiments/x/0"
    assert run_group(sweep_dir, cwd=tmp_path / "elsewhere") == "pixel3/predictor"
    assert run_group(tmp_path, cwd=tmp_path) == "/".join(tmp_path.parts[-2:])


def test_run_tags():
    cfg = {"job": {"name": "transfer"}, "search_space": {"name": "fbnet"}, "device": {"name": "local_cpu"},
           "task": {"name": "fbnet_F2"}}
    assert run_tags(cfg) == ["job:transfer", "space:fbnet", "device:local_cpu", "task:fbnet_F2"]
    cfg["device"]["column"] = "pixel3"
    assert run_tags(cfg)[2] == "device:pixel3"
    assert run_tags({"job": {"name": "report"}}) == ["job:report"]


def test_make_tracker_rejects_a_bad_mode(tmp_path):
    from hwnas.tracking import make_tracker

    with pytest.raises(ConfigError, match=r"^logger.mode = 'sometimes' is not allowed; allowed: offline, online, "
                                          r"disabled$"):
        make_tracker({"kind": "wandb", "mode": "sometimes"}, tmp_path, name="t", config={})


def test_train_predictor_logs_predicted_vs_true_and_percent_curves(compose_cfg, monkeypatch, tmp_path, data_dir):
    """A predictor's run: per-epoch val/ curves in the final metrics' units, and a predicted-vs-true scatter of the
    test split that matches predictions.csv."""
    for var in WANDB_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    m = run_job(compose_cfg("job=train_predictor", "search_space=nb201", "device=help", "device.column=pixel3",
                            f"paths.data_dir={data_dir}", "train.samples=100", "estimator.epochs=3",
                            "estimator.progress_bar=false", "logger=wandb"), run_dir=tmp_path / "run")
    (folder,) = offline_runs(tmp_path / "wandb_dir")
    run = OfflineRun(folder)
    assert run.summary["val/rmse_pct"] == pytest.approx(m["val/rmse_pct"])  # the final figure, percent
    spec = run.visualize["test_predicted_vs_true"]["panel_config"]
    assert spec["panelDefId"] == "wandb/scatter/v0" and spec["fieldSettings"] == {"x": "latency_ms", "y": "predicted_ms"}
    table = run.table("test_predicted_vs_true_table")
    header, rows = _csv(tmp_path / "run" / "predictions.csv")
    got = [r[table["columns"].index("predicted_ms")] for r in table["data"]]
    assert len(got) == min(2000, len(rows))  # the first 2,000 test cells (the full NB201 table's split has 2,343)
    assert got == pytest.approx([float(r[header.index("predicted_ms")]) for r in rows[:len(got)]])


def test_a_pipeline_stage_logs_its_training_curves_into_the_pipelines_run(compose_cfg, monkeypatch, tmp_path, data_dir):
    """job=pipeline runs each stage with a PrefixedTracker on the pipeline's W&B run: a stage's Lightning curves go
    to that run under the stage's prefix, as its final metrics do (they went to a CSV in the stage's folder)."""
    from hwnas.tracking import make_tracker

    for var in WANDB_VARS:
        monkeypatch.delenv(var, raising=False)
    parent = make_tracker({"kind": "wandb", "mode": "offline", "dir": str(tmp_path / "wandb_dir")}, tmp_path,
                          name="pipeline", config={})
    cfg = compose_cfg("job=train_predictor", "search_space=nb201", "device=help", "device.column=pixel3",
                      f"paths.data_dir={data_dir}", "train.samples=100", "estimator.epochs=3",
                      "estimator.progress_bar=false")
    m = run_job(cfg, run_dir=tmp_path / "stage", tracker=parent, prefix="5_train_predictor/")
    parent.finish()
    (folder,) = offline_runs(tmp_path / "wandb_dir")
    run = OfflineRun(folder)
    assert run.summary["5_train_predictor/test/rmse_ms"] == pytest.approx(m["test/rmse_ms"])
    # train/loss and epoch come from Lightning only (the job's final metrics hold neither)
    assert {"5_train_predictor/train/loss", "5_train_predictor/epoch", "5_train_predictor/val/rmse_pct"} <= set(run.history)
    assert "train/loss" not in run.history and "train/loss" not in m
    assert not (tmp_path / "stage" / "lightning_logs").exists()


def test_a_written_file_is_an_artifact_and_a_run_reading_it_names_the_same_one(compose_cfg, monkeypatch, tmp_path,
                                                                                 data_dir):
    """job=train_predictor logs predictor.pt as a ``predictor`` artifact; a job=predict run that reads it records the
    same artifact (by the file's digest) as its input: the link W&B makes after a sync (offline runs cannot
    use_artifact)."""
    from hwnas.io import file_digest
    from hwnas.tracking import artifact_name

    for var in WANDB_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "w1"))
    run_job(compose_cfg("job=train_predictor", "search_space=nb201", "device=help", "device.column=pixel3",
                        f"paths.data_dir={data_dir}", "train.samples=100", "estimator.epochs=2",
                        "estimator.progress_bar=false", "logger=wandb"), run_dir=tmp_path / "train")
    checkpoint = tmp_path / "train" / "predictor.pt"
    (folder,) = offline_runs(tmp_path / "w1")
    logged = [r.artifact for r in records(next(folder.glob("run-*.wandb")))
              if r.WhichOneof("record_type") == "artifact" and r.artifact.type != "run_table"]  # (tables are artifacts too)
    assert [(a.type, a.name) for a in logged] == [("predictor", artifact_name(checkpoint, "predictor"))]
    assert json.loads(logged[0].metadata)["space"] == "nb201"
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "w2"))
    run_job(compose_cfg("job=predict", "search_space=nb201", "estimator=predictor", f"estimator.checkpoint={checkpoint}",
                        f"predict.input={tmp_path / 'train' / 'predictions.csv'}", f"predict.output={tmp_path / 'p.csv'}",
                        "logger=wandb"), run_dir=tmp_path / "predict")
    (folder,) = offline_runs(tmp_path / "w2")
    inputs = OfflineRun(folder).config["inputs"]
    assert inputs == {"estimator.checkpoint": {"artifact": logged[0].name, "type": "predictor", "path": str(checkpoint),
                                               "sha256": file_digest(checkpoint)}}


def test_report_builds_the_same_table_from_the_wandb_runs_as_from_the_run_dirs(tmp_path, monkeypatch, data_dir):
    """job=report report.source=wandb: a sweep logged with logger=wandb gives the table of its run dirs, from the
    runs' W&B files alone (summary + the overrides in the config); the failed job is named, not tabulated."""
    for var in WANDB_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run_hwnas("-m", "job=profile", "search_space=nb201", "profile.n=1,0,3", "logger=wandb",
                             f"paths.data_dir={data_dir}", "hydra.sweep.dir=sw")
    assert code == 1 and "2 of 3 jobs finished" in err, err[-2000:]
    report = ["job=report", "report.rows=[profile.n]", "report.metrics=[n_archs,flops_median]", "logger=none"]
    code, files_out, err = run_hwnas(*report, "report.dirs=[sw]", "report.output=files.md", "hydra.run.dir=r1")
    assert code == 0, err[-2000:]
    for folder in offline_runs(tmp_path / "wandb_dir"):  # (W&B's service may still be writing the last one)
        assert OfflineRun(folder).exit_code is not None
    code, wandb_out, err = run_hwnas(*report, "report.source=wandb", "report.dirs=[wandb_dir]",
                                     "report.output=wandb.md", "hydra.run.dir=r2")
    assert code == 0, err[-2000:]
    assert (tmp_path / "wandb.csv").read_text() == (tmp_path / "files.csv").read_text()
    header, rows = _csv(tmp_path / "wandb.csv")
    assert [r[0] for r in rows] == ["1", "3"] and [r[header.index("n_archs_mean")] for r in rows] == ["1.0", "3.0"]
    assert "W&B exit code 1" in wandb_out and "report of 2 runs" in wandb_out
    code, _, err = run_hwnas(*report, "report.source=wandb", "report.dirs=[wandb_dir]", "hydra.run.dir=r3",
                             "report.plots=[{kind: pareto}]")
    assert code != 0 and "with report.source=wandb the allowed kind is line" in err
    code, _, err = run_hwnas(*report, "report.source=mlflow", "report.dirs=[wandb_dir]", "hydra.run.dir=r4")
    assert code != 0 and "report.source = 'mlflow' is not allowed; allowed: files" in err
