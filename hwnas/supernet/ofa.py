"""The weight-sharing supernet of an OFA-family search space (OFA MobileNetV3, CompOFA).

Its architectures are exactly the search space's (``OFAArch``, validated by the space), and a
subnet is extracted by filling the network ``space.build_model(arch)`` builds: the network whose
latency is measured, whose layers are in the lookup tables and whose accuracy is reported are one
and the same. The fixed layers (stem, first block, head) are the space's own layer builders; the
20 elastic blocks are :class:`ElasticMBConv`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hwnas.errors import ConfigError, DataError
from hwnas.io import atomic_torch_save
from hwnas.spaces import get_space
from hwnas.spaces.ofa import MAX_DEPTH, N_STAGES, STAGE_ACTS, STAGE_SE, STAGE_STRIDES, OFAArch, OFAMobileNetV3
from hwnas.supernet.elastic import ElasticMBConv

FORMAT = "hwnas-supernet/1"  # = hwnas.predictors.module.SUPERNET_FORMAT


def space_spec(space: OFAMobileNetV3) -> dict[str, Any]:
    """The space as primitives (name + constructor arguments): what a checkpoint needs to rebuild it."""
    spec = {"name": space.name, "resolutions": list(space.resolutions), "width_mult": space.width_mult,
            "num_classes": space.num_classes, "dropout": float(space.dropout)}
    if type(space) is OFAMobileNetV3 or space.name == "ofa_mbv3":
        spec.update(ks_choices=list(space.ks_choices), e_choices=list(space.e_choices),
                    d_choices=list(space.d_choices))
    return spec


def space_from_spec(spec: dict[str, Any]) -> OFAMobileNetV3:
    kwargs = dict(spec)
    return get_space(kwargs.pop("name"), **kwargs)


def _extreme(space: OFAMobileNetV3, pick) -> OFAArch:
    return space.from_genome(tuple(pick(range(len(g.choices)), key=lambda i, g=g: g.choices[i]) for g in space.genes))


def largest_arch(space: OFAMobileNetV3) -> OFAArch:
    """Every gene at its largest choice (kernel 7, expand 6, depth 4, top resolution in OFA)."""
    return _extreme(space, max)


def smallest_arch(space: OFAMobileNetV3) -> OFAArch:
    return _extreme(space, min)


def median_arch(space: OFAMobileNetV3) -> OFAArch:
    """Every gene at the middle of its sorted choices (the lower middle for an even count)."""
    genome = []
    for g in space.genes:
        order = sorted(range(len(g.choices)), key=lambda i, g=g: g.choices[i])
        genome.append(order[(len(order) - 1) // 2])
    return space.from_genome(tuple(genome))


def init_weights(model: nn.Module) -> nn.Module:
    """He (fan-out) convs, unit BN, small classifier: the usual MobileNet initialisation (OFA's ``he_fout``);
    the supernet's, and that of a subnet trained from scratch (:mod:`hwnas.supernet.standalone`)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
    return model


class OFASupernet(nn.Module):
    """All subnets of an OFA-family space in one network; ``set_active_subnet`` picks which one runs."""

    def __init__(self, space: OFAMobileNetV3):
        super().__init__()
        if not isinstance(space, OFAMobileNetV3):
            raise ConfigError(f"the supernet needs an OFA-family search space (ofa_mbv3, compofa_fixed, "
                              f"compofa_elastic); got {getattr(space, 'name', type(space).__name__)}")
        self.space = space
        self.max_depth = max(space.d_choices)
        top = largest_arch(space)
        layers = space.layers(top)  # stem, first block, blocks..., final expand, pool, feature mix, classifier
        self.stem, self.first_block = layers[0].build(), layers[1].build()
        self.final_expand, self.pool, self.feature_mix, self.classifier = (layer.build() for layer in layers[-4:])
        w = space.widths()
        c, stages = w["first_block"], []
        for s in range(N_STAGES):
            blocks = []
            for b in range(self.max_depth):
                blocks.append(ElasticMBConv(c, w["stages"][s], space.ks_choices, space.e_choices,
                                            STAGE_STRIDES[s] if b == 0 else 1, act=STAGE_ACTS[s], use_se=STAGE_SE[s]))
                c = w["stages"][s]
            stages.append(nn.ModuleList(blocks))
        self.stages = nn.ModuleList(stages)
        self._init_weights()
        self.active_arch: OFAArch = top
        self.set_active_subnet(top)

    def _init_weights(self) -> None:
        init_weights(self)

    # ------------------------------------------------------------------ subnets
    def blocks(self):
        """``(arch block index, elastic block)`` for every elastic block."""
        for s, stage in enumerate(self.stages):
            for b, block in enumerate(stage):
                yield s * MAX_DEPTH + b, block

    def set_active_subnet(self, arch: OFAArch) -> OFAArch:
        """Make ``forward`` run ``arch`` (validated by the space)."""
        arch = self.space.validate(arch)
        for i, block in self.blocks():
            block.active_kernel, block.active_expand = arch.ks[i], arch.e[i]
        self.active_arch = arch
        return arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_block(self.stem(x))
        for s, stage in enumerate(self.stages):
            for block in stage[: self.active_arch.d[s]]:
                x = block(x)
        return self.classifier(self.feature_mix(self.pool(self.final_expand(x))))

    @torch.no_grad()
    def extract_subnet(self, arch: OFAArch) -> nn.Module:
        """``space.build_model(arch)`` filled with this supernet's weights for ``arch``.

        The result is standalone (no elastic ops, no shared storage) and computes what this
        supernet computes with ``arch`` active.
        """
        arch = self.space.validate(arch)
        model = self.space.build_model(arch)
        layers = list(model.children())
        layers[0].load_state_dict(self.stem.state_dict())
        layers[1].load_state_dict(self.first_block.state_dict())
        pos = 2
        for s, stage in enumerate(self.stages):
            for b in range(arch.d[s]):
                i = s * MAX_DEPTH + b
                stage[b].export_to(layers[pos], arch.ks[i], arch.e[i])
                pos += 1
        tail = layers[pos:]
        if len(tail) != 4:
            raise RuntimeError(f"{self.space.name}.build_model has {len(layers)} layers; the supernet expected {pos + 4}")
        for target, source in zip(tail, (self.final_expand, self.pool, self.feature_mix, self.classifier)):
            target.load_state_dict(source.state_dict())
        return model.train(self.training)

    def reorganize_channels(self) -> None:
        """Sort every block's expanded channels by importance (start of an elastic-expand phase)."""
        for _, block in self.blocks():
            block.reorganize_channels()


# ---------------------------------------------------------------------- portable checkpoint
def save_supernet(supernet: OFASupernet, path: str | os.PathLike, **meta) -> Path:
    """Atomically write ``{format, space, state_dict, meta}`` (primitives and tensors: ``weights_only`` loads it)."""
    payload = {"format": FORMAT, "space": space_spec(supernet.space), "meta": dict(meta),
               "state_dict": {k: v.detach().cpu() for k, v in supernet.state_dict().items()}}
    return atomic_torch_save(payload, path)


def load_supernet(path: str | os.PathLike, setting: str | None = None) -> tuple[OFASupernet, dict]:
    """The supernet of a :func:`save_supernet` file and its ``meta`` (data name, image size, schedule...);
    a predictor (latency, accuracy, OFA's) or any other file is refused in one line naming what it is
    (``setting``: the option that named the file)."""
    from hwnas.predictors.module import read_checkpoint

    payload = read_checkpoint(path, "supernet", setting)
    supernet = OFASupernet(space_from_spec(payload["space"]))
    try:
        supernet.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise DataError(f"supernet checkpoint '{path}' does not match its own space ({str(exc).splitlines()[0]})") from None
    return supernet.eval(), payload.get("meta", {})
