"""The bad-input catalogue of shared files (issue #13): appending to a file of another setup, or while
another run writes it, is refused with one line through the real ``hwnas`` entry point.

Each case copies a reference file (a latency CSV of job=measure, an accuracy CSV of job=eval_subnets,
each with its identity record) into its own folder, then runs a command that must not add to it: the
one ``hwnas: error:`` line names the key, the file's value, this run's value and what to do, and the
file is left as it was. The reference files are made once per module with tiny settings.
"""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from hwnas.measure.sharing import WriterLock, identity_path

#: job=measure settings of the reference latency file (every case runs with them unless it changes one)
MEASURE = ["job=measure", "search_space=nb201", "measure.n=2", "device.warmup=0", "device.repeats=2",
           "measure.noise_subset=0"]
#: job=eval_subnets settings of the reference accuracy file
EVAL = ["job=eval_subnets", "eval_subnets.n=1", "eval_subnets.calibration_images=32"]


def _compose(tmp, *overrides):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="hwnas.conf", version_base="1.3"):
            return compose(config_name="config", overrides=[f"paths.output_dir={tmp}", "logger=none", *overrides])
    finally:
        GlobalHydra.instance().clear()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """``{lat, acc, ckpt, ckpt2}``: a measured latency CSV, an accuracy CSV of supernet ``ckpt``, another supernet."""
    import torch

    from hwnas.jobs import run_job
    from hwnas.spaces import get_space
    from hwnas.supernet import OFASupernet, save_supernet

    tmp = tmp_path_factory.mktemp("shared_files")
    lat, acc = tmp / "lat.csv", tmp / "acc.csv"
    run_job(_compose(tmp, *MEASURE, f"measure.output={lat}"), run_dir=tmp / "measure")
    space = get_space("ofa_mbv3", resolutions=[16], width_mult=0.25, num_classes=10)
    ckpts = []
    for seed in (0, 1):  # two untrained supernets: weights differ, everything else is the same
        torch.manual_seed(seed)
        ckpts.append(save_supernet(OFASupernet(space), tmp / f"supernet{seed}.pt", data="digits", image_size=16))
    run_job(_compose(tmp, *EVAL, f"eval_subnets.checkpoint={ckpts[0]}", f"eval_subnets.output={acc}"),
            run_dir=tmp / "eval")
    return {"lat": lat, "acc": acc, "ckpt": ckpts[0], "ckpt2": ckpts[1]}


def _hold_lock(path):
    return WriterLock(path, "test")


def _drop_identity(path):
    identity_path(path).unlink()


def _damage_identity(path):
    identity_path(path).write_text("{not json")


LAT = [*MEASURE, "measure.output={lat}"]
ACC = [*EVAL, "eval_subnets.checkpoint={ckpt}", "eval_subnets.output={acc}"]
AGAIN_LAT = "choose another measure.output or move the file (and its .identity.json) away"
AGAIN_ACC = "choose another eval_subnets.output or move the file (and its .identity.json) away"

