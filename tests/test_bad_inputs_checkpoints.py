"""The checkpoint catalogue: what a user sees when a run dir's checkpoints are damaged, cannot be written,
or come from another config.

Like tests/test_bad_inputs.py, each case runs the real ``hwnas`` entry point in-process and checks the
one line a user gets: an unreadable checkpoint is reported in one ``hwnas: checkpoint ...`` line and the
run goes on (exit 0) from the newest readable one, or afresh; a checkpoint that cannot be written or
that belongs to another config ends the run with one ``hwnas: error:`` line. The run dirs start from
checkpoints of a tiny fit, copied in as a user's copied or half-written checkpoints folder would be.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from test_checkpoints import PREDICTOR, SUPERNET, fail_torch_save, hwnas, one_thread, truncate  # noqa: F401 - autouse

from fixture_data import FIXTURE_ROOT

NOTE, ERROR = "hwnas: checkpoint ", "hwnas: error:"


def latency_csv(path: Path, scale: float = 1.0) -> Path:
    """NB201's pixel3 latencies of the fixture table as a user's ``device=table`` CSV (times ``scale``)."""
    from hwnas.devices import TableDevice
    from hwnas.spaces import get_space

    space = get_space("nb201")
    archs, lat = TableDevice(source="help", column="pixel3", space="nb201", data_dir=str(FIXTURE_ROOT)).dataset(space)
    path.write_text("arch,latency_ms\n" + "".join(f"{space.to_string(a)},{v * scale:.6g}\n" for a, v in zip(archs, lat)))
    return path


#: the fits the cases copy checkpoints from: (overrides, more overrides; {tmp} = the fit's folder)
BASES = {"predictor": (PREDICTOR, ["estimator.epochs=1"]),
         "predictor_csv": ([a for a in PREDICTOR if not a.startswith("device")],
                           ["device=table", "device.path={tmp}/base.csv", "estimator.epochs=1"]),
         "supernet": (SUPERNET, [])}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """``base(name)`` -> the checkpoints folder of the finished ``BASES[name]`` fit (each run once, when needed)."""
    made: dict[str, Path] = {}

    def _base(name: str) -> Path:
        if name not in made:
            tmp = tmp_path_factory.mktemp(name)
            if name == "predictor_csv":
                latency_csv(tmp / "base.csv")
            args, extra = BASES[name]
            code, _, err = hwnas(*args, *[e.replace("{tmp}", str(tmp)) for e in extra], f"hydra.run.dir={tmp}/run")
            assert code == 0, err[-3000:]
            made[name] = tmp / "run" / "checkpoints"
        return made[name]

    return _base


def copy(base_dir: Path, ck: Path, **names: str) -> None:
    ck.mkdir(parents=True, exist_ok=True)
    for target, source in names.items():
        shutil.copy2(base_dir / source, ck / target)


def last_only(kind="predictor"):
    return lambda ck, base, tmp, mp: copy(base(kind), ck, **{"last.ckpt": "last.ckpt"})


def both(kind="predictor"):
    return lambda ck, base, tmp, mp: copy(base(kind), ck, **{"last.ckpt": "last.ckpt", "interrupted.ckpt": "last.ckpt"})


def then(*steps):
    def setup(ck, base, tmp, mp):
        for step in steps:
            step(ck, base, tmp, mp)
    return setup


def cut(name, keep=0.5):
    return lambda ck, base, tmp, mp: truncate(ck / name, keep)


def write(name, data: bytes):
    return lambda ck, base, tmp, mp: (ck.mkdir(parents=True, exist_ok=True), (ck / name).write_bytes(data))


def torch_file(name, payload):
    return lambda ck, base, tmp, mp: (ck.mkdir(parents=True, exist_ok=True), torch.save(payload, ck / name))


def disk_full(garbage=False):
    return lambda ck, base, tmp, mp: fail_torch_save(mp, garbage=garbage)


def scaled_csv(scale):
    return lambda ck, base, tmp, mp: latency_csv(tmp / "lat.csv", scale)


TWO_EPOCHS = ["estimator.epochs=2"]
ON_CSV = [a for a in PREDICTOR if not a.startswith("device")] + ["device=table", "device.path={tmp}/lat.csv", *TWO_EPOCHS]
AFRESH = "; starting afresh"

CASES = {
    # name: (setup(checkpoints dir, base, tmp_path, monkeypatch), overrides, needles of the one line: the first
    # says which line (a NOTE and the run goes on, or an ERROR)); {ck} = the run's checkpoints folder
    "last.ckpt cut short, nothing else": (
        then(last_only(), cut("last.ckpt")), [*PREDICTOR, *TWO_EPOCHS],
        [NOTE, "'{ck}/last.ckpt' is unreadable (truncated, or not a checkpoint: no zip directory at its end)",
         "moved to '{ck}/last.ckpt.damaged'", AFRESH]),
    "last.ckpt cut short beside a good interrupted.ckpt": (
        then(both(), cut("last.ckpt")), [*PREDICTOR, *TWO_EPOCHS],
        [NOTE, "'{ck}/last.ckpt' is unreadable (truncated", "resuming from '{ck}/interrupted.ckpt'"]),
    "empty interrupted.ckpt beside a good last.ckpt": (
        then(last_only(), write("interrupted.ckpt", b"")), [*PREDICTOR, *TWO_EPOCHS],
        [NOTE, "'{ck}/interrupted.ckpt' is unreadable (empty file)", "moved to '{ck}/interrupted.ckpt.damaged'",
         "resuming from '{ck}/last.ckpt'"]),
    "both checkpoints cut short: the older one is kept too": (
        then(both(), cut("last.ckpt", 0.9), cut("interrupted.ckpt", 0.1)), [*PREDICTOR, *TWO_EPOCHS],
        [NOTE, "'{ck}/interrupted.ckpt' is unreadable", AFRESH]),
    "a text file named last.ckpt": (
        write("last.ckpt", b"epoch=3\n"), [*PREDICTOR, *TWO_EPOCHS],
        [NOTE, "'{ck}/last.ckpt' is unreadable (truncated, or not a checkpoint", AFRESH]),
    "a torch file that is not a Lightning checkpoint": (
        torch_file("last.ckpt", {"weights": torch.ones(3)}), [*PREDICTOR, *TWO_EPOCHS],
        [NOTE, "(not a Lightning checkpoint: no state_dict or global_step)", AFRESH]),
    "supernet interrupted.ckpt cut short": (
        then(both("supernet"), cut("interrupted.ckpt")), SUPERNET,
        [NOTE, "'{ck}/interrupted.ckpt' is unreadable (truncated", "resuming from '{ck}/last.ckpt'"]),
    "disk full while writing a checkpoint": (
        then(last_only(), disk_full()), [*PREDICTOR, *TWO_EPOCHS],
        [ERROR, "cannot write checkpoint '{ck}/last.ckpt': No space left on device; the previous checkpoint is kept",
         "free space, then rerun with the same hydra.run.dir"]),
    "disk full before the first checkpoint": (
        disk_full(), [*PREDICTOR, "estimator.epochs=1"],
        [ERROR, "cannot write checkpoint '{ck}/last.ckpt': No space left on device; no checkpoint was written"]),
    "a written checkpoint that does not load back": (
        then(last_only(), disk_full(garbage=True)), [*PREDICTOR, *TWO_EPOCHS],
        [ERROR, "cannot write checkpoint '{ck}/last.ckpt': the written file does not load back",
         "the previous checkpoint is kept"]),
    "predictor checkpoint of another estimator.lr": (
        last_only(), [*PREDICTOR, *TWO_EPOCHS, "estimator.lr=0.01"],
        [ERROR, "checkpoint '{ck}/last.ckpt' was trained with another estimator.lr (lr = 0.001; this run: 0.01)",
         "use a new hydra.run.dir, or delete {ck} to start over"]),
    "predictor checkpoint of another model": (
        last_only(), [*PREDICTOR, *TWO_EPOCHS, "estimator=gcn"],
        [ERROR, "was trained with another estimator.model (model = 'mlp'; this run: 'gcn')"]),
    "predictor checkpoint of a latency table that has changed since": (
        then(lambda ck, base, tmp, mp: copy(base("predictor_csv"), ck, **{"last.ckpt": "last.ckpt"}), scaled_csv(1.5)),
        ON_CSV, [ERROR, "'{ck}/last.ckpt' was trained with another training set (target_mean = "]),
    "supernet checkpoint of another seed": (
        last_only("supernet"), [*SUPERNET, "seed=1"],
        [ERROR, "'{ck}/last.ckpt' was trained with another seed (seed = 0; this run: 1)"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_checkpoint_case_is_one_line(case, base, tmp_path, run_cli, monkeypatch, one_line_error):
    setup, overrides, needles = CASES[case]
    ck = tmp_path / "run" / "checkpoints"
    setup(ck, base, tmp_path, monkeypatch)
    code, _, err = run_cli(*[o.replace("{tmp}", str(tmp_path)) for o in overrides], f"hydra.run.dir={tmp_path}/run")
    kind, needles = needles[0], [n.replace("{ck}", str(ck)) for n in needles[1:]]
    if kind == ERROR:
        one_line_error(code, err, *needles)
        assert not list(ck.glob(".*.tmp")), "a temp file was left"
        return
    assert code == 0, f"{case}: exit {code}\n{err[-3000:]}"
    lines = [ln for ln in err.splitlines() if ln.startswith(NOTE)]
    assert lines, f"{case}: no '{NOTE}' line:\n{err}"
    for needle in needles:
        assert needle in lines[0], f"{case}: {needle!r} not in {lines[0]!r}"
    assert len(lines) == sum(1 for p in ck.glob("*.damaged")), lines  # one line for each file set aside
    assert (ck / "last.ckpt").is_file() and not list(ck.glob(".*.tmp"))
