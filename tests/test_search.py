"""Pareto utilities, and random search on NB201 (accuracy and latency fitted on the data root's rows)."""
from __future__ import annotations

import numpy as np
import pytest

import nb201_surrogate
from hwnas.data.tables import read_accuracy_column, read_latency_table
from hwnas.errors import ConfigError
from hwnas.search import RandomSearch, hypervolume, pareto_front
from hwnas.spaces import get_space


def brute_force_front(f):
    keep = []
    for i in range(len(f)):
        dominated = any((f[j] <= f[i]).all() and (f[j] < f[i]).any() for j in range(len(f)))
        if not dominated:
            keep.append(i)
    return sorted(keep)


def test_pareto_front_matches_brute_force():
    f = np.random.default_rng(0).random((200, 2))
    assert sorted(pareto_front(f).tolist()) == brute_force_front(f)
    front = pareto_front(f)
    assert (np.diff(f[front, 0]) >= 0).all()


def test_hypervolume_of_a_staircase():
    f = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    assert hypervolume(f, np.array([4.0, 4.0])) == pytest.approx(3 + 2 + 1)
    assert hypervolume(f + 10, np.array([4.0, 4.0])) == 0.0


def test_random_search_on_nb201_front(tmp_path_factory):
    """Random search samples any of the 15,625 cells: scored on the whole-space surrogate (tests/nb201_surrogate.py)."""
    space = get_space("nb201")
    surrogate = nb201_surrogate.for_session(tmp_path_factory)
    acc_of = dict(zip(*read_accuracy_column(surrogate.accuracy_csv, "cifar10")))
    latency = read_latency_table(surrogate.latency_csv, "pixel3")
    lat_of = dict(zip(latency.archs, latency.latency_ms))

    def evaluate(archs):
        return {"error": np.array([100 - acc_of[space.to_string(a)] for a in archs]),
                "latency_ms": np.array([lat_of[space.to_string(a)] for a in archs])}

    result = RandomSearch(n=500, batch_size=128, seed=1).run(space, evaluate)
    assert len(result.archs) == 500 == len(set(result.archs))
    front = result.front()
    f = result.matrix()
    assert sorted(front.tolist()) == brute_force_front(f)
    with pytest.raises(ConfigError):
        RandomSearch(n=0)
