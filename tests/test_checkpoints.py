"""Damaged checkpoints (issue #13): every checkpoint a fit writes replaces the previous one only once it loads,
an unreadable one is named in one line and set aside, and a rerun resumes from the newest readable one.

Through the real entry point (``hwnas`` in-process, ``run_cli``) on tiny predictor and supernet fits of
the data root's tables (the fixture subsets are enough); a disk that fills up is simulated by a
``torch.save`` that fails half-way, and for real by a file size limit on a child process (slow).
"""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest
import torch

from hwnas.checkpoints import (CheckpointError, Resume, SafeCheckpointIO, check_same_config, checkpointing,
                               find_resume, load_checkpoint, write_checkpoint)
from hwnas.errors import ConfigError
from hwnas.interrupts import JobInterrupted

from conftest import run_hwnas
from fixture_data import FIXTURE_ROOT

#: a latency predictor small enough that a fit takes a few seconds: 100 training archs in batches of 32
#: (4 steps an epoch), a narrow MLP (checkpoints of ~85 kB); on the fixture tables in either data mode (what is
#: tested is the checkpoints, and the full tables only make each run slower)
PREDICTOR = ["logger=none", "job=train_predictor", f"paths.data_dir={FIXTURE_ROOT}", "search_space=nb201",
             "device=help", "device.column=pixel3",
             "estimator=predictor", "train.samples=100", "estimator.batch_size=32", "estimator.hidden=[64,64]",
             "estimator.progress_bar=false"]
#: a supernet fit of 3 steps an epoch, 2 epochs of one phase, without distillation (no teacher in the
#: checkpoints), validation or subnet scores
SUPERNET = ["logger=none", "job=train_supernet", "search_space.resolutions=[16]", "search_space.width_mult=0.25",
            "data.batch_size=32", "data.augment=false", "supernet.label_smoothing=0", "supernet.kd.weight=0",
            "train_supernet.calibration_images=32", "train_supernet.progress_bar=false", "train_supernet.eval_splits=[]",
            "+trainer.limit_train_batches=3", "+trainer.limit_val_batches=0",
            "supernet.phases=[{name:full,epochs:2,lr:0.1,ks:max,e:max,d:max,distill:false}]"]
SUPERNET_STEPS = 3  # an epoch

# ---------------------------------------------------------------------------------------------- helpers
hwnas = run_hwnas  # the entry point in-process, as the run_cli fixture runs it


def run_dir_arg(run_dir: Path) -> str:
    return f"hydra.run.dir={run_dir}"


def step_of(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def temp_files(ckdir: Path) -> list[Path]:
    return sorted(ckdir.glob(".*.tmp"))


def notes(err: str) -> list[str]:
    """The one-line reports of damaged checkpoints on stderr."""
    return [ln for ln in err.splitlines() if ln.startswith("hwnas: checkpoint ")]


def seed_checkpoints(run_dir: Path, base: Path, **names: str) -> Path:
    """Put ``base``'s checkpoints into ``run_dir/checkpoints`` (``interrupted="last.ckpt"``: copy base's
    last.ckpt as interrupted.ckpt), as a copied checkpoints folder would be; returns that folder."""
    ckdir = run_dir / "checkpoints"
    ckdir.mkdir(parents=True)
    for target, source in (names or {"last": "last.ckpt"}).items():
        shutil.copy2(base / "checkpoints" / source, ckdir / f"{target}.ckpt")
    return ckdir


class Spy:
    """Replaces the fit's progress callback (:func:`hwnas.interrupts.lightning_progress`) with one that records
    the step each fit starts at and, with ``stop_at``, raises ``JobInterrupted`` after that optimizer step, as
    a SIGTERM arriving then would."""

    def __init__(self, monkeypatch, stop_at: int | None = None):
        import hwnas.interrupts as interrupts

        self.starts: list[int] = []
        self.stop_at = stop_at
        original, spy = interrupts.lightning_progress, self

        def progress():
            base = type(original())

            class _Spy(base):
                def on_train_start(self, trainer, pl_module):
                    spy.starts.append(int(trainer.global_step))

                def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                    super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
                    if spy.stop_at is not None and trainer.global_step >= spy.stop_at:
                        raise JobInterrupted(signal.SIGTERM)

            return _Spy()

        monkeypatch.setattr(interrupts, "lightning_progress", progress)


def interrupted_run(run_cli, *args) -> int:
    """Exit status of a run ended by ``JobInterrupted`` (the CLI exits 128 + signal; older ones let it through)."""
    try:
        code, _, _ = run_cli(*args)
    except JobInterrupted as exc:
        return exc.exit_code
    return code


def fail_torch_save(monkeypatch, after: int = 0, garbage: bool = False) -> list:
    """From the ``after+1``-th call on, ``torch.save`` writes part of its file, then fails as a full disk does
    (``garbage``: writes a file that does not load, without an error). Returns the list of calls."""
    real, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) <= after:
            return real(obj, f, *args, **kwargs)
        f.write(b"PK\x03\x04" + bytes(4096))
        if not garbage:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", save)
    return calls


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks on a shared CPU: one thread is fastest (with every core, a supernet step takes seconds)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def predictor_base(tmp_path_factory) -> Path:
    """A run dir of one finished predictor epoch (``checkpoints/last.ckpt``)."""
    run = tmp_path_factory.mktemp("predictor_base") / "run"
    code, _, err = hwnas(*PREDICTOR, "estimator.epochs=1", run_dir_arg(run))
    assert code == 0, err[-3000:]
    return run


