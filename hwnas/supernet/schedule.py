"""Training phases of a supernet and sampling of subnets within a phase.

A phase opens part of the search space: per architecture field (``ks``, ``e``, ``d``, ``r``) it
allows ``null`` (every choice of the space), ``max``/``min`` (only the largest/smallest choice) or a
list of choices. Sampling goes through the space's own genes, so spaces with coupled fields stay
valid: CompOFA draws a depth per stage and derives the expand ratio from it, and its fixed-kernel
variant has no kernel genes at all. A restriction on a field the space derives (CompOFA's ``e``)
is only allowed as ``null``/``max``/``min``: restrict the field it follows (``d``) instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from hwnas.errors import ConfigError, choices_text
from hwnas.spaces.ofa import OFAArch, OFAMobileNetV3

FIELDS = ("ks", "e", "d", "r")
PHASE_OPTIONS = ("name", "epochs", "lr", "subnets", "warmup_epochs", "sort_channels", "distill", *FIELDS)
EXTREMES = ("max", "min")


@dataclass(frozen=True)
class Phase:
    """One stage of a training schedule: which choices are open, for how long, at which learning rate."""

    name: str
    epochs: int
    lr: float
    subnets: int = 1              # subnets sampled per step (their gradients are summed, as in OFA)
    warmup_epochs: float = 0.0    # linear warm-up at the start of the phase, then cosine decay to 0
    sort_channels: bool = False   # sort expanded channels by importance when the phase starts
    distill: bool = True          # add the distillation loss (if the schedule has a teacher)
    choices: Mapping[str, Any] = field(default_factory=dict)  # field -> None | "max" | "min" | tuple


def _where(index: int, key: str | None = None) -> str:
    return f"supernet.phases[{index}]" + (f".{key}" if key else "")


def _number(value, where: str, kind=float, minimum: float = 0.0, strict: bool = False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not float(value).is_integer()):
        raise ConfigError(f"{where} = {value!r} must be {'an integer' if kind is int else 'a number'}")
    if value < minimum or (strict and value == minimum) or not math.isfinite(value):
        raise ConfigError(f"{where} = {value!r} must be {'>' if strict else '>='} {minimum:g}")
    return kind(value)


def parse_phases(raw: Sequence[Mapping[str, Any]], space: OFAMobileNetV3) -> list[Phase]:
    """Validated phases from config (lists of plain dicts); ConfigError names the bad value and what is allowed."""
    if raw is None or isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence) or len(raw) == 0:
        raise ConfigError("supernet.phases must be a non-empty list of phases (name, epochs, lr, ks, e, d, ...)")
    phases = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ConfigError(f"{_where(i)} = {item!r} must be a mapping with name, epochs, lr, ...")
        unknown = [k for k in item if k not in PHASE_OPTIONS]
        if unknown:
            raise ConfigError(f"{_where(i)}: unknown phase option {unknown[0]!r}; allowed: {choices_text(PHASE_OPTIONS)}")
        for key in ("epochs", "lr"):
            if key not in item:
                raise ConfigError(f"{_where(i)} needs {key!r}")
        choices = {}
        for f in FIELDS:
            choices[f] = _parse_choice(item.get(f), f, space, _where(i, f))
        phase = Phase(name=str(item.get("name") or f"phase{i}"),
                      epochs=_number(item["epochs"], _where(i, "epochs"), int),
                      lr=_number(item["lr"], _where(i, "lr"), float, strict=True),
                      subnets=_number(item.get("subnets", 1), _where(i, "subnets"), int, 1),
                      warmup_epochs=_number(item.get("warmup_epochs", 0), _where(i, "warmup_epochs")),
                      sort_channels=_flag(item.get("sort_channels", False), _where(i, "sort_channels")),
                      distill=_flag(item.get("distill", True), _where(i, "distill")),
                      choices=choices)
        if phase.warmup_epochs > phase.epochs:
            raise ConfigError(f"{_where(i, 'warmup_epochs')} = {phase.warmup_epochs:g} must be <= epochs = {phase.epochs}")
        PhaseSampler(space, phase)  # every field has at least one choice
        phases.append(phase)
    if sum(p.epochs for p in phases) < 1:
        raise ConfigError("supernet.phases: the epochs of all phases sum to 0; at least one phase must train")
    return phases


def _flag(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} = {value!r} must be true or false")
    return value


def _space_choices(space: OFAMobileNetV3, name: str) -> tuple:
    return {"ks": space.ks_choices, "e": space.e_choices, "d": space.d_choices, "r": space.resolutions}[name]


def _gene_field(gene_name: str) -> str:
    return gene_name.split("[", 1)[0]


def _parse_choice(value, name: str, space: OFAMobileNetV3, where: str):
    if value is None:
        return None
    if isinstance(value, str):
        if value in EXTREMES:
            return value
        raise ConfigError(f"{where} = {value!r} is not allowed; allowed: null (all), max, min or a list of choices")
    values = list(value) if isinstance(value, Sequence) else [value]
    allowed = _space_choices(space, name)
    if not values:
        raise ConfigError(f"{where} = [] must list at least one choice; allowed: {choices_text(allowed)}")
    for v in values:
        if isinstance(v, bool) or v not in allowed:
            raise ConfigError(f"{where} = {values}: {v!r} is not a choice of {space.name}; allowed: {choices_text(allowed)}")
    if not any(_gene_field(g.name) == name for g in space.genes):
        raise ConfigError(f"{where} = {values}: {space.name} derives {name} (it has no {name} genes); "
                          f"use null, max or min, or restrict the field it follows")
    return tuple(sorted(set(values)))


class PhaseSampler:
    """Uniform sampling over the architectures a phase allows, gene by gene of the space."""

    def __init__(self, space: OFAMobileNetV3, phase: Phase):
        self.space, self.phase = space, phase
        self.allowed: list[np.ndarray] = []
        for gene in space.genes:
            rule = phase.choices.get(_gene_field(gene.name))
            idx = range(len(gene.choices))
            if rule == "max":
                idx = [max(idx, key=lambda i, g=gene: g.choices[i])]
            elif rule == "min":
                idx = [min(idx, key=lambda i, g=gene: g.choices[i])]
            elif rule is not None:
                idx = [i for i in idx if gene.choices[i] in rule]
            self.allowed.append(np.asarray(list(idx), dtype=np.int64))

    def _decode(self, picks: Sequence[int]) -> OFAArch:
        return self.space.from_genome(tuple(int(a[p]) for a, p in zip(self.allowed, picks)))

    def sample(self, n: int, rng: np.random.Generator) -> list[OFAArch]:
        sizes = np.array([len(a) for a in self.allowed])
        picks = (rng.random((n, len(sizes))) * sizes).astype(np.int64)
        return [self._decode(row) for row in picks]

    def largest(self) -> OFAArch:
        return self._decode([int(np.argmax([self.space.genes[j].choices[i] for i in a]))
                             for j, a in enumerate(self.allowed)])

    def smallest(self) -> OFAArch:
        return self._decode([int(np.argmin([self.space.genes[j].choices[i] for i in a]))
                             for j, a in enumerate(self.allowed)])


@dataclass(frozen=True)
class Position:
    """Where a global step falls in the schedule."""

    phase: int         # index into the phases (the last one once training is done)
    step: int          # optimizer steps into that phase
    phase_steps: int   # its length in steps
    done: bool


class Schedule:
    """Phases laid out on the optimizer-step axis: the position, and so the phase and learning rate,
    is a function of the global step alone, so a resumed run continues exactly where it stopped."""

    def __init__(self, phases: Sequence[Phase], steps_per_epoch: int):
        self.phases = [p for p in phases]
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.starts = np.cumsum([0] + [p.epochs * self.steps_per_epoch for p in self.phases])
        self.total_steps = int(self.starts[-1])

    def position(self, global_step: int) -> Position:
        if global_step >= self.total_steps:
            last = max(i for i, p in enumerate(self.phases) if p.epochs > 0)
            n = self.phases[last].epochs * self.steps_per_epoch
            return Position(last, n, n, True)
        i = int(np.searchsorted(self.starts, global_step, side="right") - 1)
        return Position(i, int(global_step - self.starts[i]), int(self.starts[i + 1] - self.starts[i]), False)

    def lr(self, global_step: int) -> float:
        """Linear warm-up, then cosine decay from the phase's lr to 0 (per phase, as OFA runs each phase)."""
        pos = self.position(global_step)
        phase = self.phases[pos.phase]
        warm = int(round(phase.warmup_epochs * self.steps_per_epoch))
        if pos.step < warm:
            return phase.lr * (pos.step + 1) / warm
        span = max(1, pos.phase_steps - warm)
        return 0.5 * phase.lr * (1.0 + math.cos(math.pi * min(1.0, (pos.step - warm) / span)))
