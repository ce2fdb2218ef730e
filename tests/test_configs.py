"""Every option of every config group composes and instantiates; the CLI contract holds."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fixture_data import needs_full_data
from hydra.utils import get_object, instantiate
from omegaconf import OmegaConf

from hwnas.jobs import JobContext, list_jobs, run_job
from hwnas.predictors.estimator import make_trainer
from hwnas.tracking import make_tracker

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and not p.name.startswith("_"))
OPTIONS = [(g, f.stem) for g in GROUPS for f in sorted((CONF / g).glob("*.yaml"))]


def test_groups_present():
    for group in ("search_space", "trainer", "logger", "paths", "job"):
        assert group in GROUPS


#: Options that only make sense with a matching choice elsewhere.
COMPANIONS = {
    ("device", "help"): ["search_space=nb201"],
    ("device", "table"): ["device.path={data}/ofa/syed/ofa_mbv3__note10_lut.csv"],
    ("estimator", "lut"): ["estimator.path={data}/ofa/note10_lut"],
    ("estimator", "kernel_lut"): ["estimator.path={data}/ofa/note10_lut"],  # (any table loads; it is summed per kernel)
    ("accuracy", "table"): ["accuracy.path={data}/nb201/accuracy_200ep.csv", "accuracy.column=cifar10"],
}
NEEDS_GPU = {("device", "local_cuda"), ("trainer", "gpu")}
#: Options that need an optional extra's package (skipped where it is absent).
NEEDS_PACKAGE = {("device", "litert"): "litert_torch"}
#: Options that load a file the fixture data root does not hold.
NEEDS_FULL_DATA = {("accuracy", "ofa_predictor"): "OFA's accuracy predictor ofa/acc_predictor.pth"}
#: What each trainer / logger option builds.
ACCELERATORS = {"cpu": "CPUAccelerator", "gpu": "CUDAAccelerator"}
STRATEGIES = {"auto": "SingleDeviceStrategy", "ddp": "DDPStrategy"}
TRACKERS = {"none": "Tracker", "csv": "CSVTracker", "wandb": "WandbTracker"}
#: Options whose object has an attribute of the same name that means something else: TableDevice.source
#: is the table file read (device.source names the published dataset, help or syed); a relative
#: accuracy.path is kept as the file it names under the data root.
RENAMED = {("device", "source"), ("accuracy", "path")}


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(compose_cfg, tmp_path, data_dir, group, option):
    if (group, option) in NEEDS_GPU and not torch.cuda.is_available():
        pytest.skip("no GPU")
    if (group, option) in NEEDS_PACKAGE:
        pytest.importorskip(NEEDS_PACKAGE[group, option], reason="needs an optional extra: pip install 'hwnas[litert]'")
    if (group, option) in NEEDS_FULL_DATA:
        needs_full_data(NEEDS_FULL_DATA[group, option])
    extra = [o.format(data=data_dir) for o in COMPANIONS.get((group, option), [])]
    quiet = [] if group == "logger" else ["logger=none"]  # (a later logger=none would replace logger=<option>)
    cfg = compose_cfg(f"{group}={option}", *quiet, f"paths.data_dir={data_dir}", *extra)
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    if group == "job":
        assert cfg.job.name == option
        return
    node = cfg[group]
    if group == "trainer":
        trainer = instantiate(node, default_root_dir=str(tmp_path), logger=False)
        assert trainer.num_devices == node.devices and node.max_epochs is None  # (null: the job's length)
        assert make_trainer(node, 7, None, progress=False).max_epochs == 7
        assert type(trainer.accelerator).__name__ == ACCELERATORS[node.accelerator]
        assert type(trainer.strategy).__name__ == STRATEGIES[node.get("strategy") or "auto"]
        assert trainer.precision == str(node.get("precision", "32-true"))
    elif group == "logger":
        assert node.kind == option
        tracker = make_tracker(node, tmp_path, name="t", config={"a": 1})
        tracker.log_metrics({"x": 1.5})
        tracker.finish()
        assert type(tracker).__name__ == TRACKERS[option]
        if option == "csv":
            assert (tmp_path / "metrics_log.csv").read_text().splitlines() == ["step,name,value", "0,x,1.5"]
        elif option == "wandb" and node.mode == "offline" and node.dir is None:
            assert list((tmp_path / "wandb").glob("offline-run-*"))  # the run, in the run dir
        elif option == "none":
            assert not any(tmp_path.iterdir())  # writes nothing
    elif "_target_" in node:
        obj = instantiate(node)
        target = get_object(node._target_)
        if isinstance(target, type):
            assert isinstance(obj, target), (type(obj), target)
        if group == "search_space":
            assert obj.name == option
        # each option the object keeps under its own name holds the configured value (null: its default)
        for key, value in OmegaConf.to_container(node, resolve=True).items():
            if (key.startswith("_") or value is None or isinstance(value, (dict, list)) or (group, key) in RENAMED
                    or not hasattr(obj, key)):
                continue
            assert getattr(obj, key) == value, f"{group}.{key}: {getattr(obj, key)!r} != {value!r}"


def test_every_job_module_has_a_config():
    jobs = {f.stem for f in (CONF / "job").glob("*.yaml")}
    assert set(list_jobs()) == jobs


def test_run_job_writes_flat_metrics(compose_cfg, tmp_path):
    cfg = compose_cfg("job=profile", "profile.n=2", "search_space=nb201", "logger=csv")
    metrics = run_job(cfg, run_dir=tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["n_archs"] == 2 and metrics["n_archs"] == 2
    assert all(isinstance(v, (int, float)) for v in saved.values())
    assert (tmp_path / "run" / "archs.csv").read_text().count("\n") == 3
    assert (tmp_path / "run" / "metrics_log.csv").exists()


def _hwnas(*args, cwd):
    return subprocess.run([sys.executable, "-m", "hwnas", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_cli_prints_config(tmp_path):
    out = _hwnas("--cfg", "job", "search_space=fbnet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "name: fbnet" in out.stdout and "job:" in out.stdout


def test_cli_runs_job_in_run_dir(tmp_path):
    run_dir = tmp_path / "my_run"
    out = _hwnas("job=profile", "search_space=compofa_fixed", "profile.n=1", "logger=none", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["n_archs"] == 1


def test_cli_multirun_sweeps(tmp_path):
    out = _hwnas("-m", "job=profile", "search_space=nb201", "profile.n=1", "logger=none", "seed=0,1", f"hydra.sweep.dir={tmp_path}/sw",
                 cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert sorted(p.parent.name for p in (tmp_path / "sw").glob("*/metrics.json")) == ["0", "1"]


def test_cli_user_error_is_one_line(tmp_path):
    out = _hwnas("search_space.width_mult=-1", "logger=none", f"hydra.run.dir={tmp_path}/r", cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("hwnas: error:")]
    assert lines and "width_mult = -1 " in lines[0] and "1.0 and 1.2" in lines[0]


def test_cli_unknown_space_lists_options(tmp_path):
    out = _hwnas("search_space=nope", cwd=tmp_path)
    assert out.returncode != 0
    assert "nope" in out.stderr and "ofa_mbv3" in out.stderr and "nb201" in out.stderr


def test_job_context_data_dir_missing(tmp_path):
    from hwnas.errors import DataError

    ctx = JobContext(run_dir=tmp_path, data_dir_value=str(tmp_path / "missing"))
    with pytest.raises(DataError, match="missing"):
        ctx.data_dir


@pytest.mark.parametrize("launcher, target", [("parallel", "JoblibLauncher"), ("slurm", "SlurmLauncher")])
def test_launcher_configs_compose(launcher, target):
    """hydra/launcher=parallel (joblib, a dependency) and =slurm (submitit, the `slurm` extra)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    if launcher == "slurm":
        pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="hwnas.conf", version_base="1.3"):
            cfg = compose(config_name="config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
        assert cfg.hydra.launcher._target_.endswith(target)
    finally:
        GlobalHydra.instance().clear()