@pytest.fixture(scope="module")
def steps_per_epoch(predictor_base) -> int:
    return step_of(predictor_base / "checkpoints" / "last.ckpt")


# ------------------------------------------------------------------------------ the module's pieces
def test_write_checkpoint_replaces_only_with_a_loadable_file(tmp_path, monkeypatch):
    path = tmp_path / "ck" / "last.ckpt"
    write_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 1}, path)
    assert step_of(path) == 1 and not temp_files(path.parent)
    before = digest(path)
    fail_torch_save(monkeypatch)
    with pytest.raises(CheckpointError) as err:
        write_checkpoint({"state_dict": {"w": torch.zeros(3)}, "global_step": 2}, path)
    assert str(err.value) == (f"cannot write checkpoint '{path}': No space left on device; the previous checkpoint "
                              f"is kept (free space, then rerun with the same hydra.run.dir to resume)")
    assert digest(path) == before and not temp_files(path.parent)
    monkeypatch.undo()
    fail_torch_save(monkeypatch, garbage=True)
    with pytest.raises(CheckpointError, match="does not load back .*; the previous checkpoint is kept$"):
        write_checkpoint({"state_dict": {}, "global_step": 3}, path)
    with pytest.raises(CheckpointError, match="; no checkpoint was written$"):
        write_checkpoint({"state_dict": {}, "global_step": 3}, tmp_path / "ck" / "new.ckpt")
    assert digest(path) == before and not temp_files(path.parent) and not (tmp_path / "ck" / "new.ckpt").exists()
    monkeypatch.undo()
    weights = tmp_path / "ck" / "weights.pt"  # any payload, with the check that fits it
    write_checkpoint({"w": torch.ones(2)}, weights, check=lambda p: torch.load(p, weights_only=True))
    assert torch.equal(torch.load(weights, weights_only=True)["w"], torch.ones(2))


def test_find_resume_prefers_most_training_and_sets_damaged_aside(tmp_path, capsys):
    ck = tmp_path / "checkpoints"
    write_checkpoint({"state_dict": {}, "global_step": 8, "hyper_parameters": {"lr": 0.1}}, ck / "last.ckpt")
    write_checkpoint({"state_dict": {}, "global_step": 6}, ck / "interrupted.ckpt")  # newer file, less training
    assert find_resume(ck).path == ck / "last.ckpt" and capsys.readouterr().err == ""
    (ck / "interrupted.ckpt").write_bytes(b"")
    (ck / "last.ckpt.damaged").write_bytes(b"an older damaged one")
    resume = find_resume(ck)
    assert resume.path == ck / "last.ckpt" and resume.global_step == 8 and resume.hparams == {"lr": 0.1}
    assert capsys.readouterr().err.splitlines() == [
        f"hwnas: checkpoint '{ck / 'interrupted.ckpt'}' is unreadable (empty file); moved to "
        f"'{ck / 'interrupted.ckpt.damaged'}'; resuming from '{ck / 'last.ckpt'}'"]
    truncate(ck / "last.ckpt")
    assert find_resume(ck) is None
    line, = capsys.readouterr().err.splitlines()
    assert "(truncated, or not a checkpoint: no zip directory at its end)" in line and line.endswith("; starting afresh")
    assert f"moved to '{ck / 'last.ckpt.damaged.1'}'" in line  # nothing is overwritten, nothing deleted
    assert sorted(p.name for p in ck.iterdir()) == ["interrupted.ckpt.damaged", "last.ckpt.damaged",
                                                     "last.ckpt.damaged.1"]
    torch.save({"weights": torch.ones(2)}, ck / "last.ckpt")
    assert find_resume(ck) is None
    assert "not a Lightning checkpoint" in capsys.readouterr().err


