"""The search contract: a strategy proposes architectures, an evaluator scores batches of them."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from hwnas.search.pareto import pareto_front

#: ``evaluate(archs) -> {objective: values}``, every objective minimized.
Evaluator = Callable[[Sequence], dict[str, np.ndarray]]


@dataclass
class SearchResult:
    archs: list
    objectives: dict[str, np.ndarray]

    def matrix(self, names: Sequence[str] | None = None) -> np.ndarray:
        names = list(names or self.objectives)
        return np.column_stack([self.objectives[n] for n in names])

    def front(self, names: Sequence[str] | None = None) -> np.ndarray:
        """Indices of the Pareto-optimal architectures over ``names`` (default: all objectives)."""
        return pareto_front(self.matrix(names))


class SearchStrategy(ABC):
    name = "strategy"

    @abstractmethod
    def run(self, space, evaluate: Evaluator) -> SearchResult:
        """Search ``space``; every architecture evaluated is in the result."""
