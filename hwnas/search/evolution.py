"""Once-for-All's evolutionary finder, vectorized over genome arrays.

The algorithm and its defaults are those of OFA's ``EvolutionFinder`` (Cai et al., "Once-for-All",
ICLR 2020): a population of 100; each generation the best 25 % become parents and the next
generation is the parents plus ``population`` children, half (``mutation_ratio`` 0.5) made by
mutating a random parent (each gene resampled with probability 0.1), the rest by uniform
crossover of two random parents; 500 generations. Hard constraints are enforced by rejection:
a child over a limit is redrawn from the same parent(s) (OFA loops until it fits; here at most
``resample_rounds`` rounds, then the child is its first parent, which fits), and the initial
population is rejection-sampled. Soft constraints reach the search through the fitness instead.

Each generation costs one feasibility check per rejection round (latency only, for the children
still missing) and one evaluation of the children's objectives; the memo cache answers every
architecture seen before.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from hwnas.errors import ConfigError
from hwnas.search.base import (Archive, Infeasible, SearchResult, SearchStrategy, fraction, positive_int,
                               reject_unknown, strategy_seed)
from hwnas.search.cache import DecodeCache
from hwnas.search.operators import crossover_genomes, mutate_genomes
from hwnas.search.problem import as_problem

#: Candidates drawn per still-open slot in rejection round r: min(2 ** r, this).
MAX_CANDIDATES_PER_SLOT = 16


class EvolutionSearch(SearchStrategy):
    name = "evolution"
    multi_objective = False

    def __init__(self, population: int = 100, generations: int = 500, parent_ratio: float = 0.25,
                 mutation_ratio: float = 0.5, mutation_prob: float = 0.1, resample_rounds: int = 30, seed: int = 0,
                 **unknown):
        reject_unknown(self.name, type(self), unknown)
        self.population = positive_int(self.name, "population", population, minimum=2)
        self.generations = positive_int(self.name, "generations", generations, minimum=0)
        self.parent_ratio = fraction(self.name, "parent_ratio", parent_ratio, low_open=True)
        self.mutation_ratio = fraction(self.name, "mutation_ratio", mutation_ratio)
        self.mutation_prob = fraction(self.name, "mutation_prob", mutation_prob)
        self.resample_rounds = positive_int(self.name, "resample_rounds", resample_rounds)
        self.seed = strategy_seed(seed)
        self.n_parents = int(round(self.parent_ratio * self.population))
        if self.n_parents < 1:  # was: silently one parent
            raise ConfigError(f"search_strategy.parent_ratio = {parent_ratio!r} of search_strategy.population = "
                              f"{self.population} keeps {self.n_parents} parents per generation; evolution needs >= 1: "
                              f"give parent_ratio >= {1 / self.population:.3g} or a larger population")
        self.n_mutations = int(round(self.mutation_ratio * self.population))
        self.n_crossovers = self.population - self.n_mutations

    def run(self, space, problem) -> SearchResult:
        problem = as_problem(space, problem)
        rng = np.random.default_rng(self.seed)
        archive = Archive()
        decode = DecodeCache(space)
        pop, archs, keys = self._initial(space, problem, rng, decode)
        fitness = self._evaluate(problem, archs, keys, archive)
        history: list[float] = []
        n_mut = self.n_mutations
        for _ in range(self.generations):
            order = np.argsort(-fitness, kind="stable")[: self.n_parents]
            parents, parent_fitness = pop[order], fitness[order]
            parent_archs, parent_keys = [archs[i] for i in order], [keys[i] for i in order]
            history.append(float(parent_fitness[0]))
            # children 0..n_mut-1 mutate parent `first`; the rest cross `first` with `second`
            first = rng.integers(self.n_parents, size=self.population)
            second = rng.integers(self.n_parents, size=self.population)

            def make(slots: np.ndarray) -> np.ndarray:
                out = parents[first[slots]]
                mutate = slots < n_mut
                out[mutate] = mutate_genomes(space, out[mutate], self.mutation_prob, rng)
                out[~mutate] = crossover_genomes(out[~mutate], parents[second[slots[~mutate]]], rng)
                return out

            children, child_archs, child_keys, _ = self._feasible(space, problem, self.population, make, decode,
                                                                  fallback=(parents[first], parent_archs, parent_keys,
                                                                            first))
            child_fitness = self._evaluate(problem, child_archs, child_keys, archive)
            pop = np.concatenate([parents, children])
            fitness = np.concatenate([parent_fitness, child_fitness])
            archs, keys = parent_archs + child_archs, parent_keys + child_keys
        best = int(np.argmax(fitness))
        history.append(float(fitness[best]))
        return archive.result(problem.maximize, problem.names, best_key=keys[best], history=history)

    # ------------------------------------------------------------------ steps
    @staticmethod
    def _evaluate(problem, archs: list, keys: list[str], archive: Archive) -> np.ndarray:
        ev = problem.evaluate(archs, keys)
        archive.add(archs, keys, ev.values, ev.feasible)
        return ev.fitness

    def _initial(self, space, problem, rng: np.random.Generator, decode: DecodeCache):
        seen: dict[str, float] = {}
        pop, archs, keys, filled = self._feasible(space, problem, self.population,
                                                  lambda slots: space.sample_genomes(len(slots), rng), decode,
                                                  seen=seen)
        if not filled.any():
            limits = "; ".join(f"{c.describe()}: smallest seen {seen.get(m.name, float('nan')):.4g}"
                               for m, c in problem.hard)
            tried = self.resample_rounds * self.population * MAX_CANDIDATES_PER_SLOT
            raise Infeasible(f"no architecture of {space.name} met the hard constraints in up to {tried:,} random "
                             f"samples ({limits}): loosen the limit (e.g. a larger latency budget)")
        if not filled.all():  # a very tight budget: start from copies of the few that fit
            ok = np.flatnonzero(filled)
            for i in np.flatnonzero(~filled):
                j = int(rng.choice(ok))
                pop[i], archs[i], keys[i] = pop[j], archs[j], keys[j]
        return pop, archs, keys

    def _feasible(self, space, problem, n: int, make: Callable[[np.ndarray], np.ndarray], decode: DecodeCache,
                  fallback=None, seen: dict[str, float] | None = None):
        """``n`` genomes from ``make(slots)`` that meet the hard constraints, redrawing rejected slots.

        Round r draws ``min(2 ** r, 16)`` candidates per open slot in one batch. Slots still open
        after the last round take their ``fallback`` (``(genomes, archs, keys, index)``: the row
        ``index[slot]`` of a feasible parent set) when given. Returns ``(genomes, archs, keys, filled)``.
        """
        if not problem.hard:
            genomes = make(np.arange(n))
            archs, keys = decode(genomes)
            return genomes, archs, keys, np.ones(n, dtype=bool)
        out = np.zeros((n, len(space.genes)), dtype=np.int64)
        out_archs: list = [None] * n
        out_keys: list = [None] * n
        todo = np.arange(n)
        for r in range(self.resample_rounds):
            slots = np.repeat(todo, min(2 ** r, MAX_CANDIDATES_PER_SLOT))
            candidates = make(slots)
            archs, keys = decode(candidates)
            values: dict[str, np.ndarray] = {}
            ok = problem.feasible(archs, keys, values=values)
            if seen is not None:
                for name, v in values.items():
                    if np.isfinite(v).any():
                        seen[name] = min(seen.get(name, np.inf), float(np.nanmin(v)))
            accepted = np.flatnonzero(ok)
            done, first = np.unique(slots[accepted], return_index=True)
            for slot, i in zip(done.tolist(), accepted[first].tolist()):
                out[slot], out_archs[slot], out_keys[slot] = candidates[i], archs[i], keys[i]
            todo = np.setdiff1d(todo, done, assume_unique=True)
            if not len(todo):
                break
        filled = np.ones(n, dtype=bool)
        filled[todo] = False
        if fallback is not None:
            genomes, archs, keys, index = fallback
            for slot in todo.tolist():
                j = int(index[slot])
                out[slot], out_archs[slot], out_keys[slot] = genomes[slot], archs[j], keys[j]
        return out, out_archs, out_keys, filled