def test_check_same_config_names_the_option(tmp_path):
    resume = Resume(tmp_path / "last.ckpt", 4, {"lr": 0.001, "model_kwargs": {"hidden": [64, 64]}, "old": 1})
    check_same_config(resume, {"lr": 0.001, "model_kwargs": {"hidden": (64, 64)}}, {"lr": "estimator.lr",
                      "model_kwargs.hidden": "estimator.hidden", "old": "x", "new": "y"})
    with pytest.raises(ConfigError, match=r"was trained with another estimator.hidden \(model_kwargs.hidden = "
                                          r"\[64, 64\]; this run: \[32\]\); use a new hydra.run.dir"):
        check_same_config(resume, {"lr": 0.001, "model_kwargs": {"hidden": [32]}}, {"model_kwargs.hidden": "estimator.hidden"})


@pytest.mark.parametrize("trainer", ["cpu", "ddp"])
def test_checkpointing_trainers_write_through_the_safe_io(trainer, compose_cfg, tmp_path):
    """Every trainer group (DDP too) builds with the plugin, for predictor and supernet fits alike."""
    from hwnas.predictors.estimator import make_trainer, manual_optimization_trainer

    cfg = compose_cfg(f"trainer={trainer}")
    for tc in (cfg.trainer, manual_optimization_trainer(cfg.trainer)):
        callbacks, resume = checkpointing(tmp_path / "checkpoints")
        t = make_trainer(tc, 1, tmp_path, callbacks=callbacks, progress=False)
        assert isinstance(t.strategy.checkpoint_io, SafeCheckpointIO) and resume is None
    assert not isinstance(make_trainer(cfg.trainer, 1, None, progress=False).strategy.checkpoint_io, SafeCheckpointIO)


# ------------------------------------------------------------------------- predictor training (hwnas CLI)
def test_truncated_last_with_good_interrupted_resumes_from_it(predictor_base, steps_per_epoch, tmp_path, run_cli,
                                                              monkeypatch):
    run = tmp_path / "run"
    ck = seed_checkpoints(run, predictor_base, interrupted="last.ckpt", last="last.ckpt")
    truncate(ck / "last.ckpt")
    damaged = digest(ck / "last.ckpt")
    spy = Spy(monkeypatch)
    code, out, err = run_cli(*PREDICTOR, "estimator.epochs=2", run_dir_arg(run))
    assert code == 0, err[-3000:]
    assert notes(err) == [f"hwnas: checkpoint '{ck / 'last.ckpt'}' is unreadable (truncated, or not a "
                          f"checkpoint: no zip directory at its end); moved to '{ck / 'last.ckpt.damaged'}'; "
                          f"resuming from '{ck / 'interrupted.ckpt'}'"]
    assert spy.starts == [steps_per_epoch] and f"resuming predictor training from {ck / 'interrupted.ckpt'}" in out
    assert step_of(ck / "last.ckpt") == 2 * steps_per_epoch  # the second epoch, saved whole
    assert digest(ck / "last.ckpt.damaged") == damaged and not (ck / "interrupted.ckpt").exists()
    assert (run / "predictor.pt").exists()


def test_truncated_last_alone_starts_afresh_and_keeps_it(predictor_base, steps_per_epoch, tmp_path, run_cli,
                                                          monkeypatch):
    run = tmp_path / "run"
    ck = seed_checkpoints(run, predictor_base)
    truncate(ck / "last.ckpt", 0.9)
    spy = Spy(monkeypatch)
    code, _, err = run_cli(*PREDICTOR, "estimator.epochs=1", run_dir_arg(run))
    assert code == 0, err[-3000:]
    line, = notes(err)
    assert line.startswith(f"hwnas: checkpoint '{ck / 'last.ckpt'}' is unreadable (") and line.endswith(
        f"; moved to '{ck / 'last.ckpt.damaged'}'; starting afresh")
    assert spy.starts == [0] and step_of(ck / "last.ckpt") == steps_per_epoch
    assert sorted(p.name for p in ck.iterdir()) == ["last.ckpt", "last.ckpt.damaged"]  # no step-0 interrupted.ckpt


