"""Best architecture per latency budget, with either kind of strategy.

A single-objective strategy (evolution) runs once per budget with ``latency <= budget`` added to
the problem (hard or soft); a multi-objective one (NSGA-II, random) runs once, and each budget's
pick is the best member of its accuracy-latency front under that budget (for soft constraints:
the highest penalized accuracy). Either way the architectures evaluated by every run form one
result whose front is reported.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hwnas.errors import ConfigError
from hwnas.options import number
from hwnas.search.base import Archive, Infeasible, SearchResult, SearchStrategy
from hwnas.search.cache import cache_stats
from hwnas.search.constraints import Constraint
from hwnas.search.objectives import Metric
from hwnas.search.problem import SearchProblem


@dataclass
class Pick:
    """The architecture chosen for ``budget_ms`` (``None`` when nothing evaluated met the budget)."""

    budget_ms: float
    arch: object | None
    key: str | None
    values: dict[str, float]


@dataclass
class BudgetSearch:
    picks: list[Pick]
    result: SearchResult  # every distinct architecture evaluated, feasibility w.r.t. the budget-free problem
    stats: dict[str, float]  # cache hits/misses of the search itself


def check_budgets(budgets) -> list[float]:
    """Budgets as sorted floats; a ConfigError for an empty list or a value that is not a positive number."""
    if budgets is None or isinstance(budgets, (str, int, float)) or len(budgets) == 0:
        raise ConfigError(f"search.latency_budgets = {budgets!r} must be a non-empty list of latencies in ms, "
                          f"e.g. search.latency_budgets=[10,20,30]")
    out = [number(b, f"search.latency_budgets[{i}]", 0, exclusive_minimum=True, hint=" (a latency budget in ms)")
           for i, b in enumerate(budgets)]
    if len(set(out)) != len(out):
        raise ConfigError(f"search.latency_budgets = {list(budgets)} lists a budget twice")
    return sorted(out)


def search_under_budgets(strategy: SearchStrategy, space, problem: SearchProblem, latency: Metric,
                         budgets: Sequence[float], hard: bool, margin: float = 0.0) -> BudgetSearch:
    """Run ``strategy`` for ``budgets`` (see the module docstring); ``problem`` has no latency budget.

    ``margin`` searches under ``budget * (1 - margin)``, leaving room for the latency model's error;
    picks are still reported against the budget itself.
    """
    if not 0.0 <= margin < 1.0:
        raise ConfigError(f"search.latency_margin = {margin} must lie in [0, 1)")
    budget_problems = [problem.with_constraints([(latency, Constraint(latency.name, b * (1.0 - margin), hard))])
                       for b in budgets]
    archive = Archive()
    chosen: list = []  # the pick of each budget, or None
    if strategy.multi_objective:
        result = strategy.run(space, problem)
        archive.add(result.archs, result.strings(space), result.objectives, result.feasible)
        stats = cache_stats(problem.caches)
        front = result.front()
        front_archs = [result.archs[i] for i in front]
        for bp in budget_problems:
            fitness = bp.evaluate(front_archs).fitness if len(front) else np.zeros(0)
            i = int(np.argmax(fitness)) if len(front) else -1
            chosen.append(front_archs[i] if i >= 0 and np.isfinite(fitness[i]) else None)
    else:
        for budget, bp in zip(budgets, budget_problems):
            try:
                r = strategy.run(space, bp)
            except Infeasible as exc:  # this budget is below every architecture; the others still run
                print(f"latency budget {budget:g} ms: {exc}", file=sys.stderr)
                chosen.append(None)
                continue
            archive.add(r.archs, r.strings(space), r.objectives, r.feasible)
            ok = r.best is not None and r.feasible[r.best]
            chosen.append(r.archs[r.best] if ok else None)
        stats = cache_stats(problem.caches)
    # Feasibility w.r.t. the budget-free problem, and every metric: all from the cache by now.
    ev = problem.evaluate(archive.archs, archive.keys)
    result = SearchResult(list(archive.archs), ev.values, problem.maximize, ev.feasible, tuple(problem.names),
                          keys=list(archive.keys))
    picks = []
    for budget, arch in zip(budgets, chosen):
        if arch is None:
            picks.append(Pick(budget, None, None, {}))
            continue
        key = space.to_string(arch)
        row = archive.position(key)
        picks.append(Pick(budget, arch, key, {n: float(v[row]) for n, v in result.objectives.items()}))
    return BudgetSearch(picks, result, stats)
