"""Training one subnet from scratch (job=train_subnet): the network is exactly the space's subnet, it learns,
the learning rate follows the supernet schedule's curve, the inherited subnet of a supernet is scored beside it,
bad requests fail in one line."""
from __future__ import annotations

import csv
import json
import shutil

import pytest
import pytorch_lightning as pl
import torch

from hwnas.errors import ConfigError
from hwnas.jobs import run_job
from hwnas.spaces import get_space
from hwnas.supernet import OFASupernet, save_supernet, smallest_arch, space_spec
from hwnas.supernet.standalone import SubnetTraining, resolve_arch

torch.set_num_threads(1)

TINY = ["job=train_subnet", "search_space.resolutions=[16,20]", "search_space.width_mult=0.25", "data.batch_size=128",
        "train_subnet.calibration_images=128", "train_subnet.progress_bar=false", "logger=none",
        "trainer.log_every_n_steps=1", "train_subnet.epochs=2", "train_subnet.warmup_epochs=0.5"]


def test_module_trains_exactly_the_spaces_subnet():
    space = get_space("ofa_mbv3", resolutions=[16, 20], width_mult=0.25, num_classes=10)
    arch = space.sample(1, seed=3)[0]
    module = SubnetTraining(space=space_spec(space), arch=space.to_string(arch), epochs=1, lr=0.1)
    reference = OFASupernet(space).extract_subnet(arch)  # what a supernet hands over for this arch
    assert {k: v.shape for k, v in module.model.state_dict().items()} == \
           {k: v.shape for k, v in reference.state_dict().items()}
    again = SubnetTraining(space=space_spec(space), arch=space.to_string(arch), epochs=1, lr=0.1, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(module.model.state_dict().values(), again.model.state_dict().values()))
    assert module.eval()(torch.zeros(2, 3, 20, 20)).shape == (2, 10)
    assert resolve_arch(space, "smallest") == smallest_arch(space)
    with pytest.raises(ConfigError, match="arch: ofa_mbv3: 'tiny' is not JSON"):
        resolve_arch(space, "tiny")
    with pytest.raises(ConfigError, match="epochs = 0 must be >= 1"):
        SubnetTraining(space=space_spec(space), arch="largest", epochs=0, lr=0.1)


def _csv_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_job_learns_and_scores_the_inherited_subnet(compose_cfg, tmp_path):
    pl.seed_everything(0, verbose=False)
    space = get_space("ofa_mbv3", resolutions=[16, 20], width_mult=0.25, num_classes=10)
    ckpt = save_supernet(OFASupernet(space), tmp_path / "supernet.pt", data="digits", image_size=20)
    archs = [space.to_string(a) for a in space.sample(3, seed=1)]
    listing = tmp_path / "archs.csv"
    listing.write_text("arch,accuracy\n" + "".join(f"\"{a.replace(chr(34), chr(34) * 2)}\",50\n" for a in archs))
    run_dir = tmp_path / "run"
    common = [*TINY, f"train_subnet.archs_file={listing}", f"train_subnet.supernet={ckpt}"]
    m = run_job(compose_cfg(*common, "train_subnet.index=2"), run_dir=run_dir)
    assert (run_dir / "arch.txt").read_text().strip() == archs[2]
    assert m["epochs"] == 2 and m["global_step"] == 2 * 9  # 1,258 training digits / 128, last batch dropped
    assert m["resolution"] == space.parse(archs[2]).r and m["flops"] > 0 and m["params"] > 0
    assert m["val/acc"] > 20 and m["test/acc"] > 20  # chance is 10 %
    assert 0 <= m["test/acc_inherited"] <= 100 and 0 <= m["test/acc_running_bn"] <= 100
    logged = [r for path in run_dir.glob("lightning_logs/*/metrics.csv") for r in _csv_rows(path) if r.get("train/lr")]
    lrs = [float(r["train/lr"]) for r in sorted(logged, key=lambda r: int(r["step"]))]
    # the supernet schedule's curve: linear warm-up over half an epoch (4 of 9 steps), then cosine to 0
    assert len(lrs) == 18 and lrs[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1]) and lrs[4] == pytest.approx(0.1)
    assert lrs[-1] < 0.005 and all(a >= b for a, b in zip(lrs[4:], lrs[5:]))
    assert json.loads((run_dir / "metrics.json").read_text())["test/acc"] == m["test/acc"]
    # a finished run is not trained again; its checkpoints copied under another arch are refused
    again = run_job(compose_cfg(*common, "train_subnet.index=2"), run_dir=run_dir)
    assert again["global_step"] == m["global_step"] and again["test/acc"] == pytest.approx(m["test/acc"])
    shutil.copytree(run_dir / "checkpoints", tmp_path / "copy" / "checkpoints")
    with pytest.raises(ConfigError, match="was trained with another arch"):
        run_job(compose_cfg(*common, "train_subnet.index=0"), run_dir=tmp_path / "copy")


@pytest.mark.parametrize("overrides,message", [
    ([], "needs exactly one of train_subnet.arch"),
    (["train_subnet.arch=largest", "train_subnet.archs_file=x.csv"], "needs exactly one of train_subnet.arch"),
    (["train_subnet.archs_file=ARCHS"], r"train_subnet.index = None must be a row number"),
    (["train_subnet.archs_file=ARCHS", "train_subnet.index=5"], r"index = 5 is past the last row of .* \(1 rows\)"),
    (["train_subnet.arch=huge"], r"train_subnet.arch: ofa_mbv3: 'huge' is not JSON"),
    (["train_subnet.arch=largest", "train_subnet.eval_splits=[dev]"], "'dev' is not a split"),
])
def test_job_config_errors(compose_cfg, tmp_path, overrides, message):
    listing = tmp_path / "archs.csv"
    listing.write_text("arch\nsmallest\n")
    overrides = [o.replace("ARCHS", str(listing)) for o in overrides]
    with pytest.raises(ConfigError, match=message):
        run_job(compose_cfg(*TINY, *overrides), run_dir=tmp_path / "run")
