"""FBNet layer-wise space (Wu et al., CVPR 2019): 22 searchable layers x 9 ops = 9^22 architectures.

Macro-architecture from the paper's Table 1: a 3x3 stem with 16 channels, seven stages of
searchable layers (out channels, layers, ImageNet stride) (16,1,1), (24,4,2), (32,4,2),
(64,4,2), (112,4,1), (184,4,2), (352,1,1), a 1x1 conv to 1984 channels, global average pool and
a linear classifier. A stage's stride applies to its first layer.

CIFAR adaptation (ours): the HELP latency data is the CIFAR-100 setting (32 px input, 100
classes). With the ImageNet strides a 32 px input would shrink to 1x1 before the head; we keep
the stem at stride 1 and make the first stride-2 stage (24 channels) stride 1, so the strides are
``[1, 1, 2, 2, 1, 2, 1]`` and a 32 px input ends at 4x4. ``FBNet.IMAGENET`` holds the paper's
ImageNet setting (224 px, stem stride 2, strides ``[1, 2, 2, 2, 1, 2, 1]``, 1000 classes):
``FBNet(**FBNet.IMAGENET)``.

Ops: ``kK_eE`` is an inverted residual (MBConv) with kernel K and expansion E, ReLU, no SE; the
1x1 expand conv exists even at E = 1 (FBNet's blocks always have it). ``_g2`` makes both
pointwise convs 2-group convs with a channel shuffle after the first. ``skip`` is the identity
when the layer keeps shape (stride 1, same channels) and otherwise, as in FBNet, a 1x1
conv-BN-ReLU projection with the layer's stride.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Sequence

import torch
from torch import nn

from hwnas.errors import ConfigError, InvalidArchitecture, choices_text
from hwnas.options import integer
from hwnas.spaces.base import Gene, Layer, SearchSpace, conv_out, hwc
from hwnas.spaces.layers import ConvBNAct, MBConv
from hwnas.spaces.registry import register_space

OPS: tuple[str, ...] = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
#: op -> (kernel, expansion, groups); ``skip`` is absent.
OP_SPECS: dict[str, tuple[int, int, int]] = {
    "k3_e1": (3, 1, 1), "k3_e1_g2": (3, 1, 2), "k3_e3": (3, 3, 1), "k3_e6": (3, 6, 1),
    "k5_e1": (5, 1, 1), "k5_e1_g2": (5, 1, 2), "k5_e3": (5, 3, 1), "k5_e6": (5, 6, 1),
}
#: (out channels, layers) of the seven TBS stages (FBNet Table 1).
STAGES: tuple[tuple[int, int], ...] = ((16, 1), (24, 4), (32, 4), (64, 4), (112, 4), (184, 4), (352, 1))
STEM_CHANNELS = 16
HEAD_CHANNELS = 1984
NUM_LAYERS = sum(n for _, n in STAGES)
CIFAR_STAGE_STRIDES = (1, 1, 2, 2, 1, 2, 1)
IMAGENET_STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)


@dataclass(frozen=True)
class FBNetArch:
    """The op of each of the 22 searchable layers, first to last."""

    ops: tuple[str, ...]

    def __post_init__(self):
        if isinstance(self.ops, str):
            raise InvalidArchitecture(
                f"fbnet: FBNetArch.ops must be a sequence of op names, got the string {self.ops!r}; "
                f"use space.from_string() for architecture strings"
            )
        object.__setattr__(self, "ops", tuple(self.ops))


def _layer_plan(stage_strides: Sequence[int]) -> list[tuple[int, int, int]]:
    """(in channels, out channels, stride) of each searchable layer."""
    plan, c_in = [], STEM_CHANNELS
    for (c_out, layers), stride in zip(STAGES, stage_strides):
        for i in range(layers):
            plan.append((c_in, c_out, stride if i == 0 else 1))
            c_in = c_out
    return plan


def _layer(op: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    if op == "skip":
        if stride == 1 and c_in == c_out:
            return nn.Identity()
        return ConvBNAct(c_in, c_out, 1, stride, act="relu")
    kernel, expand, groups = OP_SPECS[op]
    return MBConv(c_in, c_out, kernel, stride, expand, act="relu", use_se=False, groups=groups, always_expand=True)


def _head() -> nn.Sequential:
    return nn.Sequential(ConvBNAct(STAGES[-1][0], HEAD_CHANNELS, 1, act="relu"), nn.AdaptiveAvgPool2d(1), nn.Flatten())


class FBNetNetwork(nn.Module):
    def __init__(self, ops: Sequence[str], num_classes: int, stem_stride: int, stage_strides: Sequence[int]):
        super().__init__()
        self.stem = ConvBNAct(3, STEM_CHANNELS, 3, stem_stride, act="relu")
        self.layers = nn.Sequential(*(_layer(op, *plan) for op, plan in zip(ops, _layer_plan(stage_strides))))
        self.head = _head()
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x):
        return self.classifier(self.head(self.layers(self.stem(x))))


@register_space("fbnet")
class FBNet(SearchSpace):
    """FBNet space; defaults are the CIFAR-100 setting of the HELP data (see the module docstring)."""

    ops = OPS
    IMAGENET = {"num_classes": 1000, "input_size": 224, "stem_stride": 2, "stage_strides": list(IMAGENET_STAGE_STRIDES)}

    def __init__(self, num_classes: int = 100, input_size: int = 32, stem_stride: int = 1,
                 stage_strides: Sequence[int] = CIFAR_STAGE_STRIDES):
        for field, value, minimum in (("num_classes", num_classes, 1), ("input_size", input_size, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ConfigError(f"fbnet: {field} = {value!r} must be an integer >= {minimum}")
        if stem_stride not in (1, 2):
            raise ConfigError(f"fbnet: stem_stride = {stem_stride!r} is not allowed; allowed: 1, 2")
        strides = tuple(integer(s, f"search_space.stage_strides[{i}]", 1, 2, hint=" (fbnet: 1 or 2 per stage)")
                        for i, s in enumerate(stage_strides))
        if len(strides) != len(STAGES) or any(s not in (1, 2) for s in strides):
            raise ConfigError(
                f"fbnet: stage_strides = {list(strides)} must be {len(STAGES)} values in (1, 2), one per stage; "
                f"e.g. {list(CIFAR_STAGE_STRIDES)} (CIFAR, 32 px) or {list(IMAGENET_STAGE_STRIDES)} (ImageNet, 224 px)"
            )
        self.num_classes = num_classes
        self.input_size = input_size
        self.stem_stride = stem_stride
        self.stage_strides = strides
        self._genes = tuple(Gene(f"ops[{i}]", OPS) for i in range(NUM_LAYERS))

    # ------------------------------------------------------------------ genome
    @property
    def genes(self) -> tuple[Gene, ...]:
        return self._genes

    def to_genome(self, arch: FBNetArch) -> tuple[int, ...]:
        if not isinstance(arch, FBNetArch):
            raise InvalidArchitecture(
                f"fbnet: expected an FBNetArch (or parse a string with from_string), got {type(arch).__name__} {arch!r}"
            )
        if len(arch.ops) != NUM_LAYERS:
            raise InvalidArchitecture(f"fbnet: ops must have {NUM_LAYERS} entries (one per layer), got {len(arch.ops)}")
        return tuple(gene.index(op, self.name) for gene, op in zip(self._genes, arch.ops))

    def from_genome(self, genome: Sequence[int]) -> FBNetArch:
        return FBNetArch(tuple(OPS[int(i)] for i in genome))

    # ------------------------------------------------------------------ strings
    def to_string(self, arch: FBNetArch) -> str:
        self.validate(arch)
        return "-".join(arch.ops)

    def parse(self, text: str) -> FBNetArch:
        ops = text.split("-")
        if len(ops) != NUM_LAYERS or not all(ops):
            example = "-".join(OPS[i % len(OPS)] for i in range(NUM_LAYERS))
            found = f"{len(ops)} op(s)" if all(ops) else "an empty op"
            raise InvalidArchitecture(
                f"fbnet: expected {NUM_LAYERS} layer ops joined by '-' (ops: {choices_text(OPS)}), "
                f"got {found} in {text!r}; e.g. {example!r}"
            )
        return FBNetArch(tuple(ops))

    # ------------------------------------------------------------------ encodings
    def encode_graph(self, archs: Sequence[FBNetArch]) -> tuple[torch.Tensor, torch.Tensor]:
        """Chain graph input -> 22 layers -> output: adjacency ``(N, 24, 24)``, features ``(N, 24, 11)``.

        Features are one-hot over ``[input, output, *ops]``.
        """
        genomes = torch.from_numpy(self.genome_array(archs))
        n, v = genomes.shape[0], NUM_LAYERS + 2
        adjacency = torch.diag(torch.ones(v - 1), diagonal=1).expand(n, v, v).clone()
        node_type = torch.empty((n, v), dtype=torch.int64)
        node_type[:, 0], node_type[:, -1] = 0, 1
        node_type[:, 1:-1] = genomes + 2
        features = torch.nn.functional.one_hot(node_type, 2 + len(OPS)).float()
        return adjacency, features

    # ------------------------------------------------------------------ networks
    def build_model(self, arch: FBNetArch) -> nn.Module:
        self.validate(arch)
        return FBNetNetwork(arch.ops, self.num_classes, self.stem_stride, self.stage_strides)

    def input_shape(self, arch: FBNetArch | None = None, batch_size: int = 1) -> tuple[int, ...]:
        return (batch_size, 3, self.input_size, self.input_size)

    def layers(self, arch: FBNetArch) -> list[Layer]:
        """Stem, the 22 searchable layers, head conv + pool, classifier."""
        self.validate(arch)
        size = self.input_size
        new = conv_out(size, self.stem_stride)
        out = [Layer(f"stem-input:{hwc((3, size, size))}-output:{hwc((STEM_CHANNELS, new, new))}-stride:{self.stem_stride}",
                     (3, size, size), partial(ConvBNAct, 3, STEM_CHANNELS, 3, self.stem_stride, act="relu"))]
        size = new
        for op, (c_in, c_out, stride) in zip(arch.ops, _layer_plan(self.stage_strides)):
            new = conv_out(size, stride)
            out.append(Layer(f"{op}-input:{hwc((c_in, size, size))}-output:{hwc((c_out, new, new))}-stride:{stride}",
                             (c_in, size, size), partial(_layer, op, c_in, c_out, stride)))
            size = new
        c = STAGES[-1][0]
        out += [Layer(f"head-input:{hwc((c, size, size))}-output:{HEAD_CHANNELS}", (c, size, size), _head),
                Layer(f"classifier-input:{HEAD_CHANNELS}-output:{self.num_classes}", (HEAD_CHANNELS,),
                      partial(nn.Linear, HEAD_CHANNELS, self.num_classes))]
        return out

    def covering_archs(self) -> list[FBNetArch]:
        return [FBNetArch((op,) * NUM_LAYERS) for op in OPS]

    def describe(self) -> dict:
        return {**super().describe(), "num_classes": self.num_classes, "input_size": self.input_size,
                "stem_stride": self.stem_stride, "stage_strides": list(self.stage_strides)}
