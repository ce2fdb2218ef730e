"""Building blocks shared by the networks of several spaces (MobileNet-style convs, SE, MBConv)."""
from __future__ import annotations

from torch import nn


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor``, never dropping more than 10 %.

    The MobileNet channel rule, used by OFA to derive the stage widths of a width multiplier.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def activation(name: str | None) -> nn.Module:
    if name in (None, "none"):
        return nn.Identity()
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "h_swish":
        return nn.Hardswish(inplace=True)
    raise ValueError(f"unknown activation {name!r}; allowed: relu, h_swish, none")


class ConvBNAct(nn.Sequential):
    """conv -> (BN) -> activation, 'same' padding."""

    def __init__(self, c_in, c_out, kernel=1, stride=1, groups=1, act="relu", bn=True, bias=False):
        layers = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=bias)]
        if bn:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(activation(act))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation with a hard-sigmoid gate (MobileNetV3)."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        mid = make_divisible(channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, mid, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(mid, channels, 1, bias=True)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x):
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def extra_repr(self) -> str:
        return f"groups={self.groups}"

    def forward(self, x):
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand -> kxk depthwise -> (SE) -> 1x1 project, identity skip when shapes allow.

    ``groups`` > 1 makes both pointwise convs grouped and shuffles channels between them (FBNet's
    ``_g2`` ops). ``always_expand`` keeps the expand conv at ratio 1 (FBNet); OFA drops it.
    """

    def __init__(self, c_in, c_out, kernel, stride, expand_ratio, act="relu", use_se=False,
                 groups=1, always_expand=False, mid_channels=None):
        super().__init__()
        mid = mid_channels if mid_channels is not None else make_divisible(round(c_in * expand_ratio))
        if groups == 1 and mid_channels is None and expand_ratio == 1:
            mid = c_in
        layers: list[nn.Module] = []
        if expand_ratio != 1 or always_expand:
            layers.append(ConvBNAct(c_in, mid, 1, groups=groups, act=act))
            if groups > 1:
                layers.append(ChannelShuffle(groups))
        else:
            mid = c_in
        layers.append(ConvBNAct(mid, mid, kernel, stride, groups=mid, act=act))
        if use_se:
            layers.append(SqueezeExcite(mid))
        layers.append(ConvBNAct(mid, c_out, 1, groups=groups, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    @property
    def adds_residual(self) -> bool:  # the kernel decomposition's cue (spaces/kernels.py)
        return self.residual

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y
