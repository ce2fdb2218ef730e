"""NAS-Bench-201 cell space (Dong & Yang, ICLR 2020): 6 edges x 5 ops = 15,625 architectures.

A cell is a DAG of 4 nodes; every edge ``j<-i`` (i < j) carries one op, node ``j`` is the sum of
its incoming edges and node 3 is the cell output. The genome is the 6 edges in the canonical
string order ``1<-0 | 2<-0, 2<-1 | 3<-0, 3<-1, 3<-2`` with the ops in vocabulary order.

Index order: the official benchmark index is *not* the lexicographic order of the genomes. The
NAS-Bench-201 authors generated all cells in lexicographic order (edges and ops as above) and
then shuffled that list with Python's ``random.Random(88).shuffle`` (published in their
benchmark-generation script). :meth:`NASBench201.enumerate` therefore overrides the base class
and yields that shuffled order, so ``list(space.enumerate())[i]`` is the architecture with
official index ``i`` (checked against every row of the HELP latency table in the tests).
"""
from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from functools import partial
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from hwnas.errors import ConfigError, InvalidArchitecture, choices_text
from hwnas.spaces.base import Gene, Layer, SearchSpace, conv_out, hwc
from hwnas.spaces.registry import register_space

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (to_node, from_node) of the 6 edges, in canonical (string and genome) order.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_NODES = 4
EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
FORMAT = "'|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'"
#: Seed of the official benchmark shuffle (NAS-Bench-201 generation script).
_OFFICIAL_SHUFFLE_SEED = 88


@dataclass(frozen=True)
class NB201Arch:
    """The ops of the 6 edges in canonical order ``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2``."""

    ops: tuple[str, ...]

    def __post_init__(self):
        if isinstance(self.ops, str):
            raise InvalidArchitecture(
                f"nb201: NB201Arch.ops must be a sequence of op names, got the string {self.ops!r}; "
                f"use space.from_string() for architecture strings"
            )
        object.__setattr__(self, "ops", tuple(self.ops))


@functools.lru_cache(maxsize=1)
def _official_order() -> tuple[np.ndarray, np.ndarray]:
    """(lexicographic code of each official index, official index of each lexicographic code)."""
    n = len(OPS) ** len(EDGES)
    codes = list(range(n))
    random.Random(_OFFICIAL_SHUFFLE_SEED).shuffle(codes)
    code_of_index = np.asarray(codes, dtype=np.int64)
    index_of_code = np.empty(n, dtype=np.int64)
    index_of_code[code_of_index] = np.arange(n)
    code_of_index.setflags(write=False)
    index_of_code.setflags(write=False)
    return code_of_index, index_of_code


def _genome_codes(genomes: np.ndarray) -> np.ndarray:
    """Lexicographic rank of genomes (edge 0 most significant), i.e. their ``itertools.product`` position."""
    weights = len(OPS) ** np.arange(len(EDGES) - 1, -1, -1, dtype=np.int64)
    return genomes @ weights


# ---------------------------------------------------------------------- network
class _Zero(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)


def _relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    # Not in-place: a node tensor feeds several edges.
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    )


def _edge_op(op: str, channels: int) -> nn.Module:
    if op == "none":
        return _Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return _relu_conv_bn(channels, channels, 1)
    if op == "nor_conv_3x3":
        return _relu_conv_bn(channels, channels, 3)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise InvalidArchitecture(f"nb201: op {op!r} is not allowed; allowed: {choices_text(OPS)}")


class NB201Cell(nn.Module):
    def __init__(self, ops: Sequence[str], channels: int):
        super().__init__()
        self.edges = nn.ModuleList(_edge_op(op, channels) for op in ops)

    def forward(self, x):
        nodes = [x]
        for to_node in range(1, NUM_NODES):
            nodes.append(sum(self.edges[e](nodes[src]) for e, (dst, src) in enumerate(EDGES) if dst == to_node))
        return nodes[-1]


class NB201Reduction(nn.Module):
    """Residual reduction block between stages: ReLU-Conv3x3/2-BN -> ReLU-Conv3x3-BN, plus AvgPool2d(2)+Conv1x1 shortcut."""

    adds_residual = True  # the kernel decomposition's cue (spaces/kernels.py)

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.body = nn.Sequential(_relu_conv_bn(c_in, c_out, 3, stride=2), _relu_conv_bn(c_out, c_out, 3))
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


def _stem(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))


def _head(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten())


