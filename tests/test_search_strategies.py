"""Evolution, NSGA-II, the memo cache and objectives/constraints on NAS-Bench-201.

A search may reach any of the 15,625 cells, so the tests of search mechanics run on a whole-space
benchmark fitted on the data root's first 300 rows (tests/nb201_surrogate.py; the same in fixture
and full mode): ``pixel3_model`` and ``cifar10_model`` know every cell, so its true optimum and front
are known by enumeration too. The tests of figures on the real tables (regret and front coverage on
NB201's CIFAR-10 accuracy and HELP's Pixel 3 latency, OFA's released accuracy predictor) need the
full reference data (tests/fixture_data.py) and skip in one line without it.
"""
from __future__ import annotations

import numpy as np
import pytest

import nb201_surrogate
from fixture_data import needs_full_data, rows
from hwnas.devices import TableDevice
from hwnas.errors import ConfigError, DataError
from hwnas.search import Constraint, EvolutionSearch, MemoCache, NSGA2Search, RandomSearch, SearchProblem, SoftPenalty
from hwnas.search.accuracy import AccuracySource, NB201Accuracy, OFAAccuracyPredictor, PredictedAccuracy, TableAccuracy
from hwnas.search.budgets import check_budgets, search_under_budgets
from hwnas.search.constraints import formulation
from hwnas.search.objectives import accuracy_metric, cost_metrics, device_latency_metric
from hwnas.search.verify import GroundTruth, hv_ratio
from hwnas.spaces import get_space


@pytest.fixture(scope="module")
def nb201():
    return get_space("nb201")


# ---- the whole-space surrogate (any data root)
@pytest.fixture(scope="module")
def surrogate(tmp_path_factory):
    return nb201_surrogate.for_session(tmp_path_factory)


@pytest.fixture(scope="module")
def pixel3_model(surrogate):
    return TableDevice(path=str(surrogate.latency_csv), column="pixel3")


@pytest.fixture(scope="module")
def cifar10_model(surrogate, nb201):
    return TableAccuracy(surrogate.accuracy_csv, "cifar10").prepare(nb201)


@pytest.fixture(scope="module")
def model_truth(nb201, pixel3_model, cifar10_model):
    t = GroundTruth.build(nb201, pixel3_model, cifar10_model)
    assert t is not None and len(t.keys) == 15_625
    return t


# ---- the real tables: NB201's CIFAR-10 accuracy and HELP's Pixel 3 latency
@pytest.fixture(scope="module")
def pixel3(data_dir):
    return TableDevice(source="help", column="pixel3", space="nb201", data_dir=str(data_dir))


@pytest.fixture(scope="module")
def cifar10(data_dir, nb201):
    return NB201Accuracy("cifar10", data_dir=str(data_dir)).prepare(nb201)


@pytest.fixture(scope="module")
def truth(nb201, pixel3, cifar10):
    needs_full_data("the true optimum and front of NB201 by enumerating all 15,625 cells")
    t = GroundTruth.build(nb201, pixel3, cifar10)
    assert t is not None and len(t.keys) == 15_625
    return t


@pytest.fixture(scope="module", params=["surrogate", "tables"])
def bench(request):
    """``(device, accuracy source, ground truth)`` of a benchmark that covers all of NB201: the surrogate
    (any data root), or the real tables (full data only)."""
    names = ("pixel3_model", "cifar10_model", "model_truth") if request.param == "surrogate" else \
        ("pixel3", "cifar10", "truth")
    return tuple(request.getfixturevalue(n) for n in names)


def problem_for(space, device, source, budget=None, hard=True):
    latency = device_latency_metric(device, space)
    problem = SearchProblem(space, [accuracy_metric(source, space), latency])
    if budget is not None:
        problem = problem.with_constraints([(latency, Constraint("latency_ms", budget, hard))])
    return problem, latency


