"""The search contract: a strategy proposes architectures, a problem scores batches of them.

``strategy.run(space, problem)`` takes a :class:`~hwnas.search.problem.SearchProblem` (objectives,
constraints, memoized metrics) or a plain ``evaluate(archs) -> {objective: values}`` callable whose
objectives are all minimized, and returns a :class:`SearchResult` holding every distinct
architecture it evaluated.
"""
from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from hwnas.errors import ConfigError, choices_text
from hwnas.options import integer, number, seed
from hwnas.search.pareto import pareto_front


class Infeasible(ConfigError):
    """No architecture met the hard constraints (e.g. a latency budget below the fastest network)."""


#: ``evaluate(archs) -> {objective: values}``, every objective minimized.
Evaluator = Callable[[Sequence], dict[str, np.ndarray]]


@dataclass
class SearchResult:
    """Every distinct architecture a run evaluated, with its metric values.

    ``objectives`` holds every metric column (objectives and constrained metrics; NaN where a
    metric was skipped because a cheaper hard constraint already failed); ``names`` are the
    objectives (default: every column), ``maximize`` those optimized upwards. ``best`` is the
    index of the winner of single-objective strategies, ``history`` its fitness per generation.
    """

    archs: list
    objectives: dict[str, np.ndarray]
    maximize: tuple[str, ...] = ()
    feasible: np.ndarray | None = None
    names: tuple[str, ...] | None = None
    best: int | None = None
    history: list[float] = field(default_factory=list)
    keys: list[str] | None = None  # canonical strings of ``archs``, when the strategy has them

    def __post_init__(self):
        if self.feasible is None:
            self.feasible = np.ones(len(self.archs), dtype=bool)

    @property
    def objective_names(self) -> list[str]:
        return list(self.names or self.objectives)

    def matrix(self, names: Sequence[str] | None = None) -> np.ndarray:
        """Objective values as columns, every one turned into a minimization (maximized ones negated)."""
        names = list(names or self.objective_names)
        return np.column_stack([-self.objectives[n] if n in self.maximize else self.objectives[n] for n in names])

    def front(self, names: Sequence[str] | None = None) -> np.ndarray:
        """Indices of the Pareto-optimal feasible architectures over ``names`` (default: the objectives),
        sorted by the first objective.

        Architectures with identical objective values (e.g. OFA subnets that differ only in blocks
        their depth skips: one network, two strings) appear once, as the first evaluated.
        """
        f = self.matrix(names)
        ok = np.flatnonzero(self.feasible & np.isfinite(f).all(axis=1))
        front = ok[pareto_front(f[ok])]
        _, first = np.unique(f[front], axis=0, return_index=True)
        return front[np.sort(first)]

    def strings(self, space) -> list[str]:
        return list(self.keys) if self.keys is not None else [space.to_string(a) for a in self.archs]


class Archive:
    """Collects what a run evaluates; the first evaluation of each architecture is kept."""

    def __init__(self):
        self._position: dict[str, int] = {}
        self.archs: list = []
        self.keys: list[str] = []
        self._values: list[dict[str, float]] = []
        self._feasible: list[bool] = []

    def __len__(self) -> int:
        return len(self.archs)

    def add(self, archs: Sequence, keys: Sequence[str], values: Mapping[str, np.ndarray], feasible: np.ndarray) -> None:
        names = list(values)
        for i, key in enumerate(keys):
            if key not in self._position:
                self._position[key] = len(self.archs)
                self.archs.append(archs[i])
                self.keys.append(key)
                self._values.append({n: float(values[n][i]) for n in names})
                self._feasible.append(bool(feasible[i]))

    def position(self, key: str) -> int:
        return self._position[key]

    def result(self, maximize: Sequence[str] = (), names: Sequence[str] | None = None, best_key: str | None = None,
               history: Sequence[float] = ()) -> SearchResult:
        columns = sorted({n for row in self._values for n in row})
        objectives = {c: np.fromiter((row.get(c, np.nan) for row in self._values), dtype=np.float64,
                                     count=len(self._values)) for c in columns}
        return SearchResult(list(self.archs), objectives, tuple(maximize), np.asarray(self._feasible, dtype=bool),
                            tuple(names) if names else None,
                            self._position[best_key] if best_key is not None else None, list(history),
                            list(self.keys))


class SearchStrategy(ABC):
    name = "strategy"
    #: True: one run yields a whole front (random, NSGA-II); False: one constrained run per budget (evolution).
    multi_objective = True

    @abstractmethod
    def run(self, space, problem) -> SearchResult:
        """Search ``space``; every architecture evaluated is in the result."""


def reject_unknown(strategy: str, cls, unknown: Mapping) -> None:
    """A ConfigError naming an option a strategy does not have, and the ones it has."""
    if unknown:
        allowed = [p for p in inspect.signature(cls).parameters if p not in ("self", "unknown")]
        key = next(iter(unknown))
        raise ConfigError(f"search_strategy={strategy} has no option {key!r} (= {unknown[key]!r}); "
                          f"allowed: {choices_text(allowed)}")


def positive_int(strategy: str, option: str, value, minimum: int = 1) -> int:
    """``search_strategy.<option>`` as an integer >= ``minimum`` (``population=1.5`` is not population 1)."""
    return integer(value, f"search_strategy.{option}", minimum, hint=f" (search_strategy={strategy})")


def fraction(strategy: str, option: str, value, low_open: bool = False) -> float:
    """``search_strategy.<option>`` as a probability or share in [0, 1] (``(0, 1]`` with ``low_open``)."""
    interval = "(0, 1]" if low_open else "[0, 1]"
    return number(value, f"search_strategy.{option}", 0, 1, exclusive_minimum=low_open,
                  hint=f" (search_strategy={strategy}: a fraction in {interval})")


def strategy_seed(value) -> int:
    """``search_strategy.seed``: an integer >= 0."""
    return seed(value, "search_strategy.seed")
