"""A search problem: objectives and constraints over memoized metrics, evaluated cheap-first.

The first objective is the fitness of single-objective strategies (evolution); every objective
is an objective of multi-objective ones (NSGA-II, random). Hard constraints are checked in order
of their measured cost per architecture, each only on the architectures that passed the cheaper
ones, and the objectives are computed only for architectures that passed them all, so an
expensive accuracy predictor never sees an architecture the latency budget already rules out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from hwnas.errors import ConfigError
from hwnas.search.cache import MemoCache
from hwnas.search.constraints import Constraint, SoftPenalty
from hwnas.search.objectives import Metric


@dataclass
class Evaluation:
    """``values`` of every metric (NaN where skipped), ``feasible`` (hard constraints met) and
    ``fitness`` (first objective turned into a maximization, soft penalties applied; -inf when infeasible)."""

    values: dict[str, np.ndarray]
    feasible: np.ndarray
    fitness: np.ndarray


class SearchProblem:
    """Objectives (``Metric``\\ s) and ``(Metric, Constraint)`` pairs over one search space."""

    def __init__(self, space, objectives: Sequence[Metric], constraints: Sequence[tuple[Metric, Constraint]] = (),
                 penalty: SoftPenalty | None = None):
        if not objectives:
            raise ConfigError("a search problem needs at least one objective")
        self.space = space
        self.objectives = list(objectives)
        self.constraints = list(constraints)
        self.penalty = penalty or SoftPenalty()
        for metric, constraint in self.constraints:
            if metric.name != constraint.metric:
                raise ValueError(f"constraint on {constraint.metric} paired with metric {metric.name}")
        if self.penalty.form == "mnasnet" and not self.objectives[0].maximize:
            raise ConfigError("search.penalty.form=mnasnet scales a maximized first objective (accuracy); "
                              f"{self.objectives[0].name} is minimized: use form=linear")

    # ------------------------------------------------------------------ description
    @property
    def names(self) -> list[str]:
        return [m.name for m in self.objectives]

    @property
    def maximize(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.objectives if m.maximize)

    @property
    def hard(self) -> list[tuple[Metric, Constraint]]:
        return [(m, c) for m, c in self.constraints if c.hard]

    @property
    def soft(self) -> list[tuple[Metric, Constraint]]:
        return [(m, c) for m, c in self.constraints if not c.hard]

    def metrics(self) -> list[Metric]:
        seen: dict[str, Metric] = {}
        for m in [*self.objectives, *(m for m, _ in self.constraints)]:
            seen.setdefault(m.name, m)
        return list(seen.values())

    @property
    def caches(self) -> list[MemoCache]:
        out: list[MemoCache] = []
        for m in self.metrics():
            if all(m.cache is not c for c in out):
                out.append(m.cache)
        return out

    def with_constraints(self, extra: Sequence[tuple[Metric, Constraint]]) -> "SearchProblem":
        """The same problem (same metrics and caches) with more constraints."""
        return SearchProblem(self.space, self.objectives, [*self.constraints, *extra], self.penalty)

    # ------------------------------------------------------------------ evaluation
    def keys(self, archs: Sequence) -> list[str]:
        to_string = self.space.to_string
        return [to_string(a) for a in archs]

    def feasible(self, archs: Sequence, keys: Sequence[str] | None = None,
                 values: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Which architectures meet every hard constraint (cheapest constraint first, short-circuited).

        ``values``, when given, receives the constrained metrics computed on the way (NaN where skipped).
        """
        keys = self.keys(archs) if keys is None else keys
        return self._check_hard(archs, keys, {} if values is None else values)

    def _check_hard(self, archs, keys, values: dict[str, np.ndarray]) -> np.ndarray:
        alive = np.ones(len(archs), dtype=bool)
        for metric, constraint in sorted(self.hard, key=lambda mc: mc[0].seconds_per_arch):
            idx = np.flatnonzero(alive)
            if not len(idx):
                break
            v = metric([archs[i] for i in idx], [keys[i] for i in idx]) if len(idx) < len(archs) else metric(archs, keys)
            column = values.setdefault(metric.name, np.full(len(archs), np.nan))
            column[idx] = v
            alive[idx] = constraint.satisfied(v)
        return alive

    def evaluate(self, archs: Sequence, keys: Sequence[str] | None = None) -> Evaluation:
        keys = self.keys(archs) if keys is None else keys
        n = len(archs)
        values: dict[str, np.ndarray] = {}
        feasible = self._check_hard(archs, keys, values)
        idx = np.flatnonzero(feasible)
        sub_archs = archs if len(idx) == n else [archs[i] for i in idx]
        sub_keys = keys if len(idx) == n else [keys[i] for i in idx]
        pending = [m for m in self.metrics() if m.name not in values or np.isnan(values[m.name][idx]).any()]
        for metric in sorted(pending, key=lambda m: m.seconds_per_arch):
            column = values.setdefault(metric.name, np.full(n, np.nan))
            if len(idx):
                column[idx] = metric(sub_archs, sub_keys)
        primary = self.objectives[0]
        fitness = np.full(n, -np.inf)
        if len(idx):
            f = values[primary.name][idx] if primary.maximize else -values[primary.name][idx]
            if self.soft:
                f = self.penalty.apply(f, [c for _, c in self.soft], [values[m.name][idx] for m, _ in self.soft])
            fitness[idx] = f
        return Evaluation(values, feasible, fitness)

    def __call__(self, archs: Sequence) -> dict[str, np.ndarray]:
        """The :data:`~hwnas.search.base.Evaluator` form: every metric (NaN where a hard constraint failed first)."""
        return self.evaluate(archs).values


class CallableProblem:
    """A plain ``evaluate(archs) -> {name: values}`` (all minimized, no constraints) as a problem."""

    def __init__(self, space, evaluate: Callable[[Sequence], dict[str, np.ndarray]]):
        self.space, self._evaluate = space, evaluate
        self.maximize: tuple[str, ...] = ()
        self.caches: list[MemoCache] = []
        self.constraints: list = []
        self.hard: list = []
        self._names: list[str] | None = None

    @property
    def names(self) -> list[str]:
        return list(self._names or [])

    def keys(self, archs) -> list[str]:
        return [self.space.to_string(a) for a in archs]

    def feasible(self, archs, keys=None, values=None) -> np.ndarray:
        return np.ones(len(archs), dtype=bool)

    def evaluate(self, archs, keys=None) -> Evaluation:
        values = {k: np.asarray(v, dtype=np.float64) for k, v in self._evaluate(archs).items()}
        if self._names is None:
            self._names = list(values)
        return Evaluation(values, np.ones(len(archs), dtype=bool), -values[self._names[0]])


def as_problem(space, problem) -> SearchProblem | CallableProblem:
    """``problem`` if it is a search problem, else a plain evaluate callable wrapped as one."""
    return problem if hasattr(problem, "evaluate") else CallableProblem(space, problem)