# ---------------------------------------------------------------------- memo cache
def test_memo_cache_computes_each_architecture_once():
    calls = []

    def compute(archs, keys):
        calls.append(list(keys))
        return {"v": np.array([len(k) for k in keys], dtype=float)}

    cache = MemoCache(compute, ["v"])
    out = cache(["a", "bb", "a"], ["a", "bb", "a"])
    assert out["v"].tolist() == [1, 2, 1] and calls == [["a", "bb"]]
    assert (cache.hits, cache.misses) == (1, 2)
    out = cache(["ccc", "bb"], ["ccc", "bb"])
    assert out["v"].tolist() == [3, 2] and calls[-1] == ["ccc"]
    assert (cache.hits, cache.misses) == (2, 3) and len(cache) == 3


# ---------------------------------------------------------------------- evolution
@pytest.mark.parametrize("budget", [5.0, 10.0])
def test_evolution_finds_near_optimum_and_never_violates(nb201, bench, budget):
    """Mean regret over 5 seeds is small, and far below random search's on as many distinct architectures."""
    pixel3, cifar10, truth = bench
    optimum, _ = truth.best_under(budget)
    regret, random_regret = [], []
    for seed in range(5):
        problem, latency = problem_for(nb201, pixel3, cifar10, budget)
        result = EvolutionSearch(population=50, generations=40, seed=seed).run(nb201, problem)
        acc, lat = truth.lookup([nb201.to_string(result.archs[result.best])])
        assert lat[0] <= budget
        regret.append(optimum - acc[0])
        # every architecture the search evaluated met the hard budget (rejected ones never got an accuracy)
        evaluated = np.isfinite(result.objectives["accuracy"])
        assert (result.objectives["latency_ms"][evaluated] <= budget).all()
        assert result.history == sorted(result.history)  # elitist: the best never gets worse
        assert latency.cache.hits > 0
        rnd = RandomSearch(n=len(result.archs), seed=seed).run(nb201, problem_for(nb201, pixel3, cifar10, budget)[0])
        random_regret.append(optimum - np.nanmax(rnd.objectives["accuracy"]))
    assert np.mean(regret) < 0.25 and np.mean(regret) < np.mean(random_regret) - 0.2, (regret, random_regret)


def test_evolution_is_deterministic_given_a_seed(nb201, pixel3_model, cifar10_model):
    def run(seed):
        problem, _ = problem_for(nb201, pixel3_model, cifar10_model, 8.0)
        r = EvolutionSearch(population=20, generations=10, seed=seed).run(nb201, problem)
        return r.strings(nb201), nb201.to_string(r.archs[r.best])

    assert run(3) == run(3)
    assert run(3)[0] != run(4)[0]


def test_cheap_constraints_are_checked_before_accuracy(nb201, pixel3_model, cifar10_model):
    seen = []

    class Counting(AccuracySource):
        def predict(self, space, archs, keys=None):
            seen.extend(keys)
            return cifar10_model.predict(space, archs, keys)

    problem, latency = problem_for(nb201, pixel3_model, Counting(), 6.0)
    EvolutionSearch(population=30, generations=10, seed=1).run(nb201, problem)
    assert len(seen) == len(set(seen)), "an architecture was scored twice despite the cache"
    lat = pixel3_model.latency(nb201, nb201.from_strings(seen))
    assert (lat <= 6.0).all(), "accuracy was computed for an architecture over the hard budget"
    assert latency.cache.misses > len(seen)  # rejected candidates were only timed


def test_evolution_rejects_a_budget_below_every_architecture(nb201, pixel3_model, cifar10_model):
    from hwnas.search.base import Infeasible

    problem, _ = problem_for(nb201, pixel3_model, cifar10_model, 1e-6)
    with pytest.raises(Infeasible, match="latency_ms <= 1e-06"):
        EvolutionSearch(population=4, generations=1, resample_rounds=2, seed=0).run(nb201, problem)


def test_soft_constraint_penalizes_instead_of_rejecting(nb201, pixel3_model, cifar10_model):
    problem, _ = problem_for(nb201, pixel3_model, cifar10_model, 5.0, hard=False)
    result = EvolutionSearch(population=30, generations=15, seed=0).run(nb201, problem)
    lat, acc = result.objectives["latency_ms"], result.objectives["accuracy"]
    assert np.isfinite(acc).all() and (lat > 5.0).any()  # over-budget architectures were scored, not rejected
    fitness = acc - 100.0 * np.maximum(0, lat / 5.0 - 1)
    assert result.history[-1] == pytest.approx(fitness.max())


