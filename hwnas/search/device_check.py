"""Let the device have the last word: measure the best candidates before choosing a pick.

A search against a latency model picks the subnets the model underestimates (the most accurate
ones it calls fast). With ``search.device_check=k`` each budget's pick is chosen by measurement:
the members of the estimated Pareto front predicted within the budget, most accurate first, are
measured one by one (at most ``k`` per budget, each architecture once per job) and the first whose
measured latency meets the budget becomes the pick. When none of the ``k`` does, the budget gets
no pick rather than one known to be over. ``search.verify=true`` still measures the pick afresh.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from hwnas.errors import ConfigError
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
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ConfigError(f"search.device_check = {k!r} is not allowed; allowed: 0 (trust the latency model) or "
                          f"the number of candidates to measure per budget, e.g. 10")
    return k


def check_on_device(picks: Sequence[Pick], result: SearchResult, measure: Callable[[list], np.ndarray],
                    k: int) -> DeviceCheck:
    """New picks, each the most accurate estimated-front member within its budget by measurement."""
    lat, acc = result.objectives["latency_ms"], result.objectives["accuracy"]
    front = result.front()
    order = front[np.argsort(-acc[front], kind="stable")]  # most accurate first
    out = DeviceCheck([])
    for p in picks:
        candidates = [int(i) for i in order if lat[i] <= p.budget_ms][:k]
        chosen, n = None, 0
        for i in candidates:
            key = result.keys[i]
            if key not in out.measured:
                out.measured[key] = float(measure([result.archs[i]])[0])
            n += 1
            if out.measured[key] <= p.budget_ms:
                chosen = i
                break
        out.tried.append(n)
        if chosen is None:
            out.picks.append(Pick(p.budget_ms, None, None, {}))
        else:
            values = {name: float(v[chosen]) for name, v in result.objectives.items()}
            out.picks.append(Pick(p.budget_ms, result.archs[chosen], result.keys[chosen], values))
    return out
