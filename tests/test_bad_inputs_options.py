"""Bad-input catalogue, part 3: degenerate option values of the search strategies, estimators, local devices,
measurement, supernet data and the smaller jobs (issue #13, class 6).

A value the computation cannot use is one ``hwnas: error:`` line naming the key as the user writes it, the value
and what is allowed, raised before the job does its expensive work: a fraction where a count is meant (was:
truncated), 0 where null means "default" (was: the default), a request larger than what exists (was: quietly
capped: ``min(n, len(a))``, ``sample_unique``), too few samples for a fit or a quantile, a probability outside
[0, 1], a negative seed. Each case runs the real ``hwnas`` entry point in-process and takes about a second.
``test_smallest_accepted_values_still_run`` runs the boundary values that are still allowed.
"""
from __future__ import annotations

import json

import pytest

import nb201_surrogate
from fixture_data import DATA_ROOT
from hwnas.spaces import get_space

NB201 = get_space("nb201")
#: the first distinct architectures of the data root's HELP table (full or fixture)
ARCHS = list(dict.fromkeys(NB201.to_string(a) for a in NB201.from_strings(
    [line.split(",")[1] for line in (DATA_ROOT / "nb201" / "latency_help.csv").read_text().splitlines()[1:60]])))[:40]


def _csv(path, rows) -> str:
    path.write_text("arch,latency_ms\n" + "".join(f"{a},{ms}\n" for a, ms in rows))
    return str(path)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("options")
    return {"fit": _csv(d / "fit.csv", [(a, 1 + i) for i, a in enumerate(ARCHS[:3])]),
            "one": _csv(d / "one.csv", [(ARCHS[0], 1.0), (ARCHS[0], 1.1)]),
            "twenty": _csv(d / "twenty.csv", [(a, 1 + i / 4) for i, a in enumerate(ARCHS[:20])]),
            "forty": _csv(d / "forty.csv", [(a, 1 + i / 8) for i, a in enumerate(ARCHS[:40])])}


@pytest.fixture(scope="module")
def surrogate(tmp_path_factory):
    return nb201_surrogate.for_session(tmp_path_factory)


# ----------------------------------------------------------------------------- the catalogue
SEARCH = ["job=search", "search_space=nb201", "device=table", "device.path={fit}", "estimator=flops",
          "estimator.fit_data={fit}", "search.latency_budgets=[5]"]
ON_TABLE = ["job=search", "search_space=nb201", "device=table", "device.path={twenty}", "estimator=flops",
            "search.latency_budgets=[5]"]
NSGA2 = [*SEARCH, "search_strategy=nsga2"]
RANDOM = [*SEARCH, "search_strategy=random"]
MEASURE = ["job=measure", "search_space=nb201", "device=local_cpu", "measure.output={tmp}/lat.csv"]
PROFILE = ["job=profile", "search_space=nb201"]
BENCHMARK = ["job=benchmark", "search_space=nb201", "device=table", "device.path={twenty}", "estimator=flops",
             "estimator.fit_samples=5"]
SUBNET = ["job=train_subnet", "search_space.resolutions=[16,20]", "search_space.width_mult=0.25",
          "train_subnet.arch=smallest", "train_subnet.progress_bar=false", "train_subnet.epochs=1"]
DIFFERENTIABLE = ["job=differentiable_search", "search_space.resolutions=[24]", "search_strategy.epochs=1",
                  "search_strategy.warmup_epochs=0"]
TRAIN = ["job=train_predictor", "search_space=nb201", "device=table", "device.path={twenty}"]
EVALUATE = ["job=evaluate", "search_space=nb201", "device=table", "device.path={twenty}", "estimator=flops",
            "estimator.fit_samples=5"]
FEW_SHOT = ["job=transfer", "search_space=nb201", "transfer.source_devices=[pixel3,samsung_a50]",
            "transfer.target.path={twenty}"]

