"""Faults through the real entry point (issue #13): results that no longer match the config, signals, sweeps.

- A rerun with another config moves the old outputs of its run dir aside before it starts (hwnas.runs),
  so a rerun that fails or is killed midway never leaves old results beside a new config.
- SIGTERM / Ctrl-C end a job with exit 128 + signal, one line saying where it stopped and how to
  resume, and a run record saying ``interrupted``; the rerun resumes.
- A failing job of a sweep does not stop the sweep (basic and parallel launchers); the sweep ends
  with a summary and exit status 1.

Real processes are used where the fault needs one (signals, the parallel launcher).
"""
from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nb201_surrogate
from fixture_data import FIXTURE_ROOT

#: faults do not depend on the size of the tables: every run here reads the fixture subsets (300 rows), fast in both modes
FIXTURES = f"paths.data_dir={FIXTURE_ROOT}"
EVALUATE = ["logger=none", FIXTURES, "job=evaluate", "search_space=nb201", "device=help", "device.column=pixel3"]


def record(run_dir: Path) -> dict:
    return json.loads((run_dir / "hwnas-run.json").read_text())


def test_a_rerun_with_another_config_moves_the_old_outputs_aside(tmp_path, run_cli, one_line_error):
    run = tmp_path / "run"
    code, _, err = run_cli(*EVALUATE, "estimator=flops", f"hydra.run.dir={run}")
    assert code == 0, err
    first = json.loads((run / "metrics.json").read_text())
    assert record(run)["status"] == "finished"

    # the same config (another logger does not change results): outputs stay, no note
    code, _, err = run_cli(*EVALUATE, "estimator=flops", "logger=csv", f"hydra.run.dir={run}")
    assert code == 0 and "another config" not in err and not (run / "superseded").exists()
    first = json.loads((run / "metrics.json").read_text())

    # another device column that fails inside the job: the old results are already out of the way
    code, _, err = run_cli(*EVALUATE, "estimator=flops", "device.column=tpu_v4", f"hydra.run.dir={run}")
    one_line_error(code, err, "tpu_v4")
    note = [ln for ln in err.splitlines() if ln.startswith("hwnas: note:")]
    assert len(note) == 1 and "device.column: pixel3 -> tpu_v4" in note[0], err
    assert not (run / "metrics.json").exists()
    moved = list((run / "superseded").glob("*/metrics.json"))
    assert len(moved) == 1 and json.loads(moved[0].read_text()) == first
    rec = record(run)
    assert rec["status"] == "failed" and "tpu_v4" in rec["error"] and rec["config"]["device"]["column"] == "tpu_v4"


def test_a_changed_pipeline_stage_reruns_on_fresh_outputs(tmp_path):
    """A pipeline stage whose upstream changed reruns in a folder cleared of its old outputs (checkpoints
    included), even though its own config is the same."""
    from hwnas import runs

    stage = tmp_path / "stage"
    stage.mkdir()
    config = {"job": {"name": "train_predictor"}, "seed": 0}
    runs.begin(stage, "train_predictor", config, identity="upstream-1")
    (stage / "checkpoints").mkdir()
    (stage / "checkpoints" / "last.ckpt").write_text("old")
    runs.end(stage, "finished")
    assert runs.begin(stage, "train_predictor", config, identity="upstream-1") is None  # same: resume
    assert (stage / "checkpoints" / "last.ckpt").exists()
    note = runs.begin(stage, "train_predictor", config, identity="upstream-2")
    assert note and "upstream inputs" in note and not (stage / "checkpoints").exists()
    assert list((stage / "superseded").glob("*/checkpoints/last.ckpt"))


def test_a_new_time_or_step_budget_keeps_the_fit_state_to_resume(tmp_path):
    """``trainer.max_steps``/``max_time`` say how long this sitting may train: changing only them keeps the
    checkpoints and the curve (the fit resumes), while the results of the earlier sitting move aside."""
    from hwnas import runs

    run = tmp_path / "run"
    run.mkdir()
    runs.begin(run, "train_supernet", {"trainer": {"max_steps": 31}, "seed": 0})
    for name in ("checkpoints", "lightning_logs"):
        (run / name).mkdir()
        (run / name / "x").write_text("state")
    (run / "metrics.json").write_text("{}")
    runs.end(run, "finished")
    note = runs.begin(run, "train_supernet", {"trainer": {"max_steps": -1}, "seed": 0})
    assert note and "trainer.max_steps: 31 -> -1" in note and "moved 1 entries" in note
    assert (run / "checkpoints" / "x").exists() and (run / "lightning_logs" / "x").exists()
    assert not (run / "metrics.json").exists()
    runs.end(run, "finished")
    # any other change (here the seed, with the budget) starts afresh: the state moves too
    runs.begin(run, "train_supernet", {"trainer": {"max_steps": 10}, "seed": 1})
    assert not (run / "checkpoints").exists()