CASES = {
    # name: (file the command would append to, overrides, prepare(file) or None, needles of the one error line)
    "measure into a file of another space": (
        "lat", [*LAT, "search_space=fbnet"], None,
        ["search_space.name is 'nb201' in the file and 'fbnet' in this run", AGAIN_LAT]),
    "measure into a file of other space options": (
        "lat", [*LAT, "search_space.input_size=64"], None,
        ["search_space.input_size is 32 in the file and 64 in this run", AGAIN_LAT]),
    "measure with other device threads": (
        "lat", [*LAT, "device.threads=2"], None,
        ["device.threads is 1 in the file and 2 in this run", "(and 1 more: device.name)", AGAIN_LAT]),
    "measure with another batch size": (
        "lat", [*LAT, "device.batch_size=2"], None, ["device.batch_size is 1 in the file and 2 in this run", AGAIN_LAT]),
    "measure with another timing protocol": (
        "lat", [*LAT, "device.warmup=3"], None, ["device.warmup is 0 in the file and 3 in this run", AGAIN_LAT]),
    "measure while another run writes the file": (
        "lat", LAT, _hold_lock,
        ["is being written by another hwnas process (pid ", "wait for it to finish or choose another measure.output"]),
    "measure into a file without identity record": (
        "lat", LAT, _drop_identity,
        ["has 2 rows but no identity record 'lat.csv.identity.json'", "older hwnas or by hand",
         "choose another measure.output or move the file away"]),
    "measure into a file with a damaged identity record": (
        "lat", LAT, _damage_identity, ["lat.csv.identity.json", "is unreadable (not JSON)", "choose another measure.output"]),
    "lookup table into a latency dataset": (
        "lat", ["job=build_lut", "search_space=nb201", "device.warmup=0", "device.repeats=2", "build_lut.output={lut}"],
        None, ["rows is 'latency of architectures (job=measure)' in the file and 'latency of layers (job=build_lut)'",
               "choose another build_lut.output"]),
    "accuracy file of another supernet": (
        "acc", [*EVAL, "eval_subnets.checkpoint={ckpt2}", "eval_subnets.output={acc}"], None,
        ["supernet.sha256 is '", "in the file and '", AGAIN_ACC]),
    "accuracy file of another split": (
        "acc", [*ACC, "eval_subnets.split=test"], None, ["eval_subnets.split is 'val' in the file and 'test'", AGAIN_ACC]),
    "accuracy file of another data split": (
        "acc", [*ACC, "data.split=[0.6,0.2,0.2]"], None,
        ["data.split is [0.7, 0.15, 0.15] in the file and [0.6, 0.2, 0.2] in this run", AGAIN_ACC]),
    "accuracy file of another data seed": (
        "acc", [*ACC, "seed=1"], None, ["data.seed is 0 in the file and 1 in this run", AGAIN_ACC]),
    "accuracy file of another recalibration": (
        "acc", [*ACC, "eval_subnets.calibration_images=64"], None,
        ["eval_subnets.calibration_images is 32 in the file and 64 in this run", AGAIN_ACC]),
    "accuracy file while another run writes it": (
        "acc", ACC, _hold_lock, ["is being written by another hwnas process", "choose another eval_subnets.output"]),
    "accuracy file without identity record": (
        "acc", ACC, _drop_identity, ["has 1 row but no identity record 'acc.csv.identity.json'",
                                     "choose another eval_subnets.output or move the file away"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_shared_file_refuses_another_setup_in_one_line(case, reference, tmp_path, run_cli, one_line_error):
    which, overrides, prepare, needles = CASES[case]
    paths = {}
    for name in ("lat", "acc"):
        paths[name] = shutil.copy(reference[name], tmp_path / reference[name].name)
        shutil.copy(identity_path(reference[name]), identity_path(paths[name]))
    target = paths[which]
    before = target.read_bytes()
    held = prepare(target) if prepare else None
    try:
        args = [o.format(lut=tmp_path / "lat.yaml", ckpt=reference["ckpt"], ckpt2=reference["ckpt2"], **paths)
                for o in overrides]
        code, _, err = run_cli("logger=none", *args, f"hydra.run.dir={tmp_path}/run")
    finally:
        if held is not None:
            held.release()
    one_line_error(code, err, *needles)
    assert target.read_bytes() == before  # not a row added, not a byte changed


def test_same_setup_still_resumes(reference, tmp_path, run_cli):
    """The guard refuses only what differs: the reference command adds the missing rows."""
    lat = shutil.copy(reference["lat"], tmp_path / "lat.csv")
    shutil.copy(identity_path(reference["lat"]), identity_path(lat))
    code, out, err = run_cli("logger=none", *[o.format(lat=lat) for o in LAT if "measure.n" not in o], "measure.n=3",
                             f"hydra.run.dir={tmp_path}/run")
    assert code == 0, err
    assert "1 measured now, 1 rows added, 3 rows in" in out


@pytest.mark.slow
def test_two_measure_processes_on_one_file(tmp_path):
    """The user's report: two ``hwnas job=measure`` started together into one CSV. One measures every
    architecture once; the other is refused in one line naming the first's pid (they start within a
    second of each other, and measuring takes ~10 s)."""
    out = tmp_path / "lat.csv"

    def start(run):
        return subprocess.Popen([sys.executable, "-m", "hwnas", "logger=none", *MEASURE[:2], "measure.n=8",
                                 "device.warmup=0", "device.repeats=30", "measure.noise_subset=0",
                                 f"measure.output={out}", f"hydra.run.dir={tmp_path}/{run}"],
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    procs = [start("a"), start("b")]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    codes = [p.returncode for p in procs]
    assert codes.count(0) == 1, (codes, errs)
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    lines = [ln for ln in errs[loser].splitlines() if ln.startswith("hwnas: error:")]
    assert len(lines) == 1, errs[loser]
    assert f"is being written by another hwnas process (pid {procs[winner].pid})" in lines[0]
    archs = out.read_text().splitlines()[1:]
    assert len(archs) == len(set(archs)) == 8
