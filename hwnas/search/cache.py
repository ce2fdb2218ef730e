"""Memoization of per-architecture values during a search.

Evolution revisits architectures all the time (elitist parents, mutations that change nothing,
crossovers of near-identical parents, one run per latency budget), so every metric a search
asks for goes through a :class:`MemoCache`: values are remembered per canonical architecture
string and only architectures never seen before reach the estimator, in one batch.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

#: ``compute(archs, keys) -> {column: values}``: the batch function a cache remembers.
BatchFunction = Callable[[Sequence, Sequence[str]], dict[str, np.ndarray]]


class MemoCache:
    """Remembers the columns ``compute`` returns, per canonical architecture string.

    ``hits`` counts lookups answered from memory (repeats inside one batch included), ``misses``
    the architectures computed. ``seconds_per_arch`` is the measured cost of a miss, which the
    search uses to evaluate cheap metrics before expensive ones.
    """

    def __init__(self, compute: BatchFunction, columns: Sequence[str], name: str = ""):
        self.compute, self.columns, self.name = compute, tuple(columns), name or "/".join(columns)
        self._store: dict[str, dict[str, float]] = {c: {} for c in self.columns}
        self.hits = 0
        self.misses = 0
        self.seconds = 0.0

    def __len__(self) -> int:
        return len(self._store[self.columns[0]])

    def __contains__(self, key: str) -> bool:
        return key in self._store[self.columns[0]]

    @property
    def seconds_per_arch(self) -> float | None:
        return self.seconds / self.misses if self.misses else None

    def __call__(self, archs: Sequence, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Values of every column for ``archs`` (``keys`` are their canonical strings)."""
        first = self._store[self.columns[0]]
        todo: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key not in first and key not in todo:
                todo[key] = i
        if todo:
            t0 = time.perf_counter()
            fresh = self.compute([archs[i] for i in todo.values()], list(todo))
            self.seconds += time.perf_counter() - t0
            for column in self.columns:
                values = np.asarray(fresh[column], dtype=np.float64)
                if values.shape != (len(todo),):
                    raise ValueError(f"{self.name}: expected {len(todo)} values of {column!r}, got shape {values.shape}")
                self._store[column].update(zip(todo, values.tolist()))
        self.misses += len(todo)
        self.hits += len(keys) - len(todo)
        return {c: np.fromiter((self._store[c][k] for k in keys), dtype=np.float64, count=len(keys))
                for c in self.columns}


def cache_stats(caches: Sequence[MemoCache]) -> dict[str, float]:
    """Hits, misses and hit rate summed over caches."""
    hits, misses = sum(c.hits for c in caches), sum(c.misses for c in caches)
    return {"cache_hits": hits, "cache_misses": misses,
            "cache_hit_rate": hits / (hits + misses) if hits + misses else 0.0}


class DecodeCache:
    """Genome -> (architecture, canonical string), remembered for one search run.

    Evolution draws the same genomes again and again (unchanged mutants, crossovers of related
    parents); building the architecture object and its string once per distinct genome keeps that
    Python work proportional to what is new.
    """

    def __init__(self, space):
        self.space = space
        self._memo: dict[bytes, tuple[object, str]] = {}

    def __call__(self, genomes: np.ndarray) -> tuple[list, list[str]]:
        g = np.ascontiguousarray(genomes, dtype=np.int64)
        rows = [r.tobytes() for r in g]
        memo = self._memo
        new: dict[bytes, int] = {}
        for i, r in enumerate(rows):
            if r not in memo and r not in new:
                new[r] = i
        if new:
            archs = self.space.decode_genomes(g[list(new.values())])
            to_string = self.space.to_string
            memo.update(zip(new, ((a, to_string(a)) for a in archs)))
        pairs = [memo[r] for r in rows]
        return [p[0] for p in pairs], [p[1] for p in pairs]
