"""Bad-input catalogue, part 2: files of the wrong kind and degenerate values (issue #13, classes 5 and 6).

Class 5: a checkpoint records what it predicts (target, unit, space), and every loader refuses a file made
for another role in one line naming the file, what it holds and what the role needs: latency and accuracy
predictors, OFA's published accuracy predictor, supernets, job=transfer's multi-device predictor, Lightning
resume checkpoints, and files of earlier hwnas versions judged from their contents.

Class 6: a value the computation cannot use (a count of 0 or 1 where a fit or a rank correlation needs more,
a fraction for a count, a negative learning rate, re-measurements 1000x apart) is one ``hwnas: error:`` line
naming the value and what is allowed, not a silent fallback, slice or truncation.

Each case runs the real ``hwnas`` entry point in-process, as tests/test_bad_inputs.py does; checkpoints are
written without training (a network saved as a trained one would be), so every case takes about a second.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from fixture_data import DATA_ROOT
from hwnas.spaces import get_space

NB201 = get_space("nb201")
#: the first architectures of the data root's HELP table (full or fixture): job=transfer's user targets must be in it
ARCHS = [NB201.to_string(a) for a in NB201.from_strings(
    [line.split(",")[1] for line in (DATA_ROOT / "nb201" / "latency_help.csv").read_text().splitlines()[1:25]])]
NB, NB2 = ARCHS[0], ARCHS[1]


def _csv(path, header: str, rows) -> str:
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return str(path)


def _predictor(target: str = "latency", transform: str = "log", mean: float = 1.0):
    from hwnas.predictors.module import LatencyPredictor

    return LatencyPredictor(model="mlp", model_kwargs={"input_dim": 30, "hidden": [8]}, target_transform=transform,
                            target_mean=mean, space="nb201", encoding_dim=30, target=target)


def _old(path, source, **hparams) -> str:
    """An earlier hwnas's file: the same payload without the target record."""
    payload = torch.load(source, weights_only=True)
    del payload["predicts"]
    payload["hparams"] = {k: v for k, v in payload["hparams"].items() if k != "target"} | hparams
    torch.save(payload, path)
    return str(path)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, str]:
    """Every file the cases name, by key."""
    from hwnas.predictors import PredictorEstimator
    from hwnas.predictors.module import save_predictor
    from hwnas.predictors.transfer import MultiDevicePredictor

    d = tmp_path_factory.mktemp("files")
    f = {"latency": str(save_predictor(_predictor("latency"), d / "predictor.pt")),
         "accuracy": str(save_predictor(_predictor("accuracy", "none", 88.9), d / "accuracy_predictor.pt"))}
    f["old_accuracy"] = _old(d / "old_accuracy.pt", f["latency"], target_transform="none", target_mean=88.96)
    f["old_latency"] = _old(d / "old_latency.pt", f["latency"])
    f["old_slow_latency"] = _old(d / "old_slow_latency.pt", f["latency"], target_mean=6.5)  # exp(6.5) ms: no percentage
    torch.save({"format": "hwnas-supernet/1", "space": {"name": "ofa_mbv3", "resolutions": [224]}, "meta": {},
                "state_dict": {"stem.weight": torch.zeros(1)}}, d / "supernet.pt")
    f["supernet"] = str(d / "supernet.pt")
    multi = MultiDevicePredictor(PredictorEstimator(progress_bar=False), ["descriptor"], per_device=False)
    multi.module = _predictor()
    f["pretrained"] = str(multi.save(d / "pretrained.pt"))
    torch.save({"epoch": 3, "pytorch-lightning_version": "2.4.0", "state_dict": {}, "hyper_parameters": {}},
               d / "last.ckpt")
    f["lightning"] = str(d / "last.ckpt")
    torch.manual_seed(0)
    ofa = torch.nn.Sequential(torch.nn.Linear(128, 400), torch.nn.ReLU(), torch.nn.Linear(400, 400), torch.nn.ReLU(),
                              torch.nn.Linear(400, 400), torch.nn.ReLU(), torch.nn.Linear(400, 1))
    torch.save(ofa.state_dict(), d / "acc_predictor.pth")
    f["ofa"] = str(d / "acc_predictor.pth")
    f["fit"] = _csv(d / "fit.csv", "arch,latency_ms", [(a, i + 1) for i, a in enumerate(ARCHS[:3])])
    f["small"] = _csv(d / "small.csv", "arch,latency_ms", [(a, 1 + i / 4) for i, a in enumerate(ARCHS[:10])])
    f["twenty"] = _csv(d / "twenty.csv", "arch,latency_ms", [(a, 1 + i / 4) for i, a in enumerate(ARCHS[:20])])
    f["dup"] = _csv(d / "dup.csv", "arch,latency_ms", [(NB, 1.0), (NB, 1000.0), (NB2, 2.0),
                                                      *((a, 3.0 + i) for i, a in enumerate(ARCHS[2:8]))])
    f["acc"] = _csv(d / "acc.csv", "arch,accuracy", [(a, 60 + i) for i, a in enumerate(ARCHS[:8])])
    f["acc_one"] = _csv(d / "acc_one.csv", "arch,accuracy", [(NB, 70.0), (NB, 70.5)])
    f["acc_dup"] = _csv(d / "acc_dup.csv", "arch,accuracy", [(NB, 10.0), (NB, 90.0), (NB2, 50.0)])
    return f