class NB201Network(nn.Module):
    """The NAS-Bench-201 macro skeleton: stem, 3 stages of ``cells_per_stage`` cells at C, 2C, 4C, classifier."""

    def __init__(self, ops: Sequence[str], num_classes: int, channels: int, cells_per_stage: int):
        super().__init__()
        layers: list[nn.Module] = [_stem(channels)]
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(NB201Reduction(c, 2 * c))
                c *= 2
            layers.extend(NB201Cell(ops, c) for _ in range(cells_per_stage))
        layers.append(_head(c))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


# ---------------------------------------------------------------------- space
@register_space("nb201")
class NASBench201(SearchSpace):
    """NAS-Bench-201 topology space.

    ``input_size`` is 32 for CIFAR-10/100 and 16 for ImageNet16-120 (with ``num_classes=120``);
    ``channels`` (C) and ``cells_per_stage`` (N) default to the benchmark's 16 and 5.
    """

    ops = OPS
    edges = EDGES

    def __init__(self, num_classes: int = 10, input_size: int = 32, channels: int = 16, cells_per_stage: int = 5):
        for field, value, minimum in (("num_classes", num_classes, 1), ("input_size", input_size, 4),
                                      ("channels", channels, 1), ("cells_per_stage", cells_per_stage, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ConfigError(f"nb201: {field} = {value!r} must be an integer >= {minimum}")
        self.num_classes = num_classes
        self.input_size = input_size
        self.channels = channels
        self.cells_per_stage = cells_per_stage
        self._genes = tuple(Gene(f"edge {dst}<-{src} (position {p})", OPS) for p, (dst, src) in enumerate(EDGES))

    # ------------------------------------------------------------------ genome
    @property
    def genes(self) -> tuple[Gene, ...]:
        return self._genes

    def to_genome(self, arch: NB201Arch) -> tuple[int, ...]:
        if not isinstance(arch, NB201Arch):
            raise InvalidArchitecture(
                f"nb201: expected an NB201Arch (or parse a string with from_string), got {type(arch).__name__} {arch!r}"
            )
        if len(arch.ops) != len(EDGES):
            raise InvalidArchitecture(f"nb201: ops must have {len(EDGES)} entries (one per edge), got {len(arch.ops)}: {arch.ops!r}")
        return tuple(gene.index(op, self.name) for gene, op in zip(self._genes, arch.ops))

    def from_genome(self, genome: Sequence[int]) -> NB201Arch:
        return NB201Arch(tuple(OPS[int(i)] for i in genome))

    # ------------------------------------------------------------------ strings
    def to_string(self, arch: NB201Arch) -> str:
        self.validate(arch)
        nodes = []
        for to_node in range(1, NUM_NODES):
            nodes.append("|" + "|".join(f"{op}~{src}" for op, (dst, src) in zip(arch.ops, EDGES) if dst == to_node) + "|")
        return "+".join(nodes)

    def parse(self, text: str) -> NB201Arch:
        def fail(why: str):
            raise InvalidArchitecture(f"nb201: {why} in {text!r}; expected the format {FORMAT}, e.g. {EXAMPLE!r}")

        parts = text.split("+")
        if len(parts) != NUM_NODES - 1:
            fail(f"expected {NUM_NODES - 1} nodes separated by '+', got {len(parts)}")
        ops: list[str] = []
        for to_node, part in enumerate(parts, start=1):
            if len(part) < 2 or not (part.startswith("|") and part.endswith("|")):
                fail(f"node {to_node} {part!r} must start and end with '|'")
            items = part[1:-1].split("|")
            if len(items) != to_node:
                fail(f"node {to_node} must have {to_node} incoming edge(s), got {len(items)}")
            for src, item in enumerate(items):
                op, sep, node = item.rpartition("~")
                if not sep or not op:
                    fail(f"edge {item!r} of node {to_node} must look like 'op~input'")
                if node != str(src):
                    position = len(ops)
                    raise InvalidArchitecture(
                        f"nb201: edge {to_node}<-{src} (position {position}) has input node {node!r}; "
                        f"allowed: {src} (the edges into node {to_node} come from nodes "
                        f"{choices_text(range(to_node))} in that order) in {text!r}"
                    )
                ops.append(op)
        return NB201Arch(tuple(ops))

    # ------------------------------------------------------------------ official index
    def enumerate(self) -> Iterator[NB201Arch]:
        """All 15,625 cells in official NAS-Bench-201 index order (see the module docstring)."""
        for i in range(self.size()):
            yield self.from_index(i)

    def from_index(self, index: int) -> NB201Arch:
        """The architecture with official NAS-Bench-201 index ``index``."""
        code_of_index, _ = _official_order()
        if not 0 <= int(index) < len(code_of_index):
            raise InvalidArchitecture(f"nb201: index {index} is out of range; allowed: 0..{len(code_of_index) - 1}")
        code = int(code_of_index[int(index)])
        digits = [(code // len(OPS) ** k) % len(OPS) for k in range(len(EDGES) - 1, -1, -1)]
        return self.from_genome(digits)

    def indices(self, archs: Sequence[NB201Arch]) -> np.ndarray:
        """Official NAS-Bench-201 indices of a batch of architectures."""
        _, index_of_code = _official_order()
        return index_of_code[_genome_codes(self.genome_array(archs))]

    def index(self, arch: NB201Arch) -> int:
        return int(self.indices([arch])[0])

    # ------------------------------------------------------------------ encodings
    def encode_graph(self, archs: Sequence[NB201Arch]) -> tuple[torch.Tensor, torch.Tensor]:
        """Operations-as-nodes DAG (HELP / BRP-NAS style): input, the 6 edge ops, output.

        ``adjacency[n, i, j] = 1`` when data flows from node i to node j. The op on edge ``j<-i``
        is fed by the input (i = 0) or by every op on an edge into node i; ops into node 3 feed the
        output. A ``none`` op carries no data, so its node keeps its feature but loses all its
        edges: a cell whose output is cut off from its input has no input->output path.
        Features are one-hot over ``[input, output, *ops]``.
        """
        genomes = torch.from_numpy(self.genome_array(archs))
        n, v = genomes.shape[0], len(EDGES) + 2
        adjacency = _NB201_FLOW.expand(n, v, v).clone()
        carries = torch.ones((n, v), dtype=torch.float32)
        carries[:, 1:-1] = (genomes != OPS.index("none")).float()
        adjacency *= carries[:, :, None] * carries[:, None, :]
        node_type = torch.empty((n, v), dtype=torch.int64)
        node_type[:, 0], node_type[:, -1] = 0, 1
        node_type[:, 1:-1] = genomes + 2
        features = torch.nn.functional.one_hot(node_type, 2 + len(OPS)).float()
        return adjacency, features

    # ------------------------------------------------------------------ networks
    def build_model(self, arch: NB201Arch) -> nn.Module:
        self.validate(arch)
        return NB201Network(arch.ops, self.num_classes, self.channels, self.cells_per_stage)

    def input_shape(self, arch: NB201Arch | None = None, batch_size: int = 1) -> tuple[int, ...]:
        return (batch_size, 3, self.input_size, self.input_size)

    def layers(self, arch: NB201Arch) -> list[Layer]:
        """Stem, every edge op of every cell, the reduction blocks and the head, as lookup-table layers.

        The cell's node sums are not layers; a lookup table approximates a cell by its ops' sum.
        """
        self.validate(arch)
        size, c = self.input_size, self.channels
        out = [Layer(f"stem-input:{hwc((3, size, size))}-output:{hwc((c, size, size))}", (3, size, size),
                     partial(_stem, c))]
        for stage in range(3):
            if stage > 0:
                new = conv_out(size, 2)
                out.append(Layer(f"resblock-input:{hwc((c, size, size))}-output:{hwc((2 * c, new, new))}", (c, size, size),
                                 partial(NB201Reduction, c, 2 * c)))
                c, size = 2 * c, new
            shape = hwc((c, size, size))
            for _ in range(self.cells_per_stage):
                out += [Layer(f"{op}-input:{shape}-output:{shape}", (c, size, size), partial(_edge_op, op, c))
                        for op in arch.ops]
        out += [Layer(f"head-input:{hwc((c, size, size))}-output:{c}", (c, size, size), partial(_head, c)),
                Layer(f"classifier-input:{c}-output:{self.num_classes}", (c,), partial(nn.Linear, c, self.num_classes))]
        return out

    def covering_archs(self) -> list[NB201Arch]:
        return [NB201Arch((op,) * len(EDGES)) for op in OPS]

    def describe(self) -> dict:
        return {**super().describe(), "num_classes": self.num_classes, "input_size": self.input_size,
                "channels": self.channels, "cells_per_stage": self.cells_per_stage}


def _flow_matrix() -> torch.Tensor:
    """Data-flow adjacency of the op graph when no edge is ``none`` (same for every cell)."""
    v = len(EDGES) + 2
    output = v - 1
    a = torch.zeros((v, v), dtype=torch.float32)
    for e, (dst, src) in enumerate(EDGES):
        if src == 0:
            a[0, e + 1] = 1.0
        else:  # fed by every op whose edge ends at node `src`
            for f, (dst_f, _) in enumerate(EDGES):
                if dst_f == src:
                    a[f + 1, e + 1] = 1.0
        if dst == NUM_NODES - 1:
            a[e + 1, output] = 1.0
    return a


_NB201_FLOW = _flow_matrix()