def test_empty_interrupted_is_set_aside_and_last_resumed(predictor_base, steps_per_epoch, tmp_path, run_cli,
                                                         monkeypatch):
    run = tmp_path / "run"
    ck = seed_checkpoints(run, predictor_base)
    (ck / "interrupted.ckpt").write_bytes(b"")  # what a full disk left behind before the fix, newest by mtime
    spy = Spy(monkeypatch)
    code, _, err = run_cli(*PREDICTOR, "estimator.epochs=2", run_dir_arg(run))
    assert code == 0, err[-3000:]
    assert notes(err) == [f"hwnas: checkpoint '{ck / 'interrupted.ckpt'}' is unreadable (empty file); moved to "
                          f"'{ck / 'interrupted.ckpt.damaged'}'; resuming from '{ck / 'last.ckpt'}'"]
    assert spy.starts == [steps_per_epoch] and step_of(ck / "last.ckpt") == 2 * steps_per_epoch


def test_failing_resume_writes_no_interrupt_checkpoint(predictor_base, tmp_path, run_cli):
    """A checkpoint that loads but that Lightning cannot restore (weights of another shape, hyperparameters
    stripped so nothing can tell beforehand) fails the fit before its first step: no interrupted.ckpt."""
    run = tmp_path / "run"
    ck = seed_checkpoints(run, predictor_base)
    ckpt = torch.load(ck / "last.ckpt", map_location="cpu", weights_only=True)
    ckpt.pop("hyper_parameters")
    ckpt["state_dict"] = {k: v[..., :1] for k, v in ckpt["state_dict"].items()}
    torch.save(ckpt, ck / "last.ckpt")
    before = digest(ck / "last.ckpt")
    code, _, err = run_cli(*PREDICTOR, "estimator.epochs=2", run_dir_arg(run))
    assert code != 0 and "size mismatch" in err
    assert sorted(p.name for p in ck.iterdir()) == ["last.ckpt"] and digest(ck / "last.ckpt") == before


def test_disk_full_keeps_the_previous_checkpoint(steps_per_epoch, tmp_path, run_cli, monkeypatch, one_line_error):
    """A SIGTERM mid-epoch leaves interrupted.ckpt; the rerun resumes from it, and when its next checkpoint
    cannot be written (disk full half-way through the file) both checkpoints stay as they were, no temp file is
    left and the job ends in one line; the next rerun resumes from the interrupt checkpoint and finishes."""
    run, args = tmp_path / "run", [*PREDICTOR, "estimator.epochs=3", run_dir_arg(tmp_path / "run")]
    ck = run / "checkpoints"
    stop = steps_per_epoch + 2
    Spy(monkeypatch, stop_at=stop)
    assert interrupted_run(run_cli, *args) == 128 + signal.SIGTERM
    assert step_of(ck / "interrupted.ckpt") == stop and step_of(ck / "last.ckpt") == steps_per_epoch
    saved = {p.name: digest(p) for p in ck.iterdir()}
    monkeypatch.undo()

    spy = Spy(monkeypatch)
    calls = fail_torch_save(monkeypatch)
    code, _, err = run_cli(*args)
    one_line_error(code, err, f"cannot write checkpoint '{ck / 'last.ckpt'}': No space left on device; the "
                              f"previous checkpoint is kept (free space, then rerun with the same hydra.run.dir")
    assert spy.starts == [stop] and len(calls) == 1  # one try at last.ckpt; no interrupted.ckpt written after it
    assert {p.name: digest(p) for p in ck.iterdir()} == saved and not temp_files(ck)
    monkeypatch.undo()

    spy = Spy(monkeypatch)
    code, _, err = run_cli(*args)
    assert code == 0, err[-3000:]
    assert spy.starts == [stop] and notes(err) == []
    assert step_of(ck / "last.ckpt") == 3 * steps_per_epoch and sorted(p.name for p in ck.iterdir()) == ["last.ckpt"]


