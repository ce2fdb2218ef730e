"""Exhaustive search: every architecture of an enumerable space, evaluated in batches.

Where a space is small enough to list (NB201's 15,625 cells, CompOFA-fixed's 243 networks per
resolution) and its latency and accuracy sources are cheap, a search needs no heuristic: each
budget's pick is the best architecture of the whole space under that budget, by the problem's own
metrics (the best of an accuracy-latency front under a budget is on the front, and the front here
is the space's). ``job=search`` names it in its summary line (``search=exhaustive``).
"""
from __future__ import annotations

from itertools import islice

from hwnas.errors import ConfigError
from hwnas.search.base import Archive, SearchResult, SearchStrategy, positive_int, reject_unknown, strategy_seed
from hwnas.search.problem import as_problem


class ExhaustiveSearch(SearchStrategy):
    name = "exhaustive"
    multi_objective = True  # one run gives the whole front; budgets.py picks each budget's best from it

    def __init__(self, max_size: int = 1_000_000, batch_size: int = 4096, seed: int = 0, **unknown):
        reject_unknown(self.name, type(self), unknown)
        self.max_size = positive_int(self.name, "max_size", max_size)
        self.batch_size = positive_int(self.name, "batch_size", batch_size)
        self.seed = strategy_seed(seed)  # (unused: the result does not depend on it; kept for the common options)

    def run(self, space, problem) -> SearchResult:
        size = space.size()
        if size > self.max_size:
            raise ConfigError(f"search_strategy=exhaustive: {space.name} has {size:,} architectures, more than "
                              f"search_strategy.max_size = {self.max_size:,}; allowed: spaces that small (nb201: "
                              f"15,625; compofa_fixed: 243 per resolution), or search_strategy=evolution / nsga2")
        problem = as_problem(space, problem)
        archive = Archive()
        archs = iter(space.enumerate())
        while batch := list(islice(archs, self.batch_size)):
            keys = problem.keys(batch)
            ev = problem.evaluate(batch, keys)
            archive.add(batch, keys, ev.values, ev.feasible)
        return archive.result(problem.maximize, problem.names)
