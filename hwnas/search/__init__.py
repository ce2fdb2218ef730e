"""Search strategies, objectives and constraints, memoization and Pareto utilities."""
from hwnas.search.base import Archive, SearchResult, SearchStrategy
from hwnas.search.cache import MemoCache
from hwnas.search.constraints import Constraint, SoftPenalty
from hwnas.search.evolution import EvolutionSearch
from hwnas.search.nsga2 import NSGA2Search
from hwnas.search.pareto import hypervolume, pareto_front
from hwnas.search.problem import Evaluation, SearchProblem
from hwnas.search.random import RandomSearch

__all__ = ["Archive", "Constraint", "Evaluation", "EvolutionSearch", "MemoCache", "NSGA2Search", "RandomSearch",
           "SearchProblem", "SearchResult", "SearchStrategy", "SoftPenalty", "hypervolume", "pareto_front"]
