"""Let the device have the last word: measure candidates before choosing a pick.

A search against a latency model picks the subnets the model underestimates (the most accurate
ones it calls fast). With ``search.device_check=k`` each budget's pick is chosen by measurement
among the members of the estimated Pareto front predicted within the budget. Along the front,
accuracy and true latency both grow with predicted latency (the model ranks well even where it is
biased), so the most accurate member that meets the budget on the device is found by bisection:
the least accurate candidate first (if it is over, every other is assumed over too and the budget
gets no pick), then halving the interval between the most accurate member not yet ruled out and
the best one measured within the budget. At most ``k`` measurements per budget (``1 +
ceil(log2(n))`` suffice for ``n`` candidates), each architecture measured once per job;
``search.verify=true`` still measures the pick afresh.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from hwnas.options import integer
from hwnas.search.base import SearchResult
from hwnas.search.budgets import Pick


@dataclass
class DeviceCheck:
    picks: list[Pick]
    measured: dict[str, float] = field(default_factory=dict)  # architecture string -> measured ms
    tried: list[int] = field(default_factory=list)  # candidates measured (or looked up) per budget

    def metrics(self) -> dict[str, float]:
        return {"device_checks": len(self.measured), **{f"budget_{p.budget_ms:g}ms/device_checked": n
                                                         for p, n in zip(self.picks, self.tried)}}


def check_value(k) -> int:
    """``search.device_check``: 0 (trust the latency model) or how many candidates to measure per budget."""
    return integer(k, "search.device_check", 0, hint=" (0: trust the latency model; or the number of candidates to "
                                                     "measure per budget, e.g. 10)")


def check_on_device(picks: Sequence[Pick], result: SearchResult, measure: Callable[[list], np.ndarray],
                    k: int) -> DeviceCheck:
    """New picks, each the most accurate estimated-front member within its budget by measurement."""
    lat, acc = result.objectives["latency_ms"], result.objectives["accuracy"]
    front = result.front()
    order = front[np.argsort(-acc[front], kind="stable")]  # most accurate first
    out = DeviceCheck([])
    for p in picks:
        candidates = [int(i) for i in order if lat[i] <= p.budget_ms]  # most accurate first
        chosen, n = _bisect(candidates, p.budget_ms, lambda i: _measured(i, result, measure, out.measured), k)
        out.tried.append(n)
        if chosen is None:
            out.picks.append(Pick(p.budget_ms, None, None, {}))
        else:
            values = {name: float(v[chosen]) for name, v in result.objectives.items()}
            out.picks.append(Pick(p.budget_ms, result.archs[chosen], result.keys[chosen], values))
    return out


def _measured(i: int, result: SearchResult, measure, memo: dict[str, float]) -> float:
    key = result.keys[i]
    if key not in memo:
        memo[key] = float(measure([result.archs[i]])[0])
    return memo[key]


def _bisect(candidates: list[int], budget: float, latency, k: int) -> tuple[int | None, int]:
    """The most accurate of ``candidates`` (most accurate first) whose ``latency(i)`` meets ``budget``,
    assuming latency falls along the list; ``(None, n)`` when the last one is over. ``n``: measurements."""
    n = 0

    def within(j: int) -> bool:
        nonlocal n
        n += 1
        return latency(candidates[j]) <= budget  # NaN (not on a table device): not within

    if not candidates or k < 1 or not within(len(candidates) - 1):
        return None, n
    lo, best = 0, len(candidates) - 1  # best: the most accurate measured within the budget
    while lo < best and n < k:
        mid = (lo + best) // 2
        if within(mid):
            best = mid
        else:
            lo = mid + 1
    return candidates[best], n