CASES = {
    # name: (overrides, needles in the one error line); {key}: a file of made(), {tmp}: this case's tmp_path
    # ---- search strategies (were: positive_int / fraction messages without the key, int(seed), max(1, parents))
    "evolution population fractional": ([*SEARCH, "search_strategy.population=20.5"],
                                        ["search_strategy.population = 20.5 is not an integer", ">= 2"]),
    "evolution generations negative": ([*SEARCH, "search_strategy.generations=-1"],
                                       ["search_strategy.generations = -1", ">= 0"]),
    "evolution parent_ratio keeping no parent (was: silently one)": (
        [*SEARCH, "search_strategy.population=10", "search_strategy.parent_ratio=0.01"],
        ["search_strategy.parent_ratio = 0.01", "population = 10", "keeps 0 parents", "parent_ratio >= 0.1"]),
    "evolution parent_ratio 0": ([*SEARCH, "search_strategy.parent_ratio=0"],
                                 ["search_strategy.parent_ratio = 0", "> 0 and <= 1", "(0, 1]"]),
    "evolution mutation_ratio above 1": ([*SEARCH, "search_strategy.mutation_ratio=1.5"],
                                         ["search_strategy.mutation_ratio = 1.5", "between 0 and 1", "[0, 1]"]),
    "evolution mutation_prob negative": ([*SEARCH, "search_strategy.mutation_prob=-0.1"],
                                         ["search_strategy.mutation_prob = -0.1", "[0, 1]"]),
    "evolution resample_rounds 0": ([*SEARCH, "search_strategy.resample_rounds=0"],
                                    ["search_strategy.resample_rounds = 0", ">= 1"]),
    "search_strategy.seed fractional (was: int())": ([*SEARCH, "search_strategy.seed=1.5"],
                                                     ["search_strategy.seed = 1.5 is not an integer", ">= 0"]),
    "search_strategy.seed negative": ([*SEARCH, "search_strategy.seed=-1"], ["search_strategy.seed = -1", ">= 0"]),
    "nsga2 crossover_prob above 1": ([*NSGA2, "search_strategy.crossover_prob=2"],
                                     ["search_strategy.crossover_prob = 2", "search_strategy=nsga2", "[0, 1]"]),
    "nsga2 generations 0": ([*NSGA2, "search_strategy.generations=0"], ["search_strategy.generations = 0", ">= 1"]),
    "random n beyond the space (was: the whole space)": (
        [*RANDOM, "search_strategy.n=20000"], ["search_strategy.n = 20000", "exceeds the 15,625 architectures of nb201"]),
    "random batch_size 0": ([*RANDOM, "search_strategy.batch_size=0"], ["search_strategy.batch_size = 0", ">= 1"]),
    # ---- job=search options read by the search package
    "latency budget not a number": ([*SEARCH, "search.latency_budgets=[5,nan]"],
                                    ["search.latency_budgets[1] = nan is not a finite number"]),
    "latency budget 0": ([*SEARCH, "search.latency_budgets=[0]"], ["search.latency_budgets[0] = 0", "> 0"]),
    "search.penalty.lambda as text (was: a traceback)": ([*SEARCH, "search.penalty.lambda=abc"],
                                                         ["search.penalty.lambda = 'abc' is not a finite number"]),
    "search.penalty.lambda negative": ([*SEARCH, "search.penalty.lambda=-1"], ["search.penalty.lambda = -1", ">= 0"]),
    "search.penalty.alpha infinite": ([*SEARCH, "search.penalty.alpha=inf"], ["search.penalty.alpha = inf"]),
    "search.device_check fractional": ([*SEARCH, "search.device_check=2.5"],
                                       ["search.device_check = 2.5 is not an integer", "trust the latency model"]),
    "search.margin_samples beyond the held-out pool (was: capped)": (
        [*ON_TABLE, "device.path={forty}", "estimator.fit_samples=10", "search.latency_margin=auto",
         "search.margin_samples=50"],
        ["search.margin_samples = 50", "exceeds the 30 architectures", "fitting sample of 10", "allowed: 10..30"]),
    # ---- estimators
    "estimator.fit_samples fractional (was: int())": ([*ON_TABLE, "estimator.fit_samples=5.5"],
                                                      ["estimator.fit_samples = 5.5 is not an integer"]),
    "estimator.fit_samples=1": ([*ON_TABLE, "estimator.fit_samples=1"], ["estimator.fit_samples = 1", ">= 2"]),
    "estimator.fit_samples beyond the table (was: capped)": (
        [*ON_TABLE, "estimator.fit_samples=50"],
        ["estimator.fit_samples = 50 exceeds the 20 architectures of device", "allowed: 2..20"]),
    "estimator.fit_samples below the coefficients of the fit": (
        [*ON_TABLE, "estimator.features=[flops,params]", "estimator.fit_samples=2"],
        ["estimator.fit_samples = 2 is too few", "fits 3 coefficients", ">= 3"]),
    "estimator.fit_data of one architecture": ([*SEARCH, "estimator.fit_data={one}"],
                                               ["estimator.fit_data", "one.csv", "holds 1 distinct architecture", ">= 2"]),
    "estimator.fit_seed negative": ([*ON_TABLE, "estimator.fit_seed=-3"], ["estimator.fit_seed = -3", ">= 0"]),
    # ---- job=measure and the local device
    "measure.n fractional (was: int())": ([*MEASURE, "measure.n=2.5"], ["measure.n = 2.5 is not an integer"]),
    "measure.n beyond the space (was: the whole space)": ([*MEASURE, "measure.n=20000"],
                                                          ["measure.n = 20000 exceeds the 15,625 architectures"]),
    "measure.noise_subset beyond the requested (was: capped)": (
        [*MEASURE, "measure.n=2", "measure.noise_subset=5"], ["measure.noise_subset = 5", "between 0 and 2"]),
    "measure.noise_rounds 0 with a noise subset (was: NaN floor)": (
        [*MEASURE, "measure.n=2", "measure.noise_subset=2", "measure.noise_rounds=0"],
        ["measure.noise_rounds = 0", ">= 1"]),
    "measure.seed negative": ([*MEASURE, "measure.seed=-1"], ["measure.seed = -1", ">= 0"]),
    "device.threads=0 (was: every core)": ([*MEASURE, "device.threads=0"], ["device.threads = 0", ">= 1", "null"]),
    "device.warmup negative": ([*MEASURE, "device.warmup=-1"], ["device.warmup = -1", ">= 0"]),
    "device.repeats fractional (was: int())": ([*MEASURE, "device.repeats=2.5"],
                                               ["device.repeats = 2.5 is not an integer"]),
    "device.number 0": ([*MEASURE, "device.number=0"], ["device.number = 0", ">= 1"]),
    "device.batch_size 0": ([*MEASURE, "device.batch_size=0"], ["device.batch_size = 0", ">= 1"]),
    # ---- small jobs
    "profile.n 0": ([*PROFILE, "profile.n=0"], ["profile.n = 0", ">= 1"]),
    "benchmark.n fractional": ([*BENCHMARK, "benchmark.n=10.5"], ["benchmark.n = 10.5 is not an integer"]),
    "benchmark.threads=0 (was: torch's default)": ([*BENCHMARK, "benchmark.threads=0"],
                                                   ["benchmark.threads = 0", ">= 1", "null"]),
    "benchmark.budget_quantile 0 (checked before the timing)": (
        [*BENCHMARK, "benchmark.search=true", "benchmark.budget_quantile=0"],
        ["benchmark.budget_quantile = 0", "> 0 and <= 1"]),
    "download.timeout 0": (["job=download", "download.data_dir={tmp}/data", "download.only=[nb201]",
                            "download.timeout=0"], ["download.timeout = 0", "> 0"]),
    "search_space.resolutions fractional (was: int())": (
        [*PROFILE[:1], "search_space=ofa_mbv3", "search_space.resolutions=[160.5,224]"],
        ["search_space.resolutions[0] = 160.5 is not an integer"]),
    "search_space.num_classes fractional": ([*PROFILE[:1], "search_space=compofa_fixed", "search_space.num_classes=10.5"],
                                            ["search_space.num_classes = 10.5 is not an integer"]),
    "eval_subnets.n 0": (["job=eval_subnets", "eval_subnets.n=0"], ["eval_subnets.n = 0", ">= 1"]),
    "eval_subnets.calibration_images fractional": (["job=eval_subnets", "eval_subnets.calibration_images=12.5"],
                                                   ["eval_subnets.calibration_images = 12.5 is not an integer"]),
    "eval_subnets.threads=0": (["job=eval_subnets", "eval_subnets.threads=0"], ["eval_subnets.threads = 0", "null"]),
    # ---- train_subnet and the image data (before any training)
    "train_subnet.epochs fractional (was: int())": ([*SUBNET, "train_subnet.epochs=1.5"],
                                                    ["train_subnet.epochs = 1.5 is not an integer"]),
    "train_subnet.warmup_epochs beyond epochs": ([*SUBNET, "train_subnet.warmup_epochs=3"],
                                                 ["train_subnet.warmup_epochs = 3", "between 0 and 1"]),
    "train_subnet.lr 0": ([*SUBNET, "train_subnet.lr=0"], ["train_subnet.lr = 0", "> 0"]),
    "supernet.label_smoothing 1": ([*SUBNET, "supernet.label_smoothing=1"],
                                   ["supernet.label_smoothing = 1", "< 1"]),
    "train_subnet.calibration_images beyond the data (was: capped)": (
        [*SUBNET, "train_subnet.calibration_images=5000"],
        ["train_subnet.calibration_images = 5000", "between 1 and 1258", "data=digits has 1258"]),
    "data.split not summing to 1": ([*SUBNET, "data.split=[0.7,0.2,0.2]"], ["data.split", "sum to 1.1"]),
    "data.split fraction 0": ([*SUBNET, "data.split=[0.8,0.2,0]"], ["data.split[2] = 0", "> 0"]),
    "data.seed fractional (was: int())": ([*SUBNET, "data.seed=0.5"], ["data.seed = 0.5 is not an integer"]),
    "data.max_shift negative": ([*SUBNET, "+data.max_shift=-1"], ["data.max_shift = -1", ">= 0"]),
    "data.num_workers negative": ([*SUBNET, "data.num_workers=-1"], ["data.num_workers = -1", ">= 0"]),
    "differentiable_search.retrain_epochs fractional": ([*DIFFERENTIABLE, "differentiable_search.retrain_epochs=0.5"],
                                                        ["differentiable_search.retrain_epochs = 0.5"]),
    "differentiable_search.calibration_images beyond the data (checked before the search trains)": (
        [*DIFFERENTIABLE, "differentiable_search.calibration_images=5000"],
        ["differentiable_search.calibration_images = 5000", "between 1 and 1258"]),
    # ---- the seeds of the jobs fixed before
    "train.seed fractional": ([*TRAIN, "train.seed=1.5"], ["train.seed = 1.5 is not an integer"]),
    "evaluate.seed negative": ([*EVALUATE, "evaluate.seed=-1"], ["evaluate.seed = -1", ">= 0"]),
    "transfer.seed fractional": ([*FEW_SHOT, "transfer.seed=2.5"], ["transfer.seed = 2.5 is not an integer"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_option_is_one_line(case, made, tmp_path, run_cli, one_line_error):
    overrides, needles = CASES[case]
    args = [o.format(tmp=tmp_path, **made) for o in overrides]
    code, _, err = run_cli("logger=none", *args, f"hydra.run.dir={tmp_path}/run")
    one_line_error(code, err, *needles)


def test_batch_larger_than_the_training_split_is_one_line(tmp_path, run_cli, one_line_error):
    """data.batch_size beyond the training images (was: quietly one batch of all of them); checked when training
    starts (the DataModule's train loader), before the first step."""
    code, _, err = run_cli("logger=none", *SUBNET, "data.batch_size=5000", f"hydra.run.dir={tmp_path}/run")
    one_line_error(code, err, "data.batch_size = 5000 exceeds the 1258 training images of data=digits")


# ----------------------------------------------------------------------------- what is still accepted
def _ok(code, out, err):
    assert code == 0, err
    assert "hwnas: error" not in err and "Traceback" not in err


def _metrics(run) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_smallest_accepted_values_still_run(made, surrogate, tmp_path, run_cli):
    """The boundary of every range above: a population of 2 with one parent and no generations, probabilities 0,
    a fit on 2 samples, a margin from 10 held-out architectures, one measured architecture with one re-measurement,
    one warm-up-free timed run, single-architecture profile and benchmark."""
    whole = surrogate.overrides("pixel3")
    tiny_search = ["job=search", *whole, "estimator=flops", "estimator.fit_samples=2", "search.latency_budgets=[1000]",
                   "search.plot=false"]
    _ok(*run_cli("logger=none", *tiny_search, "search_strategy=evolution", "search_strategy.population=2",
                 "search_strategy.parent_ratio=0.5", "search_strategy.generations=0", "search_strategy.mutation_ratio=0",
                 "search_strategy.mutation_prob=0", "search_strategy.resample_rounds=1", "search_strategy.seed=0",
                 "search.device_check=0", "search.penalty.lambda=0", f"hydra.run.dir={tmp_path}/evolution"))
    assert _metrics(tmp_path / "evolution")["n_evaluated"] == 2
    _ok(*run_cli("logger=none", *tiny_search, "search_strategy=nsga2", "search_strategy.population=2",
                 "search_strategy.generations=1", "search_strategy.crossover_prob=0", "search_strategy.mutation_prob=1",
                 f"hydra.run.dir={tmp_path}/nsga2"))
    _ok(*run_cli("logger=none", *tiny_search, "search_strategy=random", "search_strategy.n=1",
                 "search_strategy.batch_size=1", "search.latency_margin=auto", "search.margin_samples=10",
                 f"hydra.run.dir={tmp_path}/random"))
    m = _metrics(tmp_path / "random")
    assert m["n_evaluated"] == 1 and m["margin_n"] == 10
    _ok(*run_cli("logger=none", *[o.format(tmp=tmp_path) for o in MEASURE], "measure.n=1", "measure.seed=0",
                 "measure.noise_subset=1", "measure.noise_rounds=1", "device.warmup=0", "device.repeats=1",
                 "device.number=1", "device.threads=1", "device.batch_size=1", f"hydra.run.dir={tmp_path}/measure"))
    m = _metrics(tmp_path / "measure")
    assert m["n_requested"] == 1 and m["n_measured_now"] == 1 and m["noise_floor_cv_median"] >= 0
    _ok(*run_cli("logger=none", *PROFILE, "profile.n=1", f"hydra.run.dir={tmp_path}/profile"))
    assert _metrics(tmp_path / "profile")["n_archs"] == 1
    _ok(*run_cli("logger=none", *[o.format(**made) for o in BENCHMARK], "estimator.fit_samples=2", "benchmark.n=1",
                 "benchmark.repeats=1", "benchmark.threads=1", f"hydra.run.dir={tmp_path}/benchmark"))
    assert _metrics(tmp_path / "benchmark")["n"] == 1