def test_soft_penalty_formulas():
    c = Constraint("latency_ms", 10.0, hard=False)
    linear = SoftPenalty("linear", lam=50.0)
    assert linear.apply(np.array([90.0, 90.0]), [c], [np.array([11.0, 9.0])]).tolist() == pytest.approx([85.0, 90.0])
    mnas = SoftPenalty("mnasnet", alpha=0.0, beta=-0.07)
    assert mnas.apply(np.array([90.0, 90.0]), [c], [np.array([11.0, 9.0])]).tolist() == pytest.approx(
        [90.0 * 1.1 ** -0.07, 90.0])


# ---------------------------------------------------------------------- NSGA-II
def test_nsga2_front_covers_the_true_front(nb201, bench):
    pixel3, cifar10, truth = bench
    problem, _ = problem_for(nb201, pixel3, cifar10)
    result = NSGA2Search(population=60, generations=30, seed=0).run(nb201, problem)
    front = result.front()
    keys = [nb201.to_string(result.archs[i]) for i in front]
    acc, lat = truth.lookup(keys)
    ref = truth.reference([5.0, 20.0])
    ratio, _, _ = hv_ratio(acc, lat, truth, ref)
    # the same number of random architectures, for scale
    rnd = RandomSearch(n=len(result.archs), seed=0).run(nb201, problem_for(nb201, pixel3, cifar10)[0])
    r_front = rnd.front()
    r_acc, r_lat = truth.lookup([nb201.to_string(rnd.archs[i]) for i in r_front])
    random_ratio, _, _ = hv_ratio(r_acc, r_lat, truth, ref)
    assert ratio > 0.95 and ratio > random_ratio + 0.03, (ratio, random_ratio)
    f = result.matrix()[front]
    assert not any(((g <= f).all(axis=1) & (g < f).any(axis=1)).any() for g in f)  # non-dominated


def test_nsga2_is_deterministic_and_respects_hard_limits(nb201, pixel3_model, cifar10_model):
    def run(seed):
        latency = device_latency_metric(pixel3_model, nb201)
        flops = cost_metrics(nb201, ["flops"])["flops"]
        problem = SearchProblem(nb201, [accuracy_metric(cifar10_model, nb201), latency],
                                [(flops, Constraint("flops", 1.0e8))])
        return NSGA2Search(population=20, generations=5, seed=seed).run(nb201, problem)

    a, b = run(7), run(7)
    assert a.strings(nb201) == b.strings(nb201)
    front = a.front()
    assert len(front) and (a.objectives["flops"][front] <= 1.0e8).all()


def test_budgets_from_one_multi_objective_run(nb201, bench):
    pixel3, cifar10, truth = bench
    problem, latency = problem_for(nb201, pixel3, cifar10)
    found = search_under_budgets(NSGA2Search(population=40, generations=15, seed=0), nb201, problem, latency,
                                 [4.0, 8.0, 16.0], hard=True)
    assert [p.budget_ms for p in found.picks] == [4.0, 8.0, 16.0]
    accs = [p.values["accuracy"] for p in found.picks]
    assert accs == sorted(accs)
    for p in found.picks:
        assert p.values["latency_ms"] <= p.budget_ms
        assert truth.best_under(p.budget_ms)[0] - p.values["accuracy"] < 1.5
    assert found.stats["cache_misses"] == 2 * len(found.result.archs)  # accuracy and latency, once per architecture


# ---------------------------------------------------------------------- accuracy sources
def test_ofa_accuracy_predictor_in_percent(full_data_dir, nb201):
    """OFA's released predictor (ofa/acc_predictor.pth: one state dict, not in the fixture root)."""
    ofa = get_space("ofa_mbv3")
    source = OFAAccuracyPredictor(data_dir=str(full_data_dir)).prepare(ofa)
    largest = ofa.make([7] * 20, [6] * 20, [4] * 5, 224)
    smallest = ofa.make([3] * 20, [3] * 20, [2] * 5, 160)
    assert source.predict(ofa, [largest, smallest]).tolist() == pytest.approx([83.6, 75.3], abs=0.05)
    with pytest.raises(ConfigError, match="nb201"):
        source.prepare(nb201)


