"""Pareto utilities and random search on real NB201 data (accuracy vs published latency)."""
from __future__ import annotations

import numpy as np
import pytest

from hwnas.data.tables import load_nb201_accuracy
from hwnas.devices import TableDevice
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


def test_random_search_on_nb201_front(data_dir):
    space = get_space("nb201")
    acc = load_nb201_accuracy(data_dir)
    acc_of = dict(zip(acc.archs, acc.column("cifar10")))
    device = TableDevice(source="help", column="pixel3", space="nb201", data_dir=str(data_dir))

    def evaluate(archs):
        return {"error": np.array([100 - acc_of[space.to_string(a)] for a in archs]),
                "latency_ms": device.latency(space, archs)}

    result = RandomSearch(n=500, batch_size=128, seed=1).run(space, evaluate)
    assert len(result.archs) == 500 == len(set(result.archs))
    front = result.front()
    f = result.matrix()
    assert sorted(front.tolist()) == brute_force_front(f)
    with pytest.raises(ConfigError):
        RandomSearch(n=0)
