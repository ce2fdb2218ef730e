"""Genetic operators on ``(N, genes)`` genome arrays, the form every space samples in.

They mirror :meth:`SearchSpace.mutate_batch` / :meth:`~SearchSpace.crossover_batch` (per-gene
resampling, uniform crossover) but stay on index arrays, so a generation is decoded into
architecture objects once, only for the children that are evaluated.
"""
from __future__ import annotations

import numpy as np


def mutate_genomes(space, genomes: np.ndarray, prob: float, rng: np.random.Generator) -> np.ndarray:
    """Each gene resampled from the space's own sampler with probability ``prob`` (OFA's mutation)."""
    fresh = space.sample_genomes(len(genomes), rng)
    return np.where(rng.random(genomes.shape) < prob, fresh, genomes)


def crossover_genomes(first: np.ndarray, second: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uniform crossover: each gene from either parent with probability 1/2."""
    return np.where(rng.random(first.shape) < 0.5, first, second)


def genome_keys(genomes: np.ndarray) -> list[bytes]:
    """Hashable identity of each genome row (same genome <=> same architecture)."""
    g = np.ascontiguousarray(genomes, dtype=np.int64)
    return [row.tobytes() for row in g]
