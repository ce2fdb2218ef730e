"""Search strategies, objectives and Pareto utilities."""
from hwnas.search.base import SearchResult, SearchStrategy
from hwnas.search.pareto import hypervolume, pareto_front
from hwnas.search.random import RandomSearch

__all__ = ["SearchResult", "SearchStrategy", "RandomSearch", "hypervolume", "pareto_front"]