# ----------------------------------------------------------------------------- the catalogue
PREDICT = ["job=predict", "search_space=nb201", "predict.input={fit}", "estimator=predictor"]
SEARCH = ["job=search", "search_space=nb201", "device=table", "device.path={fit}", "estimator=flops",
          "estimator.fit_data={fit}", "search.latency_budgets=[5]"]
EVALUATE = ["job=evaluate", "search_space=nb201", "device=table", "device.path={small}", "estimator=flops",
            "estimator.fit_samples=5"]
TRAIN = ["job=train_predictor", "search_space=nb201", "device=table", "device.path={twenty}"]
FEW_SHOT = ["job=transfer", "search_space=nb201", "transfer.source_devices=[pixel3,samsung_a50]",
            "transfer.target.path={small}"]
FINETUNE = ["job=transfer", "search_space=nb201", "transfer.method=finetune", "device=table", "device.path={small}"]

CASES = {
    # name: (overrides, needles in the one error line); {key}: a file of made(), {tmp}: this case's tmp_path
    # ---- class 5: a file of the wrong kind, in each direction and through each loader
    "accuracy predictor as estimator.checkpoint": (
        [*PREDICT, "estimator.checkpoint={accuracy}"],
        ["estimator.checkpoint", "accuracy_predictor.pt", "is an accuracy predictor (percent, search space nb201)",
         "not a latency predictor (ms)", "accuracy=predictor accuracy.checkpoint="]),
    "latency predictor as accuracy.checkpoint": (
        [*SEARCH, "accuracy=predictor", "accuracy.checkpoint={latency}"],
        ["accuracy.checkpoint", "predictor.pt", "is a latency predictor (ms", "not an accuracy predictor (percent)",
         "estimator=predictor estimator.checkpoint="]),
    "OFA's acc_predictor.pth as estimator.checkpoint": (
        [*PREDICT, "estimator.checkpoint={ofa}"],
        ["acc_predictor.pth", "OFA's published accuracy predictor", "not a latency predictor",
         "accuracy=ofa_predictor accuracy.path="]),
    "OFA's acc_predictor.pth as accuracy.checkpoint": (
        [*SEARCH, "accuracy=predictor", "accuracy.checkpoint={ofa}"],
        ["accuracy.checkpoint", "OFA's published accuracy predictor", "not an accuracy predictor (percent)",
         "accuracy=ofa_predictor accuracy.path="]),
    "latency predictor as OFA's accuracy.path": (
        [*SEARCH, "accuracy=ofa_predictor", "accuracy.path={latency}"],
        ["accuracy.path", "is a latency predictor", "not OFA's published accuracy predictor", "acc_predictor.pth"]),
    "hwnas accuracy predictor as OFA's accuracy.path": (
        [*SEARCH, "accuracy=ofa_predictor", "accuracy.path={accuracy}"],
        ["accuracy.path", "is an accuracy predictor (percent", "not OFA's published accuracy predictor",
         "accuracy=predictor accuracy.checkpoint="]),
    "supernet as estimator.checkpoint": (
        [*PREDICT, "estimator.checkpoint={supernet}"],
        ["supernet.pt", "is an OFA supernet of job=train_supernet (search space ofa_mbv3)", "not a latency predictor",
         "eval_subnets.checkpoint="]),
    "supernet as accuracy.checkpoint": (
        [*SEARCH, "accuracy=predictor", "accuracy.checkpoint={supernet}"],
        ["accuracy.checkpoint", "is an OFA supernet", "not an accuracy predictor"]),
    "latency predictor as eval_subnets.checkpoint": (
        ["job=eval_subnets", "eval_subnets.checkpoint={latency}"],
        ["predictor.pt", "is a latency predictor (ms", "not an OFA supernet", "supernet.pt of job=train_supernet"]),
    "accuracy predictor as transfer.base": (
        [*FINETUNE, "transfer.base={accuracy}"],
        ["transfer.base", "is an accuracy predictor", "not a latency predictor (ms)"]),
    "supernet as transfer.base": (
        [*FINETUNE, "transfer.base={supernet}"], ["transfer.base", "is an OFA supernet", "not a latency predictor"]),
    "job=transfer's pretrained.pt as estimator.checkpoint": (
        [*PREDICT, "estimator.checkpoint={pretrained}"],
        ["pretrained.pt", "multi-device latency predictor", "once adapted", "not a latency predictor"]),
    "Lightning resume checkpoint as estimator.checkpoint": (
        [*PREDICT, "estimator.checkpoint={lightning}"],
        ["last.ckpt", "PyTorch Lightning training checkpoint", "the .pt file it wrote in its run dir"]),
    "earlier hwnas accuracy predictor as estimator.checkpoint": (
        [*PREDICT, "estimator.checkpoint={old_accuracy}"],
        ["old_accuracy.pt", "is an accuracy predictor", "by its contents", "without a target record",
         "target_transform=none, target mean 88.96", "not a latency predictor", "stamp_predictor("]),
    "earlier hwnas latency predictor as accuracy.checkpoint": (
        [*SEARCH, "accuracy=predictor", "accuracy.checkpoint={old_latency}"],
        ["old_latency.pt", "is a latency predictor", "target_transform=log", "not an accuracy predictor",
         "stamp_predictor("]),
    "earlier hwnas latency predictor no percentage fits, as accuracy.checkpoint": (
        [*SEARCH, "accuracy=predictor", "accuracy.checkpoint={old_slow_latency}"],
        ["old_slow_latency.pt", "is a latency predictor", "which no percentage averages", "not an accuracy predictor"]),
    "CSV as accuracy.checkpoint": (
        [*SEARCH, "accuracy=predictor", "accuracy.checkpoint={fit}"],
        ["accuracy.checkpoint", "fit.csv", "is not an hwnas predictor checkpoint"]),
    # ---- class 6: degenerate values
    "train.samples=0 (was: everything)": ([*TRAIN, "train.samples=0"], ["train.samples = 0", "between 2 and 14"]),
    "train.samples=1 (was: one)": ([*TRAIN, "train.samples=1"], ["train.samples = 1", "between 2 and 14", ">= 2"]),
    "train.samples fractional": ([*TRAIN, "train.samples=2.5"], ["train.samples = 2.5 is not an integer"]),
    "train.samples above the split": ([*TRAIN, "train.samples=15"], ["train.samples = 15", "training split has 14"]),
    "train split of one row": ([*TRAIN, "train.split=[0.05,0.5,0.45]"],
                               ["train.split gives 1/10/9 of 20", "training split needs >= 2"]),
    "validation split of one row": ([*TRAIN, "train.split=[0.9,0.1,0.0]", "device.path={small}"],
                                    ["train.split gives 9/1/0 of 10", "validation split of 1 cannot be scored"]),
    "test split of two rows": ([*TRAIN, "train.split=[0.8,0.0,0.2]", "device.path={small}"],
                               ["train.split gives 8/0/2 of 10", "test split of 2 cannot be scored"]),
    "train.split not a list": ([*TRAIN, "train.split=0.7"], ["train.split = 0.7", "three non-negative fractions"]),
    "train.split fraction as text": ([*TRAIN, "train.split=[a,0.5,0.5]"], ["train.split[0] = 'a'"]),
    "evaluate.test_samples=-5 (was: slice [:-5])": ([*EVALUATE, "evaluate.test_samples=-5"],
                                                    ["evaluate.test_samples = -5", ">= 3"]),
    "evaluate.test_samples=0 (was: torchmetrics crash)": ([*EVALUATE, "evaluate.test_samples=0"],
                                                          ["evaluate.test_samples = 0", ">= 3", "Spearman"]),
    "evaluate.test_samples=1 (was: Spearman 0.0)": ([*EVALUATE, "evaluate.test_samples=1"],
                                                    ["evaluate.test_samples = 1", ">= 3"]),
    "evaluate.test_samples fractional": ([*EVALUATE, "evaluate.test_samples=2.5"], ["test_samples = 2.5 is not an integer"]),
    "evaluate.test_samples beyond the table": ([*EVALUATE, "evaluate.test_samples=50"],
                                               ["evaluate.test_samples = 50", "exceeds the 5 architectures left"]),
    "evaluate on the architectures it was fitted on": ([*EVALUATE, "estimator.fit_data={small}"],
                                                       ["estimator.fit_data", "holds 10 of the 10 architectures",
                                                        "leaving 0 unseen", ">= 3"]),
    "evaluate.train_samples negative": ([*EVALUATE, "evaluate.train_samples=-1"], ["evaluate.train_samples = -1", ">= 0"]),
    "evaluate fit pool leaving < 3 to test": ([*EVALUATE, "evaluate.train_samples=8"],
                                              ["fit pool of 8", "leaves 2 of the 10", ">= 3"]),
    "transfer.samples = the whole target": ([*FEW_SHOT, "transfer.samples=10"],
                                           ["transfer.samples = 10", "leaves 0 of the 10 architectures of small unseen",
                                            "allowed: 2..7"]),
    "finetune transfer.samples = the whole target": ([*FINETUNE, "transfer.base={latency}", "transfer.samples=9"],
                                                     ["transfer.samples = 9", "leaves 1 of the 10", "allowed: 2..7"]),
    "transfer.samples=1": ([*FEW_SHOT, "transfer.samples=1"], ["transfer.samples = 1", ">= 2"]),
    "transfer.samples fractional": ([*FEW_SHOT, "transfer.samples=2.5"], ["transfer.samples = 2.5 is not an integer"]),
    "transfer.adapt.lr negative": ([*FEW_SHOT, "transfer.adapt.lr=-1e-4"], ["transfer.adapt.lr = -0.0001", "> 0"]),
    "transfer.adapt.steps fractional": ([*FEW_SHOT, "transfer.adapt.steps=1.5"], ["transfer.adapt.steps = 1.5"]),
    "transfer.pretrain.epochs=0": ([*FEW_SHOT, "transfer.pretrain.epochs=0"], ["transfer.pretrain.epochs = 0", ">= 1"]),
    "transfer.pretrain.archs_per_device=0": ([*FEW_SHOT, "transfer.pretrain.archs_per_device=0"],
                                             ["archs_per_device = 0", ">= 2"]),
    "re-measurements 1000x apart (was: averaged)": (
        ["job=evaluate", "search_space=nb201", "device=table", "device.path={dup}", "estimator=flops"],
        ["dup.csv", f"architecture {NB} 2 times", "1 ms at row 1 (line 2)", "1000 ms at row 2 (line 3)",
         "max/min 1e+03", "fix or drop the wrong rows"]),
    "accuracy re-evaluations 80 points apart": (
        [*SEARCH, "accuracy=table", "accuracy.path={acc_dup}"],
        ["acc_dup.csv", f"architecture {NB} 2 times", "10 % at row 1", "90 % at row 2", "80 points apart"]),
    "accuracy predictor from one architecture": (
        [*SEARCH, "accuracy=predictor", "accuracy.fit_data={acc_one}"], ["acc_one.csv", "1 distinct architecture", ">= 2"]),
    "accuracy.epochs fractional": ([*SEARCH, "accuracy=predictor", "accuracy.fit_data={acc}", "accuracy.epochs=1.5"],
                                   ["accuracy.epochs = 1.5 is not an integer"]),
    "predict.batch_size=0": ([*PREDICT[:3], "estimator.fit_data={fit}", "predict.batch_size=0"],
                             ["predict.batch_size = 0", ">= 1"]),
    "search.threads=0 (was: torch's default)": ([*SEARCH, "search.threads=0"], ["search.threads = 0", ">= 1", "null"]),
    "search.limits negative": ([*SEARCH, "search.limits.flops=-1"], ["search.limits.flops = -1", "> 0"]),
    "search.hv_reference as text": ([*SEARCH, "search.hv_reference=[abc,5]"], ["search.hv_reference[0]", "'abc'"]),
    "search.margin_samples below a quantile's need": (
        [*SEARCH, "search.latency_margin=auto", "search.margin_samples=5"], ["search.margin_samples = 5", ">= 10"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_value_or_file_is_one_line(case, made, tmp_path, run_cli, one_line_error):
    overrides, needles = CASES[case]
    args = [o.format(tmp=tmp_path, **made) for o in overrides]
    code, _, err = run_cli("logger=none", *args, f"hydra.run.dir={tmp_path}/run")
    one_line_error(code, err, *needles)


# ----------------------------------------------------------------------------- what is still accepted
def _ok(code, out, err):
    assert code == 0, err
    assert "hwnas: error" not in err and "Traceback" not in err


def test_smallest_accepted_values_still_run(made, tmp_path, run_cli):
    """train.samples=2 trains on 2; evaluate.test_samples=3 scores 3."""
    import json

    tiny = ["estimator.epochs=1", "estimator.hidden=[8]", "estimator.progress_bar=false"]
    _ok(*run_cli("logger=none", *[a.format(**made) for a in TRAIN], "device.path=" + made["twenty"], *tiny,
                 "train.samples=2", f"hydra.run.dir={tmp_path}/train"))
    m = json.loads((tmp_path / "train" / "metrics.json").read_text())
    assert m["n_train"] == 2 and m["n_val"] == 3 and m["n_test"] == 3
    _ok(*run_cli("logger=none", *[a.format(**made) for a in EVALUATE], "evaluate.test_samples=3",
                 f"hydra.run.dir={tmp_path}/eval"))
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert m["n_test"] == 3 and -1 <= m["spearman"] <= 1
    # fitted on a file: scored on the table's other architectures only (fit.csv lists 3 of small.csv's 10)
    _ok(*run_cli("logger=none", *[a.format(**made) for a in EVALUATE], f"estimator.fit_data={made['fit']}",
                 f"hydra.run.dir={tmp_path}/eval_file"))
    assert json.loads((tmp_path / "eval_file" / "metrics.json").read_text())["n_test"] == 7


def test_checkpoints_record_what_they_predict(made):
    from hwnas.predictors.module import read_checkpoint

    assert torch.load(made["latency"], weights_only=True)["predicts"] == {"target": "latency", "unit": "ms",
                                                                            "space": "nb201"}
    assert read_checkpoint(made["accuracy"], "accuracy")["predicts"] == {"target": "accuracy", "unit": "percent",
                                                                         "space": "nb201"}
    assert read_checkpoint(made["pretrained"], "transfer")["predicts"]["target"] == "latency"


def test_accuracy_predictor_trained_by_a_search_is_recorded_as_accuracy(made, tmp_path):
    """accuracy=predictor saves accuracy_predictor.pt as an accuracy predictor: it loads there, not as latency."""
    from hwnas.errors import DataError
    from hwnas.predictors import PredictorEstimator
    from hwnas.search.accuracy import PredictedAccuracy

    source = PredictedAccuracy(fit_data=made["acc"], epochs=1, hidden=[8], progress_bar=False)
    source.prepare(NB201, work_dir=tmp_path)
    saved = tmp_path / "accuracy_predictor.pt"
    assert torch.load(saved, weights_only=True)["predicts"]["target"] == "accuracy"
    again = PredictedAccuracy(checkpoint=str(saved))
    assert np.allclose(again.predict(NB201, NB201.from_strings(ARCHS[:4])),
                       source.predict(NB201, NB201.from_strings(ARCHS[:4])))
    with pytest.raises(DataError, match="is an accuracy predictor"):
        PredictorEstimator(checkpoint=str(saved))


def test_earlier_checkpoint_loads_in_its_judged_role_with_a_warning(made, tmp_path, run_cli):
    """An earlier hwnas latency predictor (log transform) still serves as estimator.checkpoint, saying how it was
    judged; once stamped it loads silently, and a stamp can move a misjudged file to the other role."""
    import shutil

    from hwnas.predictors.module import load_predictor, stamp_predictor

    code, out, err = run_cli("logger=none", *[a.format(**made) for a in PREDICT], f"estimator.checkpoint={made['old_latency']}",
                             f"hydra.run.dir={tmp_path}/run")
    _ok(code, out, err)
    warnings = [ln for ln in err.splitlines() if ln.startswith("hwnas: warning:")]
    assert len(warnings) == 1 and "by its contents" in warnings[0] and "stamp_predictor(" in warnings[0], err
    copied = shutil.copy(made["old_accuracy"], tmp_path / "misjudged.pt")
    stamp_predictor(copied, "latency")
    assert load_predictor(copied).hparams.target == "latency"


def test_supernet_and_predictor_files_refuse_each_other(tmp_path):
    """The real save functions' files, through the real loaders (no CLI): each names what the other is."""
    from hwnas.errors import DataError
    from hwnas.predictors.module import SUPERNET_FORMAT, load_predictor, save_predictor
    from hwnas.supernet import ofa

    assert ofa.FORMAT == SUPERNET_FORMAT
    path = save_predictor(_predictor(), tmp_path / "p.pt")
    with pytest.raises(DataError, match=r"'.*p.pt' is a latency predictor .* not an OFA supernet"):
        ofa.load_supernet(path, "eval_subnets.checkpoint")
    fake = copy.deepcopy(torch.load(path, weights_only=True))
    torch.save({"format": SUPERNET_FORMAT, "space": {"name": "compofa_fixed"}, "meta": fake["hparams"],
                "state_dict": {}}, tmp_path / "s.pt")
    with pytest.raises(DataError, match=r"is an OFA supernet of job=train_supernet \(search space compofa_fixed\)"):
        load_predictor(tmp_path / "s.pt")


@pytest.mark.parametrize("second, warned", [(1.2, False), (2.0, True)])
def test_duplicate_architectures_that_agree_are_averaged(tmp_path, capsys, second, warned):
    """Re-measurements are legitimate: a table device keeps one row per arch, the mean; within x1.5 silently,
    up to x3 with a one-line warning naming the arch and rows (beyond: an error, in the catalogue above)."""
    from hwnas.devices import TableDevice

    p = tmp_path / "dup.csv"
    p.write_text(f"arch,latency_ms\n{NB},1.0\n{NB},{second}\n{NB2},2.0\n")
    archs, lat = TableDevice(path=str(p)).dataset(NB201)
    assert len(archs) == 2 and sorted(lat.tolist()) == sorted([(1.0 + second) / 2, 2.0])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("hwnas: warning:")]
    assert len(lines) == int(warned), err
    if warned:
        assert NB in lines[0] and "row 1 (line 2)" in lines[0] and "row 2 (line 3)" in lines[0] and "averaged" in lines[0]
