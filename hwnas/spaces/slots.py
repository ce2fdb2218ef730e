"""A per-layer quantity summed over each architecture's layers, vectorized over a batch.

OFA-family spaces describe their layer decomposition as *slots* (``space.layer_slots()``): per
resolution, the layers before the blocks, the layer at each block position for each (kernel,
expand) choice, and the layers after the blocks. A block's layer depends only on its position,
its own kernel and expansion and the resolution, so ``space.layers(arch)`` is the slots with the
blocks beyond each stage's depth left out. :class:`SlotSums` lays a per-layer value (a lookup
table's latency, a layer's FLOPs or parameters) out once as ``(resolution, block, kernel, expand)``
arrays, each entry filled when a batch first needs it, and sums a batch with one gather per block position and no
Python loop per architecture. The additions run in the order of ``space.layers(arch)`` with
dropped blocks adding 0.0, so every sum is bit-equal to a loop over ``layers(arch)`` (tested for
the lookup table and the costs). ``reduce="max"`` takes the largest value instead (peak memory).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from hwnas.spaces.base import Layer


class SlotSums:
    def __init__(self, space, value: Callable[[int, Layer], float], reduce: str = "sum"):
        self.slots = space.layer_slots()
        resolutions = list(self.slots)
        self.r_index, self.k_index, self.e_index = (_index_of(c) for c in (resolutions, space.ks_choices, space.e_choices))
        self.resolutions = resolutions
        self.active_mask = space.active_mask
        self.value = value
        self.reduce = reduce
        before, grid, after = self.slots[resolutions[0]]
        shape = (len(resolutions), len(grid), len(space.ks_choices), len(space.e_choices))
        self.before = np.full((len(resolutions), len(before)), np.nan)
        self.blocks = np.full(shape, np.nan)
        self.after = np.full((len(resolutions), len(after)), np.nan)
        self.filled = np.zeros(len(resolutions), dtype=bool)   # before/after, per resolution
        self.blocks_filled = np.zeros(shape, dtype=bool)           # each block entry, when first needed

    def _fill(self, ri: np.ndarray, ki: np.ndarray, ei: np.ndarray, active: np.ndarray) -> None:
        """Compute the values this batch needs and has not met before (a layer's cost is a forward pass)."""
        for i in np.unique(ri):
            if not self.filled[i]:
                r = self.resolutions[i]
                before, _, after = self.slots[r]
                self.before[i] = [self.value(r, layer) for layer in before]
                self.after[i] = [self.value(r, layer) for layer in after]
                self.filled[i] = True
        n_blocks = self.blocks.shape[1]
        flat = np.ravel_multi_index((np.broadcast_to(ri[:, None], ki.shape), np.broadcast_to(np.arange(n_blocks), ki.shape),
                                     ki, ei), self.blocks.shape)
        needed = flat[active & ~self.blocks_filled.ravel()[flat]]
        for f in np.unique(needed):
            i, b, k, e = np.unravel_index(f, self.blocks.shape)
            r = self.resolutions[i]
            self.blocks[i, b, k, e] = self.value(r, self.slots[r][1][b][k][e])
            self.blocks_filled[i, b, k, e] = True

    def __call__(self, ks: np.ndarray, e: np.ndarray, d: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Per architecture, from the ``space.arrays(archs)`` arrays: the sum (or max) over its layers."""
        ri, ki, ei = self.r_index[r], self.k_index[ks], self.e_index[e]
        active = self.active_mask(d)
        self._fill(ri, ki, ei, active)
        n_blocks = self.blocks.shape[1]
        values = self.blocks[ri[:, None], np.arange(n_blocks)[None, :], ki, ei]
        dropped = 0.0 if self.reduce == "sum" else -np.inf
        values = np.where(active, values, dropped)
        combine = np.add if self.reduce == "sum" else np.maximum
        total = np.zeros(len(r), dtype=np.float64)
        for column in (*self.before[ri].T, *values.T, *self.after[ri].T):
            total = combine(total, column)
        return total


def _index_of(choices) -> np.ndarray:
    """``lookup[value] = position of value in choices`` (values are small non-negative ints)."""
    lookup = np.full(max(choices) + 1, -1, dtype=np.int64)
    lookup[np.asarray(choices, dtype=np.int64)] = np.arange(len(choices))
    return lookup
