"""Elastic layers: one set of weights that runs at any kernel size and channel count of the space.

Method (Cai et al., "Once-for-All", ICLR 2020, Sec. 3.2): a depthwise conv keeps one weight of the
largest kernel; a smaller kernel is the centre of the next larger *transformed* kernel, each step
through a learned ``k^2 x k^2`` matrix (identity at the start) shared by all channels of the layer,
so 7x7 -> 5x5 -> 3x3 are related but not forced to be plain crops. Elastic width keeps the first
``c`` channels; :meth:`ElasticMBConv.reorganize_channels` first sorts the expanded channels by the
L1 norm of their outgoing weights, so the most important ones survive shrinking.

Each elastic block mirrors :class:`hwnas.spaces.layers.MBConv` op for op (expand 1x1 -> BN -> act,
depthwise -> BN -> act, SE, project 1x1 -> BN) so :meth:`ElasticMBConv.export_to` can fill the
standalone block the search space builds and both compute the same function.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import ConfigError, choices_text
from hwnas.spaces.layers import MBConv, SqueezeExcite, activation, make_divisible


def expanded_channels(c_in: int, expand_ratio: float) -> int:
    """Width of the expanded (middle) tensor, by the rule :class:`MBConv` uses."""
    return make_divisible(round(c_in * expand_ratio))


def se_channels(channels: int, reduction: int = 4) -> int:
    """Hidden width of the squeeze-excite of ``channels`` channels, by the rule :class:`SqueezeExcite` uses."""
    return make_divisible(channels // reduction)


class ElasticBatchNorm(nn.Module):
    """Batch norm over the first ``C`` channels of its input (statistics and affine sliced alike).

    The ``nn.BatchNorm2d`` is wrapped rather than subclassed so Lightning's ``sync_batchnorm`` can
    swap it for a ``SyncBatchNorm`` without losing the slicing.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, bn = x.shape[1], self.bn
        if c == bn.num_features:
            return bn(x)
        factor = 0.0
        if bn.training and bn.track_running_stats:
            bn.num_batches_tracked.add_(1)
            factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        batch_stats = bn.training or bn.running_mean is None
        # slices of the 1-d buffers are views: batch statistics update the first c entries in place
        return F.batch_norm(x, None if bn.running_mean is None else bn.running_mean[:c],
                            None if bn.running_var is None else bn.running_var[:c],
                            bn.weight[:c], bn.bias[:c], batch_stats, factor, bn.eps)

    def export_to(self, target: nn.BatchNorm2d, channels: int) -> None:
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(target, name).copy_(getattr(self.bn, name)[:channels])
            target.num_batches_tracked.copy_(self.bn.num_batches_tracked)

    def permute(self, order: torch.Tensor) -> None:
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                t = getattr(self.bn, name)
                t.copy_(t[order])