def test_table_and_trained_accuracy_from_a_csv(tmp_path, nb201, cifar10):
    """Real NB201 accuracies as a CSV: 600 rows to look up and learn from, 100 held out (the fixture root
    lists 300: 200 and 100)."""
    truth = cifar10.ground_truth(nb201)
    keys = sorted(truth)
    rng = np.random.default_rng(0)
    n = rows(700)
    pick = rng.choice(len(keys), size=n, replace=False)
    train, test = pick[:n - 100], pick[n - 100:]
    csv = tmp_path / "acc.csv"
    csv.write_text("arch,accuracy\n" + "".join(f"{keys[i]},{truth[keys[i]]}\n" for i in train))
    table = TableAccuracy(csv).prepare(nb201)
    archs = nb201.from_strings([keys[i] for i in train[:5]])
    assert table.predict(nb201, archs).tolist() == pytest.approx([truth[keys[i]] for i in train[:5]])
    with pytest.raises(DataError, match="not in the accuracy table"):
        table.predict(nb201, nb201.from_strings([keys[test[0]]]))
    learned = PredictedAccuracy(fit_data=str(csv), hidden=[64, 64], epochs=30, batch_size=64, progress_bar=False,
                                trainer={"_target_": "pytorch_lightning.Trainer", "accelerator": "cpu", "devices": 1,
                                         "enable_progress_bar": False}).prepare(nb201, tmp_path)
    assert (tmp_path / "accuracy_predictor.pt").exists()
    from scipy.stats import spearmanr

    held = nb201.from_strings([keys[i] for i in test])
    rho = spearmanr(learned.predict(nb201, held), [truth[keys[i]] for i in test]).statistic
    assert rho > 0.6, rho


def test_accuracy_tables_must_be_percent(tmp_path):
    csv = tmp_path / "frac.csv"
    csv.write_text("arch,accuracy\na,0.71\nb,0.75\n")
    with pytest.raises(DataError, match="multiply by 100"):
        TableAccuracy(csv)


# ---------------------------------------------------------------------- user errors
@pytest.mark.parametrize("make,needles", [
    (lambda: EvolutionSearch(population=1), ["population = 1", ">= 2"]),
    (lambda: EvolutionSearch(popsize=50), ["popsize", "population", "mutation_prob"]),
    (lambda: EvolutionSearch(mutation_prob=1.5), ["mutation_prob = 1.5", "[0, 1]"]),
    (lambda: NSGA2Search(population=0), ["population = 0", ">= 2"]),
    (lambda: NSGA2Search(elitism=True), ["elitism", "crossover_prob"]),
    (lambda: check_budgets([]), ["latency_budgets = []", "non-empty"]),
    (lambda: check_budgets([10, -5]), ["-5", "> 0"]),
    (lambda: NB201Accuracy("cifar11"), ["cifar11", "cifar10, cifar100, imagenet16_120"]),
    (lambda: formulation("medium"), ["medium", "hard, soft"]),
    (lambda: SoftPenalty.from_config({"form": "quadratic"}), ["quadratic", "linear, mnasnet"]),
    (lambda: Constraint("flops", 0), ["flops", "> 0"]),
])
def test_bad_values_name_the_value_and_the_choices(make, needles):
    with pytest.raises(ConfigError) as err:
        make()
    for needle in needles:
        assert needle in str(err.value)


def test_front_lists_identical_objective_vectors_once():
    from hwnas.search import SearchResult

    r = SearchResult(["a", "b", "c", "d"], {"accuracy": np.array([90.0, 90.0, 80.0, 70.0]),
                                            "latency_ms": np.array([5.0, 5.0, 2.0, 3.0])},
                     maximize=("accuracy",))
    assert sorted(r.front().tolist()) == [0, 2]
