"""The mixed-operation network of differentiable search over the OFA MobileNetV3 space.

Every elastic block of the space becomes a *mixed layer*: one candidate per (kernel, expand) pair,
plus a ``skip`` candidate on blocks that a shallower stage drops (block ``b`` of a stage with
``b >= min(depth choices)``), so depth is searched too. Each layer carries one row of architecture
logits ``alpha``; ``softmax(alpha)`` is the probability of each candidate.

Binarized paths (Cai et al., "ProxylessNAS", ICLR 2019, Sec. 3.2): a forward pass runs exactly
one candidate per layer, drawn from ``softmax(alpha)``, so memory and compute are those of one
subnet. With gates enabled the chosen candidate's output is multiplied by a binary gate ``g_j``
whose value is 1 but whose gradient is routed to its probability ``p_j`` (straight through):
``dL/dp_j = <dL/d out, o_j(x)>``, and through the softmax ``dL/dalpha_i = dL/dg_j * p_j (delta_ij - p_i)``,
which is ProxylessNAS's binary-gate estimator evaluated on the sampled path. On blocks with an
identity shortcut the candidate is the residual branch (``out = x + g_j * branch_j(x)``) and
``skip`` is the zero branch, so a skipped block is the identity, as in ProxylessNAS.

Candidates (``candidates``):

- ``independent``: one :class:`~hwnas.spaces.layers.MBConv` per (kernel, expand), as in
  ProxylessNAS. Each candidate is layer ``2 + i`` of ``space.layers(OFAArch(k everywhere, e
  everywhere, full depth, r))``: the very module and lookup-table key of any subnet that uses it.
  Independent weights need long training: every step feeds each layer's successor the features
  of a different, unrelated candidate (on the digits data a path resampled per step did not
  learn in 10 epochs, while a fixed path did in 2).
- ``shared``: the candidates of a layer are settings of one
  :class:`~hwnas.supernet.elastic.ElasticMBConv` (Once-for-All's weight sharing: smaller kernels
  are transformed centres of the largest, smaller expands its leading channels; cf. Single-Path
  NAS's super-kernel), so candidates stay aligned and the mixed network trains in a few epochs.
  The block exports each setting into the same ``MBConv`` (``export_to``), so lookup-table keys
  and derived networks are identical in both modes.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

from hwnas.errors import ConfigError
from hwnas.spaces.base import Layer
from hwnas.spaces.ofa import MAX_DEPTH, N_BLOCKS, N_STAGES, STAGE_ACTS, STAGE_SE, STAGE_STRIDES, OFAArch, OFAMobileNetV3

SKIP = "skip"
CANDIDATES = ("shared", "independent")


@dataclass(frozen=True)
class MixedLayerSpec:
    """Block ``block`` (index into the arch's 20 blocks) of stage ``stage``; its candidates' layers."""

    block: int
    stage: int
    position: int                 # position inside the stage
    ops: tuple[tuple[int, int], ...]   # (kernel, expand) per non-skip candidate
    layers: tuple[Layer, ...]     # the space's layer of each non-skip candidate
    skippable: bool
    c_in: int
    c_out: int
    stride: int
    act: str
    se: bool

    @property
    def labels(self) -> list[str]:
        return [f"k{k}_e{e}" for k, e in self.ops] + ([SKIP] if self.skippable else [])


@dataclass(frozen=True)
class MixedSpace:
    """The mixed layers of an OFA space at one resolution, and its fixed layers (stem, first block, head)."""

    resolution: int
    layers: tuple[MixedLayerSpec, ...]
    fixed: tuple[Layer, ...]

    @property
    def n_candidates(self) -> int:
        """Columns of the logits matrix: every (kernel, expand) pair plus the skip column."""
        return len(self.layers[0].ops) + 1

    def mask(self) -> torch.Tensor:
        """``(L, C)`` bool: which candidates each layer has (the skip column only where depth can drop)."""
        m = torch.ones(len(self.layers), self.n_candidates, dtype=torch.bool)
        for i, spec in enumerate(self.layers):
            m[i, -1] = spec.skippable
        return m


def mixed_space(space: OFAMobileNetV3, resolution: int) -> MixedSpace:
    """Decompose ``space`` at ``resolution`` into mixed layers (one per block a subnet can run)."""
    if not isinstance(space, OFAMobileNetV3) or space.name != "ofa_mbv3":
        raise ConfigError(f"differentiable search runs on search_space=ofa_mbv3 (independent kernel, expand and "
                          f"depth per block); got {getattr(space, 'name', type(space).__name__)}")
    if resolution not in space.resolutions:
        raise ConfigError(f"search_strategy.resolution = {resolution} is not a resolution of the space; allowed: "
                          f"{', '.join(str(r) for r in space.resolutions)}")
    depth = max(space.d_choices)
    ops = tuple(itertools.product(space.ks_choices, space.e_choices))
    per_op = [space.layers(OFAArch((k,) * N_BLOCKS, (e,) * N_BLOCKS, (depth,) * N_STAGES, resolution)) for k, e in ops]
    specs, pos = [], 2  # after the stem and the first (fixed) block
    widths = space.widths()
    c = widths["first_block"]
    for s in range(N_STAGES):
        for b in range(depth):
            c_out = widths["stages"][s]
            specs.append(MixedLayerSpec(s * MAX_DEPTH + b, s, b, ops, tuple(layers[pos] for layers in per_op),
                                        b >= min(space.d_choices), c, c_out, STAGE_STRIDES[s] if b == 0 else 1,
                                        STAGE_ACTS[s], STAGE_SE[s]))
            c = c_out
            pos += 1
    fixed = tuple(per_op[0][:2]) + tuple(per_op[0][pos:])
    return MixedSpace(resolution, tuple(specs), fixed)


def derive_arch(space: OFAMobileNetV3, mixed: MixedSpace, choice) -> OFAArch:
    """The architecture of one candidate index per layer; skipped blocks drop out of their stage.

    Blocks after the first of a stage share their input and output shapes, so a stage whose
    third block is skipped but whose fourth is not computes what the compacted stage of depth 3
    computes (the skipped block is the identity): the kept blocks move up, unused slots carry the
    smallest kernel and expand. Lookup-table keys are unchanged by the compaction.
    """
    choice = [int(c) for c in choice]
    ks = [space.ks_choices[0]] * N_BLOCKS
    es = [space.e_choices[0]] * N_BLOCKS
    depth = [0] * N_STAGES
    for spec, c in zip(mixed.layers, choice):
        if c >= len(spec.ops):  # skip
            continue
        i = spec.stage * MAX_DEPTH + depth[spec.stage]
        ks[i], es[i] = spec.ops[c]
        depth[spec.stage] += 1
    return space.make(ks, es, depth, mixed.resolution)


def kept_layers(mixed: MixedSpace, choice) -> list[tuple[int, int]]:
    """``(layer, candidate)`` of every non-skipped layer, in network order (the derived blocks' sources)."""
    return [(i, int(c)) for i, (spec, c) in enumerate(zip(mixed.layers, choice)) if int(c) < len(spec.ops)]


class MixedLayer(nn.Module):
    """One block's candidates (independent modules or one shared elastic block); runs exactly the one it is told to."""

    def __init__(self, spec: MixedLayerSpec, shared: bool = True):
        super().__init__()
        self.ops, self.shared = spec.ops, bool(shared)
        self.residual = spec.stride == 1 and spec.c_in == spec.c_out
        if spec.skippable and not self.residual:
            raise ConfigError(f"block {spec.block} cannot be skipped: its input and output shapes differ")
        if self.shared:
            from hwnas.supernet.elastic import ElasticMBConv

            kernels = sorted({k for k, _ in spec.ops})
            expands = sorted({e for _, e in spec.ops})
            self.block = ElasticMBConv(spec.c_in, spec.c_out, kernels, expands, spec.stride, act=spec.act, use_se=spec.se)
        else:
            self.candidates = nn.ModuleList(layer.build() for layer in spec.layers)

    def candidate(self, index: int) -> nn.Module:
        """The module computing candidate ``index`` (the shared block set to its kernel and expand)."""
        if not self.shared:
            return self.candidates[index]
        self.block.active_kernel, self.block.active_expand = self.ops[index]
        return self.block

    def forward(self, x: torch.Tensor, index: int, gate: torch.Tensor | None = None) -> torch.Tensor:
        """Candidate ``index`` (``len(ops)``: skip); ``gate`` (a probability) makes a unit gate with its gradient."""
        if index >= len(self.ops):
            return x  # skip: the zero branch of a residual block
        y = self.candidate(index)(x)
        if gate is None:
            return y
        unit = 1.0 + gate - gate.detach()  # value 1, gradient to the gate's probability
        return x + (y - x) * unit if self.residual else y * unit

    @torch.no_grad()
    def export_to(self, target: nn.Module, index: int) -> None:
        """Fill the space's ``MBConv`` of candidate ``index`` with this layer's weights for it."""
        if self.shared:
            self.block.export_to(target, *self.ops[index])
        else:
            target.load_state_dict(self.candidates[index].state_dict())


class MixedNetwork(nn.Module):
    """Stem, first block, the mixed layers, head; ``alpha`` ``(L, C)`` holds the architecture logits."""

    def __init__(self, mixed: MixedSpace, candidates: str = "shared"):
        super().__init__()
        if candidates not in CANDIDATES:
            raise ConfigError(f"candidates = {candidates!r} is not allowed; allowed: {', '.join(CANDIDATES)}")
        self.mixed = mixed
        fixed = [layer.build() for layer in mixed.fixed]
        self.stem, self.first_block = fixed[0], fixed[1]
        self.head = nn.Sequential(*fixed[2:])  # final expand, pool, feature mix, classifier
        self.layers = nn.ModuleList(MixedLayer(spec, candidates == "shared") for spec in mixed.layers)
        self.alpha = nn.Parameter(torch.zeros(len(mixed.layers), mixed.n_candidates))
        self.register_buffer("available", mixed.mask(), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        from hwnas.supernet.ofa import init_weights

        init_weights(self)

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name != "alpha"]

    def probabilities(self) -> torch.Tensor:
        """``softmax(alpha)`` per layer over the candidates it has (0 for a missing skip)."""
        return torch.softmax(self.alpha.masked_fill(~self.available, float("-inf")), dim=1)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """One candidate index per layer, drawn from ``softmax(alpha)`` (no gradient)."""
        with torch.no_grad():
            return torch.multinomial(self.probabilities(), 1, generator=generator).squeeze(1)

    def argmax(self) -> torch.Tensor:
        with torch.no_grad():
            return self.probabilities().argmax(dim=1)

    def forward(self, x: torch.Tensor, choice, gates: bool = False) -> torch.Tensor:
        """Run the path ``choice`` (one index per layer); ``gates=True`` lets the loss reach ``alpha``."""
        probs = self.probabilities() if gates else None
        x = self.first_block(self.stem(x))
        for i, layer in enumerate(self.layers):
            j = int(choice[i])
            x = layer(x, j, probs[i, j] if probs is not None else None)
        return self.head(x)

    @torch.no_grad()
    def export(self, space: OFAMobileNetV3, choice) -> tuple[OFAArch, nn.Module]:
        """The derived architecture and ``space.build_model(arch)`` holding the chosen candidates' weights."""
        arch = derive_arch(space, self.mixed, choice)
        model = space.build_model(arch)
        parts = list(model.children())
        kept = kept_layers(self.mixed, choice)
        if len(parts) != len(kept) + 6:
            raise RuntimeError(f"{space.name}.build_model gave {len(parts)} layers; expected {len(kept) + 6}")
        parts[0].load_state_dict(self.stem.state_dict())
        parts[1].load_state_dict(self.first_block.state_dict())
        for target, (i, c) in zip(parts[2:], kept):
            self.layers[i].export_to(target, c)
        for target, source in zip(parts[-4:], self.head):
            target.load_state_dict(source.state_dict())
        return arch, model.train(self.training)
