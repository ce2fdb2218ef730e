"""Cost model of a network: parameters, FLOPs (``torch.utils.flop_counter``) and peak activation memory.

Peak activation memory is measured, not guessed: a dispatch mode tracks the bytes of every
tensor an op produces while they are alive during one inference forward pass, and reports the
maximum (plus the input). Parameters and buffers are not counted.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class ArchCost:
    params: int
    flops: int  # floating-point operations (2 per multiply-accumulate)
    peak_activation_bytes: int

    @property
    def macs(self) -> int:
        return self.flops // 2


class _LiveActivationBytes(TorchDispatchMode):
    """Tracks bytes of live op outputs, keyed by storage, released when the last tensor dies."""

    def __init__(self, initial_bytes: int = 0):
        super().__init__()
        self.live = initial_bytes
        self.peak = initial_bytes
        self._refs: dict[int, int] = {}

    def _release(self, key: int, nbytes: int) -> None:
        self._refs[key] -= 1
        if self._refs[key] == 0:
            del self._refs[key]
            self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key, nbytes = storage.data_ptr(), storage.nbytes()
                if key not in self._refs:
                    self._refs[key] = 0
                    self.live += nbytes
                    self.peak = max(self.peak, self.live)
                self._refs[key] += 1
                weakref.finalize(t, self._release, key, nbytes)
        return out


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def model_cost(model: nn.Module, input_shape: tuple[int, ...]) -> ArchCost:
    """Cost of one forward pass of ``model`` on a zero input of ``input_shape`` (eval mode)."""
    model.eval()
    x = torch.zeros(input_shape)
    with FlopCounterMode(display=False) as counter:
        model(x)
    flops = counter.get_total_flops()
    tracker = _LiveActivationBytes(initial_bytes=x.untyped_storage().nbytes())
    with tracker:
        out = model(x)
    del out
    return ArchCost(params=count_params(model), flops=int(flops), peak_activation_bytes=int(tracker.peak))


def layer_cost(layer) -> ArchCost:
    """Cost of one lookup-table layer at batch size 1."""
    return model_cost(layer.build(), (1, *layer.input_shape))


def layer_costs(space, archs) -> dict:
    """Batch costs summed over each space's layer decomposition; each distinct layer costed once per space."""
    cache: dict[str, ArchCost] = space.__dict__.setdefault("_layer_cost_cache", {})

    def cost(layer) -> ArchCost:
        c = cache.get(layer.key)
        if c is None:
            c = cache[layer.key] = layer_cost(layer)
        return c

    if hasattr(space, "layer_slots") and len(archs):  # vectorized, bit-equal to the loop below (tested)
        sums = space.__dict__.get("_cost_slot_sums")
        if sums is None:
            from hwnas.spaces.slots import SlotSums

            sums = space.__dict__["_cost_slot_sums"] = {
                "params": SlotSums(space, lambda r, layer: cost(layer).params),
                "flops": SlotSums(space, lambda r, layer: cost(layer).flops),
                "peak_activation_bytes": SlotSums(space, lambda r, layer: cost(layer).peak_activation_bytes, "max")}
        arrays = space.arrays(archs)
        out = {name: s(*arrays) for name, s in sums.items()}
        return {"params": out["params"], "flops": out["flops"], "macs": out["flops"] / 2,
                "peak_activation_bytes": out["peak_activation_bytes"]}
    return loop_layer_costs(space, archs, cost)


def loop_layer_costs(space, archs, cost) -> dict:
    """:func:`layer_costs` one architecture at a time, over ``space.layers(arch)`` (any space)."""
    import numpy as np

    n = len(archs)
    params, flops, peak = np.zeros(n), np.zeros(n), np.zeros(n)
    for i, arch in enumerate(archs):
        for layer in space.layers(arch):
            c = cost(layer)
            params[i] += c.params
            flops[i] += c.flops
            peak[i] = max(peak[i], c.peak_activation_bytes)
    return {"params": params, "flops": flops, "macs": flops / 2, "peak_activation_bytes": peak}