def test_signal_mid_epoch_resumes_exactly(steps_per_epoch, tmp_path, run_cli, monkeypatch):
    run, args = tmp_path / "run", [*PREDICTOR, "estimator.epochs=2", run_dir_arg(tmp_path / "run")]
    ck = run / "checkpoints"
    Spy(monkeypatch, stop_at=1)  # in the first epoch: only the interrupt checkpoint exists
    assert interrupted_run(run_cli, *args) == 128 + signal.SIGTERM
    assert sorted(p.name for p in ck.iterdir()) == ["interrupted.ckpt"] and step_of(ck / "interrupted.ckpt") == 1
    monkeypatch.undo()
    spy = Spy(monkeypatch)
    code, out, err = run_cli(*args)
    assert code == 0, err[-3000:]
    assert spy.starts == [1] and f"resuming predictor training from {ck / 'interrupted.ckpt'} (step 1)" in out
    assert step_of(ck / "last.ckpt") == 2 * steps_per_epoch and not (ck / "interrupted.ckpt").exists()


def test_predictor_checkpoint_of_another_network_is_refused(predictor_base, tmp_path, run_cli, one_line_error):
    run = tmp_path / "run"
    ck = seed_checkpoints(run, predictor_base)
    code, _, err = run_cli(*PREDICTOR, "estimator.epochs=2", "estimator.hidden=[32]", run_dir_arg(run))
    one_line_error(code, err, f"checkpoint '{ck / 'last.ckpt'}' was trained with another estimator.hidden "
                              "(model_kwargs.hidden = [64, 64]; this run: [32])", "use a new hydra.run.dir")


# ------------------------------------------------------------------------------- supernet training
def test_supernet_disk_full_and_damaged_checkpoints(tmp_path, run_cli, monkeypatch, one_line_error):
    """train_supernet: interrupted mid-epoch, then a full disk at the next checkpoint (one line, both kept), then
    a truncated interrupted.ckpt (one note, resumes from last.ckpt) and the run finishes."""
    run, args = tmp_path / "run", [*SUPERNET, run_dir_arg(tmp_path / "run")]
    ck = run / "checkpoints"
    stop = SUPERNET_STEPS + 1  # in the second epoch
    Spy(monkeypatch, stop_at=stop)
    assert interrupted_run(run_cli, *args) == 128 + signal.SIGTERM
    assert step_of(ck / "interrupted.ckpt") == stop and step_of(ck / "last.ckpt") == SUPERNET_STEPS
    saved = {p.name: digest(p) for p in ck.iterdir()}
    monkeypatch.undo()

    fail_torch_save(monkeypatch)
    code, out, err = run_cli(*args)
    one_line_error(code, err, f"cannot write checkpoint '{ck / 'last.ckpt'}': No space left on device",
                   "the previous checkpoint is kept")
    assert f"resuming supernet training from {ck / 'interrupted.ckpt'} (step {stop})" in out
    assert {p.name: digest(p) for p in ck.iterdir()} == saved and not temp_files(ck)
    monkeypatch.undo()

    truncate(ck / "interrupted.ckpt")
    spy = Spy(monkeypatch)
    code, out, err = run_cli(*args)
    assert code == 0, err[-3000:]
    assert notes(err) == [f"hwnas: checkpoint '{ck / 'interrupted.ckpt'}' is unreadable (truncated, or "
                          f"not a checkpoint: no zip directory at its end); moved to "
                          f"'{ck / 'interrupted.ckpt.damaged'}'; resuming from '{ck / 'last.ckpt'}'"]
    assert spy.starts == [SUPERNET_STEPS] and step_of(ck / "last.ckpt") == 2 * SUPERNET_STEPS
    assert (run / "supernet.pt").exists()