def test_files_a_user_put_in_the_run_dir_are_not_outputs(tmp_path):
    """Only what a job made moves aside: an input CSV placed in the run dir (before or between runs) stays."""
    from hwnas import runs

    run = tmp_path / "run"
    run.mkdir()
    (run / "input.csv").write_text("arch\n")
    runs.begin(run, "predict", {"seed": 0})
    (run / "predictions.csv").write_text("made by the job")
    runs.end(run, "finished")
    (run / "later_input.csv").write_text("arch\n")  # put there after the first run began
    note = runs.begin(run, "predict", {"seed": 1})
    assert note and "moved 1 entries" in note
    assert sorted(p.name for p in run.iterdir() if p.suffix == ".csv") == ["input.csv", "later_input.csv"]
    # a job killed before it could list its outputs (kill -9): what it created or changed is its output
    (run / "checkpoint.bin").write_text("made by the killed job")
    note = runs.begin(run, "predict", {"seed": 2})
    assert note and "moved 1 entries" in note and (run / "input.csv").exists()


def _hwnas(*args: str) -> list[str]:
    return [sys.executable, "-m", "hwnas.cli", *args]


def _env() -> dict:
    return {**os.environ, "HWNAS_DATA": str(FIXTURE_ROOT), "OMP_NUM_THREADS": "1"}