class ElasticDepthwiseConv(nn.Module):
    """Depthwise conv of any kernel in ``kernel_sizes`` from one largest-kernel weight.

    ``transforms[f"{a}to{b}"]`` maps the flattened centre ``b x b`` of the ``a x a`` kernel to the
    ``b x b`` kernel (``out = M @ centre``); all start as the identity, i.e. as plain centre crops.
    """

    def __init__(self, channels: int, kernel_sizes: Sequence[int], stride: int):
        super().__init__()
        sizes = sorted({int(k) for k in kernel_sizes}, reverse=True)
        if not sizes or any(k < 1 or k % 2 == 0 for k in sizes):
            raise ConfigError(f"elastic kernel sizes {list(kernel_sizes)} must be odd and >= 1")
        self.kernel_sizes, self.stride, self.channels = tuple(sizes), int(stride), int(channels)
        self.weight = nn.Parameter(torch.empty(channels, 1, sizes[0], sizes[0]))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.transforms = nn.ParameterDict(
            {f"{big}to{small}": nn.Parameter(torch.eye(small * small)) for big, small in zip(sizes, sizes[1:])})

    def kernel(self, size: int, channels: int | None = None) -> torch.Tensor:
        """The ``(channels, 1, size, size)`` kernel: centre crops chained through the transforms."""
        if size not in self.kernel_sizes:
            raise ConfigError(f"kernel size {size} is not elastic here; allowed: {choices_text(self.kernel_sizes)}")
        w = self.weight[: channels or self.channels]
        for big, small in zip(self.kernel_sizes, self.kernel_sizes[1:]):
            if big == size:
                break
            lo = (big - small) // 2
            centre = w[:, :, lo:lo + small, lo:lo + small].reshape(w.shape[0], small * small)
            w = F.linear(centre, self.transforms[f"{big}to{small}"]).reshape(w.shape[0], 1, small, small)
        return w

    def forward(self, x: torch.Tensor, size: int) -> torch.Tensor:
        c, w = x.shape[1], self.kernel(size, x.shape[1])
        # On an input of H < size pixels, taps farther than H - 1 from the centre only ever see padding:
        # the centre (2H - 1)^2 of the kernel gives the same output, and PyTorch's CPU convs are far
        # faster without the dead taps (a 7x7 kernel on the 1x1 and 2x2 maps of small images).
        reach = 2 * min(x.shape[-2:]) - 1
        if reach < size:
            lo = (size - reach) // 2
            w, size = w[:, :, lo:lo + reach, lo:lo + reach], reach
        return F.conv2d(x, w, None, self.stride, size // 2, 1, c)


class ElasticSE(nn.Module):
    """Squeeze-excite whose hidden width follows its input width (``make_divisible(c // 4)``)."""

    def __init__(self, channels: int):
        super().__init__()
        hidden = se_channels(channels)
        self.reduce = nn.Conv2d(channels, hidden, 1, bias=True)
        self.expand = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        h = se_channels(c)
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.relu(F.conv2d(s, self.reduce.weight[:h, :c], self.reduce.bias[:h]))
        s = F.hardsigmoid(F.conv2d(s, self.expand.weight[:c, :h], self.expand.bias[:c]))
        return x * s

    def export_to(self, target: SqueezeExcite, channels: int) -> None:
        h = se_channels(channels)
        with torch.no_grad():
            target.reduce.weight.copy_(self.reduce.weight[:h, :channels])
            target.reduce.bias.copy_(self.reduce.bias[:h])
            target.expand.weight.copy_(self.expand.weight[:channels, :h])
            target.expand.bias.copy_(self.expand.bias[:channels])

    def permute_channels(self, order: torch.Tensor) -> None:
        """Follow a permutation of the block's expanded channels, then sort the hidden units."""
        with torch.no_grad():
            self.reduce.weight.copy_(self.reduce.weight[:, order])
            self.expand.weight.copy_(self.expand.weight[order])
            self.expand.bias.copy_(self.expand.bias[order])
            hidden = torch.argsort(self.expand.weight.abs().sum(dim=(0, 2, 3)), descending=True, stable=True)
            self.reduce.weight.copy_(self.reduce.weight[hidden])
            self.reduce.bias.copy_(self.reduce.bias[hidden])
            self.expand.weight.copy_(self.expand.weight[:, hidden])


class ElasticMBConv(nn.Module):
    """An inverted-residual block with elastic kernel (``active_kernel``) and expand ratio (``active_expand``)."""

    def __init__(self, c_in: int, c_out: int, kernel_sizes: Sequence[int], expand_ratios: Sequence[float],
                 stride: int, act: str = "relu", use_se: bool = False):
        super().__init__()
        if min(expand_ratios) <= 1:
            raise ConfigError(f"elastic expand ratios {list(expand_ratios)} must be > 1 (a ratio of 1 drops the "
                              f"expand conv, which an elastic block cannot)")
        self.c_in, self.c_out, self.stride = int(c_in), int(c_out), int(stride)
        self.kernel_sizes = tuple(sorted({int(k) for k in kernel_sizes}))
        self.expand_ratios = tuple(sorted(set(expand_ratios)))
        mid = expanded_channels(c_in, max(self.expand_ratios))
        self.expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
        self.expand_bn = ElasticBatchNorm(mid)
        self.depthwise = ElasticDepthwiseConv(mid, self.kernel_sizes, stride)
        self.depthwise_bn = ElasticBatchNorm(mid)
        self.se = ElasticSE(mid) if use_se else None
        self.project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(c_out)
        self.act = activation(act)
        self.act_name = act
        self.residual = stride == 1 and c_in == c_out
        self.active_kernel, self.active_expand = max(self.kernel_sizes), max(self.expand_ratios)

    def mid_channels(self, expand_ratio: float | None = None) -> int:
        return expanded_channels(self.c_in, self.active_expand if expand_ratio is None else expand_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.mid_channels()
        h = self.act(self.expand_bn(F.conv2d(x, self.expand_conv.weight[:mid])))
        h = self.act(self.depthwise_bn(self.depthwise(h, self.active_kernel)))
        if self.se is not None:
            h = self.se(h)
        h = self.project_bn(F.conv2d(h, self.project_conv.weight[:, :mid]))
        return x + h if self.residual else h

    def export_to(self, block: MBConv, kernel: int, expand_ratio: float) -> None:
        """Copy the sliced and transformed weights of ``(kernel, expand_ratio)`` into ``block``."""
        mid = self.mid_channels(expand_ratio)
        layers = list(block.body)
        expand, depthwise, project = layers[0], layers[1], layers[-1]
        if expand[0].out_channels != mid or depthwise[0].kernel_size != (kernel, kernel):
            raise ValueError(f"target block has {expand[0].out_channels} channels / kernel {depthwise[0].kernel_size}; "
                             f"expected {mid} / {kernel}")
        with torch.no_grad():
            expand[0].weight.copy_(self.expand_conv.weight[:mid])
            self.expand_bn.export_to(expand[1], mid)
            depthwise[0].weight.copy_(self.depthwise.kernel(kernel, mid))
            self.depthwise_bn.export_to(depthwise[1], mid)
            if self.se is not None:
                self.se.export_to(layers[2], mid)
            project[0].weight.copy_(self.project_conv.weight[:, :mid])
            project[1].load_state_dict(self.project_bn.state_dict())

    def reorganize_channels(self) -> None:
        """Sort the expanded channels by importance (L1 norm of their project weights), most important first.

        A permutation of the middle channels applied to every op that touches them: the full block
        computes the same function, and shrinking now keeps the most important channels.
        """
        with torch.no_grad():
            importance = self.project_conv.weight.abs().sum(dim=(0, 2, 3))
            order = torch.argsort(importance, descending=True, stable=True)
            self.project_conv.weight.copy_(self.project_conv.weight[:, order])
            self.expand_conv.weight.copy_(self.expand_conv.weight[order])
            self.expand_bn.permute(order)
            self.depthwise.weight.copy_(self.depthwise.weight[order])
            self.depthwise_bn.permute(order)
            if self.se is not None:
                self.se.permute_channels(order)
