"""The bad-input catalogue: every user mistake gets one line naming the bad value and what is allowed.

Each case runs the real ``hwnas`` entry point in-process (``hwnas.cli.main`` with ``sys.argv``),
so what is checked is exactly what a user sees: exit status 2, no traceback, one ``hwnas: error:``
line containing the needles. Deeper cases (checkpoints of another space or encoding, malformed
tables of every kind) are tested where they are raised; this file is the user-facing index.
"""
from __future__ import annotations

import pytest

NB = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
NB2 = "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|"
NB3 = "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def files(tmp_path, **texts: str) -> dict[str, str]:
    paths = {}
    for name, text in texts.items():
        p = tmp_path / f"{name}.csv"
        p.write_text(text)
        paths[name] = str(p)
    return paths


CASES = {
    # name: (overrides, needles in the one error line); {f} = a file from files(), {tmp} = tmp_path
    "space option out of range": (["search_space.width_mult=-1"], ["width_mult = -1", "1.0 and 1.2"]),
    "latency CSV without latency_ms": (["job=evaluate", "search_space=nb201", "device=table", "device.path={missing_col}"],
                                       ["no column 'latency_ms'", "columns present: arch, lat"]),
    "NaN latency": (["job=evaluate", "search_space=nb201", "device=table", "device.path={nan}"],
                    ["value 'nan' at row 1", "finite and > 0"]),
    "negative latency": (["job=evaluate", "search_space=nb201", "device=table", "device.path={negative}"],
                         ["value -1 at row 1", "> 0 ms"]),
    "zero latency": (["job=evaluate", "search_space=nb201", "device=table", "device.path={zero}"],
                     ["value 0 at row 1", "> 0 ms"]),
    "malformed architecture": (["job=predict", "search_space=nb201", "predict.input={malformed}", "estimator.fit_data={fit}"],
                               ["'nor_conv_9x9' is not allowed", "allowed: none, skip_connect"]),
    "architecture of another space": (["job=predict", "search_space=nb201", "predict.input={ofa_arch}",
                                       "estimator.fit_data={fit}"], ["nb201", "expected the format"]),
    "table device column unknown": (["job=evaluate", "search_space=nb201", "device=help", "device.column=tpu_v4"],
                                    ["tpu_v4", "pixel3"]),
    "table device of another space": (["job=evaluate", "search_space=ofa_mbv3", "device=help", "device.column=pixel3"],
                                      ["help", "nb201"]),
    "missing data root": (["job=evaluate", "search_space=nb201", "device=help", "device.column=pixel3",
                           "paths.data_dir={tmp}/nowhere"], ["nowhere", "does not exist", "HWNAS_DATA"]),
    "missing predictor checkpoint": (["job=predict", "search_space=nb201", "predict.input={fit}", "estimator=predictor",
                                      "estimator.checkpoint={tmp}/none.pt"], ["none.pt", "does not exist"]),
    "file that is not a checkpoint": (["job=predict", "search_space=nb201", "predict.input={fit}", "estimator=predictor",
                                       "estimator.checkpoint={fit}"], ["not an hwnas predictor checkpoint"]),
    "unwritable run dir": (["hydra.run.dir=/proc/hwnas_run"], ["hydra.run.dir", "/proc/hwnas_run", "cannot be created"]),
    "empty output dir": (["paths.output_dir="], ["paths.output_dir is empty"]),
    "unwritable output file": (["job=predict", "search_space=nb201", "predict.input={fit}", "estimator.fit_data={fit}",
                                "predict.output=/proc/hwnas/out.csv"], ["/proc/hwnas", "cannot create"]),
    # mandatory values, the seed, output paths: checked before a job starts (hwnas.jobs.check_config)
    "predict without input": (["job=predict", "search_space=nb201"], ["predict.input is required", "arch"]),
    "report without dirs": (["job=report"], ["report.dirs is required", "multirun"]),
    "fractional seed": (["job=evaluate", "search_space=nb201", "device=help", "device.column=pixel3", "seed=1.5"],
                        ["seed = 1.5 is not an integer", ">= 0"]),
    "seed that is text": (["job=evaluate", "search_space=nb201", "seed=abc"], ["seed = 'abc' is not an integer"]),
    "negative seed": (["job=evaluate", "search_space=nb201", "seed=-3"], ["seed = -3", ">= 0"]),
    "output file that is a directory": (["job=predict", "search_space=nb201", "predict.input={fit}",
                                         "estimator.fit_data={fit}", "predict.output={tmp}"],
                                        ["predict.output", "is a directory", "give a file path"]),
    "training output that is a directory": (["job=train_predictor", "search_space=nb201", "device=help",
                                             "device.column=pixel3", "estimator=predictor", "train.output={tmp}"],
                                            ["train.output", "is a directory"]),
    "report output that is a directory": (["job=report", "report.dirs=[{tmp}]", "report.output={tmp}"],
                                          ["report.output", "is a directory"]),
    "run dir that is a file": (["hydra.run.dir={fit}"], ["hydra.run.dir", "is a file"]),
    # the default run dir under an output root given by interpolation (the pre-check resolves it as Hydra does)
    "unwritable output root by interpolation": (["job=report", "report.dirs=[{tmp}]",
                                                 "paths.output_dir=${{oc.env:HWNAS_TEST_UNSET,/proc/ro}}"],
                                                ["hydra.run.dir", "/proc/ro/report/", "cannot be created"]),
    "unknown option of a built object": (["job=evaluate", "search_space=nb201", "device=help", "device.column=pixel3",
                                          "+estimator.bogus=1"], ["cannot build estimator", "FlopsEstimator", "'bogus'"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_user_error_is_one_line(case, tmp_path, run_cli, one_line_error):
    archs = "\n".join(f"{a},{i + 1}" for i, a in enumerate([NB, NB2, NB3]))
    paths = files(tmp_path, missing_col=f"arch,lat\n{NB},1.0\n", nan=f"arch,latency_ms\n{NB},nan\n",
                  negative=f"arch,latency_ms\n{NB},-1\n", zero=f"arch,latency_ms\n{NB},0\n",
                  malformed="arch\n|nor_conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|\n",
                  ofa_arch='arch\n"{""ks"":[3],""e"":[3],""d"":[2],""r"":160}"\n', fit=f"arch,latency_ms\n{archs}\n")
    overrides, needles = CASES[case]
    args = [o.format(tmp=tmp_path, **paths) for o in overrides]
    if not any(a.startswith(("hydra.run.dir", "paths.output_dir")) for a in args):
        args.append(f"hydra.run.dir={tmp_path}/run")
    code, _, err = run_cli("logger=none", *args)
    one_line_error(code, err, *needles)


@pytest.mark.parametrize("group, bad, allowed", [("search_space", "ofa", "ofa_mbv3"), ("device", "tpu", "local_cpu"),
                                                 ("estimator", "oracle", "flops"), ("search_strategy", "bayes", "random"),
                                                 ("job", "nope", "measure")])
def test_unknown_group_option_lists_the_options(group, bad, allowed, tmp_path, run_cli):
    """Unknown names in a config group: Hydra's own message names the option and lists the available ones."""
    code, _, err = run_cli("logger=none", f"{group}={bad}", f"hydra.run.dir={tmp_path}/run")
    assert code != 0 and "Traceback" not in err
    assert f"'{group}/{bad}'" in err and allowed in err