def _wait_for(predicate, proc, timeout: float = 180.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the job ended (exit {proc.returncode}) before the signal:\n{err[-3000:]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("timed out waiting for the job")


TRAIN = ["job=train_predictor", "search_space=nb201", "device=help", "device.column=pixel3", "estimator=predictor",
         "train.samples=150", "estimator.epochs=40", "estimator.progress_bar=false", "logger=none"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
                         ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_during_training_says_where_and_how_to_resume(tmp_path, signum):
    run = tmp_path / "run"
    args = _hwnas(*TRAIN, f"hydra.run.dir={run}")
    proc = subprocess.Popen(args, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for(lambda: (run / "checkpoints" / "last.ckpt").exists(), proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("hwnas: interrupted")]
    assert len(lines) == 1, err[-3000:]
    assert f"by {name} during job=train_predictor at epoch" in lines[0] and f"hydra.run.dir={run}" in lines[0]
    assert not (run / "metrics.json").exists() and not (run / "predictor.pt").exists()
    rec = record(run)
    assert rec["status"] == "interrupted" and rec["signal"] == name and "epoch" in rec["progress"]
    # the rerun resumes from the checkpoint and finishes with fewer epochs left to train
    done = subprocess.run(_hwnas(*TRAIN, f"hydra.run.dir={run}"), cwd=tmp_path, env=_env(), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (run / "predictor.pt").exists() and record(run)["status"] == "finished"
    assert json.loads((run / "metrics.json").read_text())["test/spearman"] > 0.5


@pytest.mark.slow
def test_ctrl_c_during_supernet_training_says_where_and_resumes(tmp_path):
    """The issue's example: Ctrl-C during job=train_supernet exited 1 with nothing printed."""
    from test_supernet_jobs import TINY as SUPERNET

    run = tmp_path / "run"
    args = _hwnas("job=train_supernet", *SUPERNET, f"hydra.run.dir={run}")
    proc = subprocess.Popen(args, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for(lambda: (run / "checkpoints" / "last.ckpt").exists(), proc, timeout=600)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    line = [ln for ln in err.splitlines() if ln.startswith("hwnas: interrupted by SIGINT during job=train_supernet at epoch")]
    assert len(line) == 1 and "rerun with hydra.run.dir=" in line[0], err[-3000:]
    done = subprocess.run(args, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming supernet training" in done.stdout + done.stderr
    assert (run / "supernet.pt").exists()


def test_sigterm_during_a_search_rerun_leaves_no_stale_picks(tmp_path, tmp_path_factory):
    """The issue's example: a finished search dir rerun with new budgets and killed midway."""
    run = tmp_path / "run"
    search = ["job=search", *nb201_surrogate.for_session(tmp_path_factory).overrides("pixel3"),
              "search_strategy=evolution", "search_strategy.population=20", "logger=none", f"hydra.run.dir={run}"]
    first = subprocess.run(_hwnas(*search, "search_strategy.generations=3", "search.latency_budgets=[8]"),
                           cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (run / "picks.csv").exists()
    proc = subprocess.Popen(_hwnas(*search, "search_strategy.generations=100000", "search.latency_budgets=[5,9]"),
                            cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: record(run).get("pid") == proc.pid, proc)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert not (run / "picks.csv").exists() and not (run / "metrics.json").exists()
    assert list((run / "superseded").glob("*/picks.csv")), "the old picks were deleted instead of moved"
    assert record(run)["config"]["search"]["latency_budgets"] == [5, 9]


def test_a_failing_job_does_not_stop_the_sweep(tmp_path, run_cli):
    sweep = tmp_path / "sweep"
    code, _, err = run_cli("-m", *EVALUATE[:-1], "device.column=pixel3,tpu_v4,gold_6226", "estimator=flops",
                           f"hydra.sweep.dir={sweep}")
    assert code == 1, err
    assert "Traceback" not in err
    assert [ln for ln in err.splitlines() if ln.startswith("hwnas: error: sweep job 1")], err
    assert "hwnas: sweep: 2 of 3 jobs finished; 1 did not" in err
    assert (sweep / "0" / "metrics.json").exists() and (sweep / "2" / "metrics.json").exists()
    assert record(sweep / "1")["status"] == "failed" and not (sweep / "1" / "metrics.json").exists()


@pytest.mark.slow
def test_a_failing_job_does_not_kill_its_neighbour_in_a_parallel_sweep(tmp_path):
    """hydra/launcher=parallel (joblib processes): the failure is recorded, the job beside it finishes."""
    sweep = tmp_path / "sweep"
    done = subprocess.run(_hwnas("-m", "hydra/launcher=parallel", *EVALUATE[:-1], "estimator=flops",
                                 "device.column=tpu_v4,pixel3,gold_6226", f"hydra.sweep.dir={sweep}"),
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "hwnas: sweep: 2 of 3 jobs finished; 1 did not" in done.stderr, done.stderr[-3000:]
    assert (sweep / "1" / "metrics.json").exists() and (sweep / "2" / "metrics.json").exists()
    assert record(sweep / "0")["status"] == "failed"


def test_an_interrupted_job_is_reported_by_the_sweep_summary(tmp_path):
    """A record left 'running' (a job killed with SIGKILL) counts as not finished."""
    from hwnas import runs, sweeps

    for num, status in enumerate(["finished", "running"]):
        d = tmp_path / str(num)
        d.mkdir()
        runs.begin(d, "evaluate", {"seed": num}, multirun={"num": num, "sweep_dir": str(tmp_path), "overrides": [f"seed={num}"]})
        if status == "finished":
            runs.end(d, "finished")
    records = sweeps.sweep_records(tmp_path)
    assert [r["status"] for r in records] == ["finished", "running"]


def test_an_output_that_does_not_fit_on_the_disk_is_one_line_and_keeps_the_old_file(tmp_path):
    """A full disk (here a file-size limit: Python ignores SIGXFSZ, so the write fails with EFBIG) while
    writing predictor.pt / supernet.pt / a CSV: a WriteError naming the file; the previous version stays."""
    script = f"""
import resource, torch
from hwnas.errors import user_error_text
from hwnas.io import atomic_torch_save, atomic_write_text
atomic_write_text({str(tmp_path / 'a.csv')!r}, "old")
atomic_torch_save({{"w": torch.zeros(4)}}, {str(tmp_path / 'p.pt')!r})
resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
for write in (lambda: atomic_torch_save({{"w": torch.zeros(100_000)}}, {str(tmp_path / 'p.pt')!r}),
              lambda: atomic_write_text({str(tmp_path / 'a.csv')!r}, "x" * 100_000)):
    try:
        write()
    except Exception as exc:
        print(user_error_text(exc))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines == [f"cannot write '{tmp_path / 'p.pt'}': File too large; the previous file is kept",
                     f"cannot write '{tmp_path / 'a.csv'}': File too large; the previous file is kept"], done.stdout
    assert (tmp_path / "a.csv").read_text() == "old"
    import torch

    assert torch.load(tmp_path / "p.pt", weights_only=True)["w"].numel() == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_signal_while_a_checkpoint_or_result_is_written_ends_the_job_after_the_write(tmp_path):
    """SIGTERM raised inside ``torch.save`` came out as torch's zip-writer RuntimeError, reported as a failed
    write (exit 2) instead of an interrupt (CI, a training signalled while writing last.ckpt): the write now
    completes and the interrupt follows it."""
    import torch

    from hwnas.checkpoints import load_checkpoint, write_checkpoint
    from hwnas.interrupts import JobInterrupted, raise_on_signals
    from hwnas import io

    class SignalsWhilePickled:
        def __reduce__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            return (collections.OrderedDict, ())  # a type weights_only loading accepts

    ckpt = {"state_dict": {"w": torch.zeros(1000)}, "global_step": 3, "extra": SignalsWhilePickled()}
    with raise_on_signals(), pytest.raises(JobInterrupted) as ended:
        write_checkpoint(ckpt, tmp_path / "last.ckpt", check=load_checkpoint)
    assert ended.value.signal_name == "SIGTERM"
    assert load_checkpoint(tmp_path / "last.ckpt")["global_step"] == 3

    def write(fh):
        os.kill(os.getpid(), signal.SIGTERM)
        fh.write(b"complete")

    with raise_on_signals(), pytest.raises(JobInterrupted):
        io._atomic_write(tmp_path / "a.csv", write)
    assert (tmp_path / "a.csv").read_text() == "complete"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