# ------------------------------------------------------------------------- a real full disk (slow)
@pytest.mark.slow
def test_file_size_limit_in_a_real_process(steps_per_epoch, tmp_path, run_cli, monkeypatch):
    """``python -m hwnas.cli`` under RLIMIT_FSIZE below a checkpoint's size (Python ignores SIGXFSZ, so the
    write fails with EFBIG, as on a full disk): non-zero exit, one line, the earlier checkpoints kept whole;
    rerun without the limit, it resumes from them and finishes."""
    import resource
    import subprocess

    run = tmp_path / "run"
    args = [*PREDICTOR, "estimator.epochs=3", run_dir_arg(run)]
    ck = run / "checkpoints"
    Spy(monkeypatch, stop_at=steps_per_epoch + 2)  # the first sitting, in-process: a SIGTERM in epoch 2
    assert interrupted_run(run_cli, *args) == 128 + signal.SIGTERM
    monkeypatch.undo()
    saved = {p.name: digest(p) for p in ck.iterdir()}
    limit = (ck / "last.ckpt").stat().st_size // 2  # far above every other file the job writes before it

    def hwnas_process(preexec_fn=None):
        return subprocess.run([sys.executable, "-m", "hwnas.cli", *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=600, preexec_fn=preexec_fn, env={**os.environ, "OMP_NUM_THREADS": "1"})

    full = hwnas_process(lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    assert full.returncode != 0 and "Traceback" not in full.stderr, full.stderr[-3000:]
    lines = [ln for ln in full.stderr.splitlines() if ln.startswith("hwnas: error:")]
    assert lines == [f"hwnas: error: cannot write checkpoint '{ck / 'last.ckpt'}': File too large; the previous "
                     f"checkpoint is kept (free space, then rerun with the same hydra.run.dir to resume)"], full.stderr
    assert {p.name: digest(p) for p in ck.iterdir()} == saved and not temp_files(ck)
    assert all(load_checkpoint(ck / name) for name in saved)

    done = hwnas_process()
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resuming predictor training from {ck / 'interrupted.ckpt'} (step {steps_per_epoch + 2})" in done.stdout
    assert step_of(ck / "last.ckpt") == 3 * steps_per_epoch and (run / "metrics.json").exists()


# ------------------------------------------------------------------------------- differentiable search
def test_differentiable_search_resumes_and_writes_through_the_same_checks(tmp_path, capsys, monkeypatch):
    """search_strategy=differentiable checkpoints through the same helpers: a damaged file is set aside, a
    checkpoint of another lambda is refused, a full disk keeps the previous checkpoint."""
    from hwnas.search.differentiable import DifferentiableSearch, lut_latency
    from hwnas.search.mixed import mixed_space
    from hwnas.spaces import get_space
    from hwnas.supernet.data import DigitsDataModule

    from test_differentiable import RES, fake_table

    space = get_space("ofa_mbv3", resolutions=[RES], width_mult=0.25, num_classes=10)
    mixed = mixed_space(space, RES)
    latency = lut_latency(mixed, fake_table(space, mixed), "test")
    trainer = {"_target_": "pytorch_lightning.Trainer", "accelerator": "cpu", "devices": 1, "limit_train_batches": 2,
               "limit_val_batches": 1, "enable_progress_bar": False}

    def search(lam=0.0):
        strategy = DifferentiableSearch(**{"lambda": lam}, epochs=1, warmup_epochs=1, resolution=RES, seed=0)
        return strategy.search(space, DigitsDataModule(image_size=RES, batch_size=32, seed=0), latency, trainer,
                               work_dir=tmp_path)

    search()
    ck = tmp_path / "checkpoints"
    steps = step_of(ck / "last.ckpt")
    assert steps > 0 and sorted(p.name for p in ck.iterdir()) == ["last.ckpt"]
    shutil.copy2(ck / "last.ckpt", ck / "interrupted.ckpt")
    truncate(ck / "last.ckpt")
    capsys.readouterr()
    search()
    out, err = capsys.readouterr()
    assert notes(err) == [f"hwnas: checkpoint '{ck / 'last.ckpt'}' is unreadable (truncated, or not a checkpoint: no "
                          f"zip directory at its end); moved to '{ck / 'last.ckpt.damaged'}'; resuming from "
                          f"'{ck / 'interrupted.ckpt'}'"]
    assert f"resuming differentiable search from {ck / 'interrupted.ckpt'} (step {steps})" in out
    # nothing left to train: the interrupt checkpoint holds the end of the fit, and becomes last.ckpt
    assert sorted(p.name for p in ck.iterdir()) == ["last.ckpt", "last.ckpt.damaged"] and step_of(ck / "last.ckpt") == steps
    with pytest.raises(ConfigError, match=r"was trained with another search_strategy.lambda \(latency_lambda = 0.0; "
                                          r"this run: 100.0\)"):
        search(100.0)
    shutil.rmtree(ck)
    fail_torch_save(monkeypatch)
    with pytest.raises(CheckpointError, match=r"cannot write checkpoint '.*last.ckpt': No space left on device; no "
                                              r"checkpoint was written"):
        search()
    assert not list(ck.iterdir())
