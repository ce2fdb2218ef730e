"""Constraints (``metric <= limit``) and how a soft one lowers the fitness.

Two formulations:

- **hard**: an architecture over a limit is rejected; evolution resamples it (Once-for-All's
  evolutionary finder), NSGA-II ranks it behind every feasible one by its violation.
- **soft**: nothing is rejected; the fitness (accuracy, %) is penalized by how far the
  architecture overshoots, so the search may trade a little overshoot for accuracy:

  - ``linear`` (default): ``acc - lambda * sum_c max(0, value_c / limit_c - 1)``; ``lambda`` is the
    accuracy (percentage points) lost per 100 % overshoot, so the default 100 charges one point
    per 1 % over a budget. A hinge on the relative overshoot, in the spirit of ProxylessNAS's
    latency-regularized loss.
  - ``mnasnet``: MnasNet's reward ``acc * prod_c (value_c / limit_c) ** w`` with ``w = alpha`` under
    the limit and ``beta`` over it (Tan et al., CVPR 2019, use alpha = beta = -0.07; alpha = 0,
    beta = -1 is their near-hard setting).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from hwnas.errors import ConfigError, choices_text
from hwnas.options import number

FORMULATIONS = ("hard", "soft")
PENALTY_FORMS = ("linear", "mnasnet")


@dataclass(frozen=True)
class Constraint:
    """``metric <= limit``; ``hard`` rejects, otherwise the fitness pays a :class:`SoftPenalty`."""

    metric: str
    limit: float
    hard: bool = True

    def __post_init__(self):
        limit = self.limit
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not math.isfinite(limit) or limit <= 0:
            raise ConfigError(f"the limit on {self.metric} = {limit!r} must be a finite number > 0")
        object.__setattr__(self, "limit", float(limit))

    def satisfied(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values) <= self.limit

    def overshoot(self, values: np.ndarray) -> np.ndarray:
        """Relative excess over the limit, ``max(0, value / limit - 1)`` (0 when met)."""
        return np.maximum(0.0, np.asarray(values, dtype=np.float64) / self.limit - 1.0)

    def describe(self) -> str:
        return f"{self.metric} <= {self.limit:g} ({'hard' if self.hard else 'soft'})"


def formulation(value: str) -> bool:
    """``hard`` -> True, ``soft`` -> False; anything else is a ConfigError."""
    if value not in FORMULATIONS:
        raise ConfigError(f"search.constraint = {value!r} is not allowed; allowed: {choices_text(FORMULATIONS)}")
    return value == "hard"


@dataclass(frozen=True)
class SoftPenalty:
    """How soft constraints lower a fitness that is maximized (see the module docstring)."""

    form: str = "linear"
    lam: float = 100.0
    alpha: float = -0.07
    beta: float = -0.07

    def __post_init__(self):
        if self.form not in PENALTY_FORMS:
            raise ConfigError(f"search.penalty.form = {self.form!r} is not allowed; allowed: {choices_text(PENALTY_FORMS)}")
        if not math.isfinite(self.lam) or self.lam < 0:
            raise ConfigError(f"search.penalty.lambda = {self.lam!r} must be a finite number >= 0")

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> "SoftPenalty":
        cfg = dict(cfg or {})
        allowed = ("form", "lambda", "alpha", "beta")
        unknown = [k for k in cfg if k not in allowed]
        if unknown:
            raise ConfigError(f"search.penalty.{unknown[0]} is not an option; allowed: {choices_text(allowed)}")
        return cls(form=str(cfg.get("form", "linear")),
                   lam=number(cfg.get("lambda", 100.0), "search.penalty.lambda", 0,
                              hint=" (accuracy points lost per 100 % overshoot)"),
                   alpha=number(cfg.get("alpha", -0.07), "search.penalty.alpha", hint=" (MnasNet's exponent under the limit)"),
                   beta=number(cfg.get("beta", -0.07), "search.penalty.beta", hint=" (MnasNet's exponent over the limit)"))

    def apply(self, fitness: np.ndarray, constraints: Sequence[Constraint], values: Sequence[np.ndarray]) -> np.ndarray:
        out = np.asarray(fitness, dtype=np.float64).copy()
        for c, v in zip(constraints, values):
            if self.form == "linear":
                out -= self.lam * c.overshoot(v)
            else:
                ratio = np.asarray(v, dtype=np.float64) / c.limit
                out *= ratio ** np.where(ratio <= 1.0, self.alpha, self.beta)
        return out
