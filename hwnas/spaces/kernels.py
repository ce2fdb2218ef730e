"""A layer as the fused kernels a runtime executes (nn-Meter's kernel-level view).

nn-Meter (Zhang et al., MobiSys'21) predicts a network's latency as the sum of its *kernels*: the
units an inference runtime actually runs after operator fusion, such as conv+bn+relu or a whole
squeeze-and-excite, each measured per configuration. A block-level lookup table (OFA's) measures
whole MBConv blocks instead, so it can only price blocks it has seen; a kernel table prices any
network built from known kernels, whichever space or block it comes from.

:func:`kernels_of` splits one :class:`~hwnas.spaces.base.Layer` into such kernels by running its
module once on the ``meta`` device (no memory, no arithmetic) with forward hooks on its leaves:

- fusion rule: a convolution or linear layer, the batch norm right after it and the activation
  right after that (consecutive children of one ``nn.Sequential``, i.e. each feeding the next) are
  one kernel, keyed like ``conv-bn-relu-input:56x56x24-output:56x56x72-kernel:1-stride:1-groups:1``
  (``dwconv`` for depthwise, ``gconv`` for grouped convolutions); a batch norm or an activation
  that follows no convolution is a kernel of its own (``bn-relu``, ``relu``);
- composite kernels (:data:`COMPOSITES`: squeeze-and-excite) are one kernel each;
- a module whose forward ends with a residual add says so with ``adds_residual`` (MBConv, the
  NB201 reduction block): the add is an elementwise kernel (``add-input:...``);
- other leaves are kernels keyed by their class and settings (pooling, channel shuffle, NB201's
  ``none`` op); views and no-ops (identity, flatten, dropout) are not kernels.

Each kernel is again a ``Layer`` (key, input shape, builder), so ``job=build_lut
build_lut.granularity=kernel`` profiles them and ``estimator=kernel_lut`` sums them with the lookup
table estimator's code. Tensor adds and multiplies written inside a module's ``forward`` other
than the residual (an NB201 cell's node sums) are not kernels: they are not modules to hook.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial

import torch
from torch import nn

from hwnas.spaces.base import Layer, hwc
from hwnas.spaces.layers import SqueezeExcite

#: Modules timed as one kernel however many children they have.
COMPOSITES: tuple[type[nn.Module], ...] = (SqueezeExcite,)
#: Leaves that move no data a runtime would time (views, inference no-ops).
NO_OPS: tuple[type[nn.Module], ...] = (nn.Identity, nn.Flatten, nn.Dropout)
ACTIVATIONS: dict[type[nn.Module], str] = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Hardswish: "hswish",
                                           nn.Hardsigmoid: "hsigmoid", nn.SiLU: "swish", nn.Sigmoid: "sigmoid"}
NORMS: tuple[type[nn.Module], ...] = (nn.BatchNorm2d, nn.BatchNorm1d)
LINEAR: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)


class ResidualAdd(nn.Module):
    """The elementwise add that closes a residual block, timed on its own: ``x + y`` of one shape."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.register_buffer("other", torch.randn(1, *shape))

    def forward(self, x):
        return x + self.other


@dataclass
class _Record:
    names: list[str]                  # qualified module names, in execution order
    modules: list[nn.Module]
    parent: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    add: bool = False                 # a residual add (no module of its own)
    tags: list[str] = field(default_factory=list)


def _shape_text(shape: tuple[int, ...]) -> str:
    return hwc(shape) if len(shape) == 3 else "x".join(str(s) for s in shape)


def _conv_tag(conv: nn.Conv2d) -> str:
    if conv.groups == 1:
        return "conv"
    return "dwconv" if conv.groups == conv.in_channels == conv.out_channels else "gconv"


def _settings(module: nn.Module) -> str:
    """``extra_repr`` as key text: ``kernel_size=3, stride=1`` -> ``kernel_size:3-stride:1``."""
    text = re.sub(r"\s+", "", module.extra_repr())
    text = re.sub(r"\(([^()]*)\)", lambda m: m.group(1).replace(",", "x"), text)
    return text.replace("=", ":").replace(",", "-")


def _key(record: _Record) -> str:
    shapes = f"input:{_shape_text(record.input_shape)}-output:{_shape_text(record.output_shape)}"
    if record.add:
        return f"add-{shapes}"
    first = record.modules[0]
    chain = "-".join(record.tags)
    if isinstance(first, nn.Conv2d):
        (k, _), (s, _), (p, _) = first.kernel_size, first.stride, first.padding
        bias = "-bias:1" if first.bias is not None else ""
        return f"{chain}-{shapes}-kernel:{k}-stride:{s}-padding:{p}-groups:{first.groups}{bias}"
    if isinstance(first, nn.Linear):
        return f"{chain}-{shapes}" + ("-bias:1" if first.bias is not None else "")
    if isinstance(first, SqueezeExcite):
        return f"{chain}-{shapes}-reduce:{first.reduce.out_channels}"
    plain = len(record.modules) == 1 and not isinstance(first, (*NORMS, *ACTIVATIONS))
    settings = _settings(first) if plain else ""  # pooling size, shuffle groups; not inplace=, eps=...
    return f"{chain}-{shapes}" + (f"-{settings}" if settings else "")


