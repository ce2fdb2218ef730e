"""Evaluating subnets: input resolution, batch-norm recalibration, top-1 accuracy.

A subnet's batch-norm statistics are not the supernet's: the supernet's running statistics mix
every subnet trained, so before a subnet is evaluated its statistics are recomputed from a few
training batches (OFA, Sec. 3.2; "reset running stats, then cumulative averaging"). The subnet
sees each image at its own resolution ``r``, resized from the data module's ``image_size``, in
training, calibration and evaluation alike.
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu`` or ``cuda`` for evaluating subnets outside Lightning."""
    if name not in DEVICES:
        raise ConfigError(f"device = {name!r} is not allowed; allowed: {', '.join(DEVICES)}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device = cuda, but no CUDA device is available")
    return torch.device(name)


#: Depthwise convs of small maps run several times faster channels-last on CPU (PyTorch's contiguous
#: depthwise backward is slow); networks and their inputs use it throughout training and evaluation.
MEMORY_FORMAT = torch.channels_last


def resize(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Images ``(N, C, H, W)`` at ``resolution x resolution`` (bilinear, anti-aliased when shrinking), channels-last."""
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        shrink = resolution < min(x.shape[-2:])
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=shrink)
    return x.contiguous(memory_format=MEMORY_FORMAT)


def batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[torch.Tensor], resolution: int,
                   device: torch.device | str | None = None) -> nn.Module:
    """Replace every BN's running statistics by their average over ``batches``; returns ``model`` in eval mode.

    Running stats are reset and ``momentum=None`` makes PyTorch keep a cumulative average, so each
    batch counts equally; the momenta are restored afterwards.
    """
    bns = batch_norms(model)
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    seen = 0
    try:
        for x in batches:
            x = x[0] if isinstance(x, (list, tuple)) else x
            if device is not None:
                x = x.to(device)
            model(resize(x, resolution))
            seen += 1
    finally:
        for bn, m in zip(bns, momenta):
            bn.momentum = m
    if seen == 0 and bns:
        raise ValueError("batch-norm recalibration needs at least one batch")
    return model.eval()


@torch.no_grad()
def top1_accuracy(model: nn.Module, loader: Iterable, resolution: int, device: torch.device | str | None = None) -> float:
    """Top-1 accuracy in percent of ``model`` (in eval mode) over ``(images, labels)`` batches."""
    model.eval()
    correct = total = 0
    for x, y in loader:
        if device is not None:
            x, y = x.to(device), y.to(device)
        pred = model(resize(x, resolution)).argmax(dim=1)
        correct += int((pred == y).sum())
        total += int(y.numel())
    if total == 0:
        raise ValueError("accuracy over an empty split")
    return 100.0 * correct / total


def evaluate_subnet(supernet, arch, calibration: Iterable[torch.Tensor], loader: Iterable,
                    device: torch.device | str | None = None) -> float:
    """Extract ``arch``, recalibrate its batch norms, return its top-1 accuracy (percent) on ``loader``."""
    model = supernet.extract_subnet(arch).to(device=device, memory_format=MEMORY_FORMAT)
    recalibrate_bn(model, calibration, arch.r, device)
    return top1_accuracy(model, loader, arch.r, device)
