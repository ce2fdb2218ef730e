"""Multi-objective search with pymoo's NSGA-II on the space's integer genomes.

pymoo runs the algorithm (non-dominated sorting, crowding distance, binary tournaments,
feasibility-first ranking of hard constraints); the variation is the space's own: initial genomes
from its sampler, per-gene resampling as mutation, uniform crossover, and duplicate elimination
by genome. Each generation's offspring is evaluated in one batch through the problem's memoized,
cheap-first evaluation. The result holds every distinct architecture evaluated, so its front is
the front of the whole run (an archive), not only of the last population.
"""
from __future__ import annotations

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.crossover import Crossover
from pymoo.core.duplicate import DuplicateElimination
from pymoo.core.mutation import Mutation
from pymoo.core.problem import Problem
from pymoo.core.sampling import Sampling

from hwnas.search.base import Archive, SearchResult, SearchStrategy, fraction, positive_int, reject_unknown, strategy_seed
from hwnas.search.operators import crossover_genomes, genome_keys, mutate_genomes
from hwnas.search.problem import as_problem

#: Objective value given to architectures that fail a hard constraint (pymoo ranks them by violation only).
INFEASIBLE = 1e12


class _GenomeProblem(Problem):
    """The search problem as pymoo sees it: integer genes in ``[0, n_choices - 1]``, all minimized."""

    def __init__(self, space, problem, archive: Archive):
        self.space, self.search, self.archive = space, problem, archive
        n_var = len(space.genes)
        super().__init__(n_var=n_var, n_obj=len(problem.names), n_ieq_constr=len(problem.hard),
                         xl=np.zeros(n_var), xu=(space.n_choices - 1).astype(float), vtype=int)

    def _evaluate(self, x, out, *args, **kwargs):
        genomes = np.asarray(x).astype(np.int64)
        archs = self.space.decode_genomes(genomes)
        keys = self.search.keys(archs)
        ev = self.search.evaluate(archs, keys)
        self.archive.add(archs, keys, ev.values, ev.feasible)
        columns = []
        for i, name in enumerate(self.search.names):
            if i == 0:
                columns.append(-ev.fitness)  # soft penalties act on the first objective
            else:
                v = ev.values[name]
                columns.append(-v if name in self.search.maximize else v)
        f = np.column_stack(columns)
        f[~ev.feasible] = INFEASIBLE
        out["F"] = f
        if self.search.hard:
            g = np.column_stack([(ev.values[m.name] - c.limit) / c.limit for m, c in self.search.hard])
            out["G"] = np.nan_to_num(g, nan=0.0)  # skipped: an earlier constraint already failed


class _GenomeSampling(Sampling):
    def __init__(self, space):
        super().__init__()
        self.space = space

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        return self.space.sample_genomes(n_samples, random_state)


class _GeneMutation(Mutation):
    def __init__(self, space, gene_prob: float):
        super().__init__(prob=1.0)
        self.space, self.gene_prob = space, gene_prob

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        return mutate_genomes(self.space, np.asarray(X).astype(np.int64), self.gene_prob, random_state)


class _UniformCrossover(Crossover):
    def __init__(self, prob: float):
        super().__init__(n_parents=2, n_offsprings=2, prob=prob)

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        a, b = np.asarray(X[0]).astype(np.int64), np.asarray(X[1]).astype(np.int64)
        child = crossover_genomes(a, b, random_state)
        return np.stack([child, a + b - child])  # the second child takes the other parent's genes


class _GenomeDuplicates(DuplicateElimination):
    """Same genome = same architecture; hashed, not pairwise distances."""

    def _do(self, pop, other, is_duplicate):
        seen = set(genome_keys(np.asarray(other.get("X")))) if other is not None and len(other) else set()
        for i, key in enumerate(genome_keys(np.asarray(pop.get("X")))):
            if key in seen:
                is_duplicate[i] = True
            else:
                seen.add(key)
        return is_duplicate


class NSGA2Search(SearchStrategy):
    """NSGA-II (Deb et al., 2002) via pymoo; returns every evaluated architecture (``result.front()``)."""

    name = "nsga2"
    multi_objective = True

    def __init__(self, population: int = 100, generations: int = 100, mutation_prob: float = 0.1,
                 crossover_prob: float = 0.9, seed: int = 0, **unknown):
        reject_unknown(self.name, type(self), unknown)
        self.population = positive_int(self.name, "population", population, minimum=2)
        self.generations = positive_int(self.name, "generations", generations)
        self.mutation_prob = fraction(self.name, "mutation_prob", mutation_prob)
        self.crossover_prob = fraction(self.name, "crossover_prob", crossover_prob)
        self.seed = strategy_seed(seed)

    def run(self, space, problem) -> SearchResult:
        problem = as_problem(space, problem)
        if not problem.names:  # a plain callable: learn its objective names from one evaluation
            probe = space.sample(1, seed=self.seed)
            problem.evaluate(probe)
        archive = Archive()
        algorithm = NSGA2(pop_size=self.population, sampling=_GenomeSampling(space),
                          crossover=_UniformCrossover(self.crossover_prob),
                          mutation=_GeneMutation(space, self.mutation_prob),
                          eliminate_duplicates=_GenomeDuplicates())
        algorithm.setup(_GenomeProblem(space, problem, archive), termination=("n_gen", self.generations),
                        seed=self.seed, verbose=False)
        while algorithm.has_next():
            algorithm.next()
        return archive.result(problem.maximize, problem.names)
