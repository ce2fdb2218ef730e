"""Random search: evaluate ``n`` distinct uniformly sampled architectures in batches."""
from __future__ import annotations

import numpy as np

from hwnas.errors import ConfigError
from hwnas.search.base import Evaluator, SearchResult, SearchStrategy


class RandomSearch(SearchStrategy):
    name = "random"

    def __init__(self, n: int = 1000, batch_size: int = 1000, seed: int = 0):
        if n < 1 or batch_size < 1:
            raise ConfigError(f"search_strategy: n = {n} and batch_size = {batch_size} must be >= 1")
        self.n, self.batch_size, self.seed = int(n), int(batch_size), int(seed)

    def run(self, space, evaluate: Evaluator) -> SearchResult:
        archs = space.sample_unique(self.n, seed=self.seed)
        parts = [evaluate(archs[i:i + self.batch_size]) for i in range(0, len(archs), self.batch_size)]
        objectives = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
        return SearchResult(archs, objectives)
