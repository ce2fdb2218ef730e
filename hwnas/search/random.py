"""Random search: evaluate ``n`` distinct uniformly sampled architectures in batches."""
from __future__ import annotations

from hwnas.errors import ConfigError
from hwnas.search.base import Archive, SearchResult, SearchStrategy, positive_int, reject_unknown, strategy_seed
from hwnas.search.problem import as_problem


class RandomSearch(SearchStrategy):
    name = "random"

    def __init__(self, n: int = 1000, batch_size: int = 1000, seed: int = 0, **unknown):
        reject_unknown(self.name, type(self), unknown)
        self.n = positive_int(self.name, "n", n)
        self.batch_size = positive_int(self.name, "batch_size", batch_size)
        self.seed = strategy_seed(seed)

    def run(self, space, problem) -> SearchResult:
        if self.n > space.size():  # sample_unique would return the whole space, fewer than asked for
            raise ConfigError(f"search_strategy.n = {self.n} exceeds the {space.size():,} architectures of "
                              f"{space.name}; allowed: 1..{space.size()} distinct architectures")
        problem = as_problem(space, problem)
        archs = space.sample_unique(self.n, seed=self.seed)
        archive = Archive()
        for i in range(0, len(archs), self.batch_size):
            batch = archs[i:i + self.batch_size]
            keys = problem.keys(batch)
            ev = problem.evaluate(batch, keys)
            archive.add(batch, keys, ev.values, ev.feasible)
        return archive.result(problem.maximize, problem.names)