def _tag(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        return _conv_tag(module)
    if isinstance(module, nn.Linear):
        return "fc"
    if isinstance(module, NORMS):
        return "bn"
    if isinstance(module, COMPOSITES):
        return "se" if isinstance(module, SqueezeExcite) else type(module).__name__.lower()
    for cls, tag in ACTIVATIONS.items():
        if isinstance(module, cls):
            return tag
    return type(module).__name__.lower().strip("_")


def _joins(group: _Record, record: _Record) -> bool:
    """Fusion rule: conv/linear -> bn -> activation, each the next child of the same Sequential."""
    if group.add or record.add or record.parent != group.parent or len(record.modules) != 1:
        return False
    module, last = record.modules[0], group.modules[-1]
    if not isinstance(group.modules[0], (*LINEAR, *NORMS)) or _index(record.names[0]) != _index(group.names[-1]) + 1:
        return False
    if isinstance(module, NORMS):
        return isinstance(last, LINEAR)
    return _is_activation(module) and not any(_is_activation(m) for m in group.modules)


def _is_activation(module: nn.Module) -> bool:
    return isinstance(module, tuple(ACTIVATIONS))


def _index(name: str) -> int:
    tail = name.rsplit(".", 1)[-1]
    return int(tail) if tail.isdigit() else -2


def _trace(layer: Layer) -> list[_Record]:
    with torch.device("meta"):
        module = layer.build().eval()
    composite_names = [n for n, m in module.named_modules() if isinstance(m, COMPOSITES)]
    records: list[_Record] = []
    handles = []

    def hook(name, mod, inputs, output):
        shape_in = tuple(inputs[0].shape[1:])
        shape_out = tuple(output.shape[1:])
        if getattr(mod, "adds_residual", False):
            records.append(_Record([name], [mod], name.rsplit(".", 1)[0] if "." in name else "", shape_out,
                                   shape_out, add=True))
        if isinstance(mod, COMPOSITES) or not any(True for _ in mod.children()):
            if not isinstance(mod, NO_OPS):
                parent = name.rsplit(".", 1)[0] if "." in name else ""
                records.append(_Record([name], [mod], parent, shape_in, shape_out, tags=[_tag(mod)]))

    for name, mod in module.named_modules():
        if any(name.startswith(c + ".") for c in composite_names):
            continue  # inside a composite kernel
        handles.append(mod.register_forward_hook(partial(hook, name)))
    try:
        with torch.no_grad():
            module(torch.empty((1, *layer.input_shape), device="meta"))
    finally:
        for h in handles:
            h.remove()
    return records


def _group(records: list[_Record]) -> list[_Record]:
    kernels: list[_Record] = []
    for record in records:
        if kernels and _joins(kernels[-1], record):
            kernels[-1].names += record.names
            kernels[-1].modules += record.modules
            kernels[-1].tags += record.tags
            kernels[-1].output_shape = record.output_shape
        else:
            kernels.append(record)
    return kernels


def _kernel_module(layer: Layer, names: tuple[str, ...]) -> nn.Module:
    """The kernel's modules taken out of a freshly built ``layer`` (same settings, fresh weights)."""
    module = layer.build()
    return nn.Sequential(*(module.get_submodule(n) if n else module for n in names))


_CACHE: dict[tuple[type, str, tuple[int, ...]], tuple[Layer, ...]] = {}


def kernels_of(layer: Layer, owner: type = object) -> tuple[Layer, ...]:
    """The fused kernels of ``layer`` in execution order, as lookup-table layers (cached per layer key)."""
    cache_key = (owner, layer.key, layer.input_shape)
    if cache_key not in _CACHE:
        out = []
        for record in _group(_trace(layer)):
            factory = (partial(ResidualAdd, record.output_shape) if record.add
                       else partial(_kernel_module, layer, tuple(record.names)))
            out.append(Layer(_key(record), record.input_shape, factory))
        _CACHE[cache_key] = tuple(out)
    return _CACHE[cache_key]


#: What a lookup table's entries are: whole layers/blocks (OFA) or fused kernels (nn-Meter).
GRANULARITIES = ("layer", "kernel")


def check_granularity(value: str, option: str) -> str:
    if value not in GRANULARITIES:
        from hwnas.errors import ConfigError, choices_text

        raise ConfigError(f"{option} = {value!r} is not allowed; allowed: {choices_text(GRANULARITIES)}")
    return value


def table_units(space, arch, granularity: str) -> list[Layer]:
    """The entries a lookup table of ``granularity`` sums for ``arch``."""
    return space.kernels(arch) if granularity == "kernel" else space.layers(arch)


def table_universe(space, granularity: str) -> list[Layer]:
    """Every entry a lookup table of ``granularity`` needs for ``space``."""
    return space.kernel_universe() if granularity == "kernel" else space.layer_universe()
