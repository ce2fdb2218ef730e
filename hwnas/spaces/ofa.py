"""Once-for-All MobileNetV3 space and the CompOFA spaces derived from it.

Facts used (Cai et al., "Once-for-All", ICLR 2020; Sahni et al., "CompOFA", ICLR 2021):
5 elastic stages of up to 4 blocks after a fixed first block; per block kernel {3,5,7} and
expand ratio {3,4,6}; per stage depth {2,3,4}; input resolution elastic (OFA trains 128..224
step 4). Stage widths 24/40/80/112/160 (x width multiplier, rounded by the MobileNet rule),
strides 2/2/2/1/2, ReLU in the first two stages and h-swish after, SE in stages 2, 4 and 5.
CompOFA couples depth and expand per stage (d=2 -> e=3, d=3 -> e=4, d=4 -> e=6) and, in its
fixed-kernel variant, uses MobileNetV3-Large's kernel of each stage (3, 5, 3, 3, 5).
"""
from __future__ import annotations

import itertools
import json
from functools import partial
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from hwnas.errors import ConfigError, DataError, InvalidArchitecture
from hwnas.options import integer, number
from hwnas.spaces.base import Gene, Layer, SearchSpace, conv_out
from hwnas.spaces.layers import ConvBNAct, MBConv, make_divisible
from hwnas.spaces.registry import register_space

N_STAGES = 4 + 1  # elastic stages
MAX_DEPTH = 4
N_BLOCKS = N_STAGES * MAX_DEPTH
BASE_WIDTHS = (16, 16, 24, 40, 80, 112, 160)  # stem, first block, 5 stages
BASE_FINAL_EXPAND, BASE_LAST_CHANNEL = 960, 1280
STAGE_STRIDES = (2, 2, 2, 1, 2)
STAGE_ACTS = ("relu", "relu", "h_swish", "h_swish", "h_swish")
STAGE_SE = (False, True, False, True, True)
MBV3_LARGE_KERNELS = (3, 5, 3, 3, 5)
RESOLUTION_BINS = 8  # OFA's accuracy-predictor encoding: bin = (r - 112) // 16
#: Small-image spaces (CIFAR, digits) use resolutions below OFA's bins; their encoding one-hots the space's own list.
SMALL_RESOLUTIONS = (16, 111)


@dataclass(frozen=True)
class OFAArch:
    """An OFA subnet: kernel and expand of each of the 20 blocks, depth of each stage, resolution.

    Entries of blocks beyond a stage's depth are carried (so strings round-trip) but unused.
    """

    ks: tuple[int, ...]
    e: tuple[int, ...]
    d: tuple[int, ...]
    r: int

    def active(self) -> list[int]:
        """Indices of the blocks this subnet runs."""
        return [s * MAX_DEPTH + b for s in range(N_STAGES) for b in range(self.d[s])]


def _int_list(value, field: str, length: int, space: str) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != length:
        got = f"{len(value)} values" if isinstance(value, (list, tuple)) else repr(value)
        raise InvalidArchitecture(f"{space}: field {field!r} must be a list of {length} integers, got {got}")
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise InvalidArchitecture(f"{space}: {field}[{i}] = {v!r} is not an integer")
    return tuple(int(v) for v in value)


@register_space("ofa_mbv3")
class OFAMobileNetV3(SearchSpace):
    """The OFA MobileNetV3 space; ``width_mult`` 1.0 (OFA w1.0) or 1.2 (the Note10 LUT network)."""

    encoding_family = "ofa_mbv3"  # CompOFA subnets are OFA subnets: same 128-d encoding

    def __init__(self, resolutions: Sequence[int] = tuple(range(128, 225, 4)), width_mult: float = 1.0,
                 num_classes: int = 1000, ks_choices: Sequence[int] = (3, 5, 7),
                 e_choices: Sequence[int] = (3, 4, 6), d_choices: Sequence[int] = (2, 3, 4),
                 dropout: float = 0.1):
        # checked, not int(): a resolution of 160.5 is not 160
        self.resolutions = tuple(integer(r, f"search_space.resolutions[{i}]", hint=f" ({self.name}: input sizes in px)")
                                 for i, r in enumerate(resolutions))
        if not self.resolutions:
            raise ConfigError(f"{self.name}: resolutions must not be empty")
        bad = [r for r in self.resolutions if not SMALL_RESOLUTIONS[0] <= r < 112 + 16 * RESOLUTION_BINS]
        if bad:
            raise ConfigError(f"{self.name}: resolution {bad[0]} is outside the encodable range; allowed: 112..239 "
                              f"(ImageNet scale) or {SMALL_RESOLUTIONS[0]}..{SMALL_RESOLUTIONS[1]} (small images)")
        small = [r <= SMALL_RESOLUTIONS[1] for r in self.resolutions]
        if any(small) and not all(small):
            raise ConfigError(f"{self.name}: resolutions {list(self.resolutions)} mix ImageNet-scale (112..239) and "
                              f"small-image ({SMALL_RESOLUTIONS[0]}..{SMALL_RESOLUTIONS[1]}) sizes; use one kind")
        #: OFA's 8 resolution bins, or one bin per resolution of a small-image space.
        self.resolution_bins = tuple(sorted(self.resolutions)) if all(small) else None
        self.width_mult = number(width_mult, "search_space.width_mult", 0, exclusive_minimum=True,
                                 hint=f" ({self.name}: OFA ships 1.0 and 1.2)")
        self.num_classes = integer(num_classes, "search_space.num_classes", 1, hint=f" ({self.name})")
        self.ks_choices, self.e_choices, self.d_choices = (
            tuple(integer(v, f"search_space.{field}[{i}]", 1, hint=f" ({self.name})") for i, v in enumerate(values))
            for field, values in (("ks_choices", ks_choices), ("e_choices", e_choices), ("d_choices", d_choices)))
        if max(self.d_choices) > MAX_DEPTH or min(self.d_choices) < 1:
            raise ConfigError(f"{self.name}: depth choices {self.d_choices} must lie in 1..{MAX_DEPTH}")
        self.dropout = number(dropout, "search_space.dropout", 0, 1, hint=f" ({self.name}: classifier dropout, below 1)")
        if self.dropout == 1:
            raise ConfigError(f"search_space.dropout = {dropout!r} is out of range; it must be >= 0 and < 1 "
                              f"({self.name}: a dropout of 1 zeroes every feature)")
        self._field_genes = self._ofa_genes()
        self._genes = self._make_genes()

    # ------------------------------------------------------------------ genome
    def _ofa_genes(self) -> tuple[Gene, ...]:
        """One gene per field value (ks, e, d, r): what any OFA-family architecture must satisfy."""
        return (
            tuple(Gene(f"ks[{i}]", self.ks_choices) for i in range(N_BLOCKS))
            + tuple(Gene(f"e[{i}]", self.e_choices) for i in range(N_BLOCKS))
            + tuple(Gene(f"d[{s}]", self.d_choices) for s in range(N_STAGES))
            + (Gene("r", self.resolutions),)
        )

    def _make_genes(self) -> tuple[Gene, ...]:
        return self._field_genes

    @property
    def genes(self) -> tuple[Gene, ...]:
        return self._genes

    def _check_fields(self, arch) -> OFAArch:
        if not isinstance(arch, OFAArch):
            raise InvalidArchitecture(f"{self.name}: expected an OFAArch, got {type(arch).__name__}")
        return arch

    def _field_genome(self, arch: OFAArch) -> tuple[int, ...]:
        arch = self._check_fields(arch)
        values = (*arch.ks, *arch.e, *arch.d, arch.r)
        if len(values) != len(self._field_genes):
            raise InvalidArchitecture(
                f"{self.name}: expected {N_BLOCKS} ks, {N_BLOCKS} e, {N_STAGES} d; got "
                f"{len(arch.ks)} ks, {len(arch.e)} e, {len(arch.d)} d"
            )
        return tuple(g.index(v, self.name) for g, v in zip(self._field_genes, values))

    def to_genome(self, arch: OFAArch) -> tuple[int, ...]:
        return self._field_genome(arch)

    def from_genome(self, genome: Sequence[int]) -> OFAArch:
        vals = [g.choices[i] for g, i in zip(self._genes, genome)]
        return OFAArch(tuple(vals[:N_BLOCKS]), tuple(vals[N_BLOCKS:2 * N_BLOCKS]),
                       tuple(vals[2 * N_BLOCKS:2 * N_BLOCKS + N_STAGES]), vals[-1])

    def size(self) -> int:
        per_block = len(self.ks_choices) * len(self.e_choices)
        per_stage = sum(per_block ** d for d in self.d_choices)
        return per_stage ** N_STAGES * len(self.resolutions)

    # ------------------------------------------------------------------ strings
    def to_string(self, arch: OFAArch) -> str:
        return json.dumps({"ks": list(arch.ks), "e": list(arch.e), "d": list(arch.d), "r": arch.r},
                          separators=(",", ":"))

    def parse(self, text: str) -> OFAArch:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArchitecture(
                f"{self.name}: {text[:60]!r} is not JSON ({exc.msg}); expected "
                '{"ks":[20 ints],"e":[20 ints],"d":[5 ints],"r":int}'
            ) from None
        if not isinstance(obj, dict):
            raise InvalidArchitecture(f"{self.name}: expected a JSON object with keys ks, e, d, r; got {text[:60]!r}")
        missing = [k for k in ("ks", "e", "d", "r") if k not in obj]
        extra = [k for k in obj if k not in ("ks", "e", "d", "r")]
        if missing or extra:
            raise InvalidArchitecture(
                f"{self.name}: architecture keys must be ks, e, d, r; "
                + (f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(extra)}")
            )
        r = obj["r"]
        if isinstance(r, bool) or not isinstance(r, int):
            raise InvalidArchitecture(f"{self.name}: r = {r!r} is not an integer resolution")
        return OFAArch(_int_list(obj["ks"], "ks", N_BLOCKS, self.name), _int_list(obj["e"], "e", N_BLOCKS, self.name),
                       _int_list(obj["d"], "d", N_STAGES, self.name), r)

    def make(self, ks: Sequence[int], e: Sequence[int], d: Sequence[int], r: int) -> OFAArch:
        """Validated architecture from plain lists."""
        return self.validate(OFAArch(_int_list(list(ks), "ks", N_BLOCKS, self.name), _int_list(list(e), "e", N_BLOCKS, self.name),
                                     _int_list(list(d), "d", N_STAGES, self.name), int(r)))

    # ------------------------------------------------------------------ encoding
    def arrays(self, archs: Sequence[OFAArch]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``ks (N,20), e (N,20), d (N,5), r (N,)`` int arrays, validated in one vectorized pass."""
        width = 2 * N_BLOCKS + N_STAGES + 1
        try:
            flat = np.fromiter(itertools.chain.from_iterable((*a.ks, *a.e, *a.d, a.r) for a in archs),
                               dtype=np.int64, count=width * len(archs)).reshape(len(archs), width)
            ks, e = flat[:, :N_BLOCKS], flat[:, N_BLOCKS:2 * N_BLOCKS]
            d, r = flat[:, 2 * N_BLOCKS:2 * N_BLOCKS + N_STAGES], flat[:, -1]
            ok = (np.isin(ks, self.ks_choices).all() and np.isin(e, self.e_choices).all()
                  and np.isin(d, self.d_choices).all() and np.isin(r, self.resolutions).all()
                  and self._coupling_ok(ks, e, d))
        except (AttributeError, ValueError, TypeError):
            ok = False
        if not ok:  # slow path, only to find and name the first bad value
            for a in archs:
                self.validate(a)
        return ks, e, d, r

    def _coupling_ok(self, ks: np.ndarray, e: np.ndarray, d: np.ndarray) -> bool:
        """Constraints between fields beyond per-field choices (none in OFA)."""
        return True

    def validate_batch(self, archs: list[OFAArch]) -> list[OFAArch]:
        self.arrays(archs)
        return archs

    @staticmethod
    def active_mask(d: np.ndarray) -> np.ndarray:
        """``(N, 20)`` bool from depths ``(N, 5)``: block ``b`` of stage ``s`` runs iff ``b < d[s]``."""
        return (np.arange(MAX_DEPTH)[None, None, :] < d[:, :, None]).reshape(len(d), N_BLOCKS)

    def encode(self, archs: Sequence[OFAArch]) -> torch.Tensor:
        """OFA's 128-d encoding: [20x3 kernel one-hot | 20x3 expand one-hot | 8 resolution bins].

        Blocks beyond a stage's depth are all-zero; the resolution bin is ``(r - 112) // 16``. A
        small-image space (resolutions below 112) one-hots its own sorted resolutions instead.
        """
        ks, e, d, r = self.arrays(archs)
        mask = self.active_mask(d)[..., None]
        k_hot = (ks[..., None] == np.asarray(self.ks_choices)) & mask
        e_hot = (e[..., None] == np.asarray(self.e_choices)) & mask
        if self.resolution_bins is None:
            r_hot = ((r[:, None] - 112) // 16) == np.arange(RESOLUTION_BINS)
        else:
            r_hot = r[:, None] == np.asarray(self.resolution_bins)
        n = len(ks)
        out = np.concatenate([k_hot.reshape(n, N_BLOCKS * len(self.ks_choices)),
                              e_hot.reshape(n, N_BLOCKS * len(self.e_choices)), r_hot], axis=1).astype(np.float32)
        return torch.from_numpy(out)

    def encode_layers(self, archs: Sequence[OFAArch], resolutions: Sequence[int] = ()) -> torch.Tensor:
        """One indicator per (block, kernel, expansion, input resolution) of each active block, then one per
        resolution (the stem, the head and the classifier): ``20 x |ks| x |e| x R + R`` columns for the R
        ``resolutions`` (default: the space's). A block's cost depends on its kernel and expansion together
        and on the size of its input, with kernels a runtime picks per shape, so a model additive in these
        columns can fit a lookup-table sum exactly; it has no column for a resolution outside the list."""
        ks, e, d, r = self.arrays(archs)
        res = np.asarray(sorted(resolutions or self.resolutions))
        at = np.searchsorted(res, r).clip(0, len(res) - 1)
        outside = res[at] != r
        if outside.any():
            raise DataError(f"{self.name}: resolution {int(r[outside][0])} has no column in this layer encoding "
                            f"(resolutions {', '.join(str(int(v)) for v in res)})")
        nk, ne, nr = len(self.ks_choices), len(self.e_choices), len(res)
        k_at = np.argmax(ks[..., None] == np.asarray(self.ks_choices), axis=-1)
        e_at = np.argmax(e[..., None] == np.asarray(self.e_choices), axis=-1)
        column = ((np.arange(N_BLOCKS)[None, :] * nk + k_at) * ne + e_at) * nr + at[:, None]
        mask = self.active_mask(d)
        out = np.zeros((len(ks), N_BLOCKS * nk * ne * nr + nr), dtype=np.float32)
        rows = np.broadcast_to(np.arange(len(ks))[:, None], column.shape)
        out[rows[mask], column[mask]] = 1.0
        out[np.arange(len(ks)), N_BLOCKS * nk * ne * nr + at] = 1.0
        return torch.from_numpy(out)

    @property
    def encoding_dim(self) -> int:
        bins = RESOLUTION_BINS if self.resolution_bins is None else len(self.resolution_bins)
        return N_BLOCKS * (len(self.ks_choices) + len(self.e_choices)) + bins

    # ------------------------------------------------------------------ network
    def widths(self) -> dict[str, object]:
        """Channel widths for this width multiplier (OFA w1.2: stem 24, stages 32/48/96/136/192)."""
        w = [make_divisible(b * self.width_mult) for b in BASE_WIDTHS]
        return {"stem": w[0], "first_block": w[1], "stages": tuple(w[2:]),
                "final_expand": make_divisible(BASE_FINAL_EXPAND * self.width_mult),
                "last_channel": make_divisible(BASE_LAST_CHANNEL * self.width_mult)}

    def build_model(self, arch: OFAArch) -> nn.Module:
        return nn.Sequential(*(layer.build() for layer in self.layers(arch)))

    def layers(self, arch: OFAArch) -> list[Layer]:
        """The subnet as OFA's lookup tables see it (keys as in OFA's Note10 tables for width 1.2)."""
        return self._layers(self.validate(arch))

    def _layers(self, arch: OFAArch) -> list[Layer]:
        w, r = self.widths(), arch.r
        size = conv_out(r, 2)
        out = [Layer(f"Conv-input:{r}x{r}x3-output:{size}x{size}x{w['stem']}", (3, r, r),
                     partial(ConvBNAct, 3, w["stem"], 3, 2, act="h_swish"))]
        blocks = [(w["stem"], w["first_block"], 3, 1, 1, "relu", False)]
        c = w["first_block"]
        for s in range(N_STAGES):
            for b in range(arch.d[s]):
                i = s * MAX_DEPTH + b
                blocks.append((c, w["stages"][s], arch.ks[i], STAGE_STRIDES[s] if b == 0 else 1, arch.e[i],
                               STAGE_ACTS[s], STAGE_SE[s]))
                c = w["stages"][s]
        for c_in, c_out, kernel, stride, expand, act, se in blocks:
            mid = c_in if expand == 1 else make_divisible(round(c_in * expand))
            new = conv_out(size, stride)
            key = (f"expanded_conv-input:{size}x{size}x{c_in}-output:{new}x{new}x{c_out}-expand:{mid}-kernel:{kernel}"
                   f"-stride:{stride}-idskip:{int(stride == 1 and c_in == c_out)}-se:{int(se)}-hs:{int(act == 'h_swish')}")
            out.append(Layer(key, (c_in, size, size), partial(MBConv, c_in, c_out, kernel, stride, expand, act=act, use_se=se)))
            size = new
        fe, last = w["final_expand"], w["last_channel"]
        out += [
            Layer(f"Conv_1-input:{size}x{size}x{c}-output:{size}x{size}x{fe}", (c, size, size),
                  partial(ConvBNAct, c, fe, 1, act="h_swish")),
            Layer(f"AvgPool2D-input:{size}x{size}x{fe}-output:1x1x{fe}", (fe, size, size), partial(nn.AdaptiveAvgPool2d, 1)),
            Layer(f"Conv_2-input:1x1x{fe}-output:1x1x{last}", (fe, 1, 1),
                  partial(ConvBNAct, fe, last, 1, act="h_swish", bn=False)),
            Layer(f"Logits-input:1x1x{last}-output:{self.num_classes}", (last, 1, 1),
                  partial(_classifier, last, self.num_classes, self.dropout)),
        ]
        return out

    def layer_slots(self) -> dict[int, tuple[list[Layer], list[list[list[Layer]]], list[Layer]]]:
        """The layer decomposition as slots (``hwnas/spaces/slots.py``): per resolution, the layers
        before the blocks (stem, first block), the layer at block position ``i`` for each
        ``(kernel index, expand index)``, and the layers after the blocks. A block's layer depends
        only on its position, its own kernel and expansion and the resolution (its input size and
        width are fixed by the position), so ``layers(arch)`` is these slots with the blocks beyond
        each stage's depth left out (tested: sums over both are bit-equal)."""
        cached = self.__dict__.get("_layer_slots")
        if cached is None:
            d = (max(self.d_choices),) * N_STAGES
            cached = {}
            for r in self.resolutions:
                grid = [[[None] * len(self.e_choices) for _ in self.ks_choices] for _ in range(N_BLOCKS)]
                for ki, k in enumerate(self.ks_choices):
                    for ei, e in enumerate(self.e_choices):
                        uniform = OFAArch((k,) * N_BLOCKS, (e,) * N_BLOCKS, d, r)  # (not validated: CompOFA couples e)
                        layers = self._layers(uniform)
                        for i in range(N_BLOCKS):
                            grid[i][ki][ei] = layers[2 + i]
                cached[r] = (layers[:2], grid, layers[2 + N_BLOCKS:])
            self.__dict__["_layer_slots"] = cached
        return cached

    def covering_archs(self) -> list[OFAArch]:
        """Per resolution, one network of uniform (kernel, expand) per combination at full depth."""
        d = (max(self.d_choices),) * N_STAGES
        return [self.validate(OFAArch((k,) * N_BLOCKS, (e,) * N_BLOCKS, d, r))
                for r in self.resolutions for k in self.ks_choices for e in self.e_choices]

    def input_shape(self, arch: OFAArch, batch_size: int = 1) -> tuple[int, ...]:
        return (batch_size, 3, arch.r, arch.r)


def _coupled_e(d: np.ndarray) -> np.ndarray:
    lut = np.zeros(MAX_DEPTH + 1, dtype=np.int64)
    for depth, expand in CompOFA.COUPLING.items():
        lut[depth] = expand
    return lut[d]


def _classifier(features: int, num_classes: int, dropout: float) -> nn.Module:
    return nn.Sequential(nn.Flatten(1), nn.Dropout(dropout), nn.Linear(features, num_classes))


class CompOFA(OFAMobileNetV3):
    """CompOFA: depth and expand coupled per stage; kernels elastic or fixed to MobileNetV3-Large's."""

    COUPLING = {2: 3, 3: 4, 4: 6}  # depth -> expand ratio of every block of the stage
    fixed_kernel: bool = False

    def __init__(self, resolutions: Sequence[int] = (160, 176, 192, 208, 224), width_mult: float = 1.0,
                 num_classes: int = 1000, dropout: float = 0.1):
        super().__init__(resolutions=resolutions, width_mult=width_mult, num_classes=num_classes, dropout=dropout)

    def _make_genes(self) -> tuple[Gene, ...]:
        genes = tuple(Gene(f"d[{s}]", self.d_choices) for s in range(N_STAGES))
        if not self.fixed_kernel:
            genes += tuple(Gene(f"ks[{i}]", self.ks_choices) for i in range(N_BLOCKS))
        return genes + (Gene("r", self.resolutions),)

    def to_genome(self, arch: OFAArch) -> tuple[int, ...]:
        self._field_genome(arch)  # every field in its OFA range
        for s in range(N_STAGES):
            want_e = self.COUPLING[arch.d[s]]
            for b in range(arch.d[s]):
                i = s * MAX_DEPTH + b
                if arch.e[i] != want_e:
                    raise InvalidArchitecture(
                        f"{self.name}: e[{i}] = {arch.e[i]} is not allowed with d[{s}] = {arch.d[s]}; allowed: "
                        f"{want_e} (CompOFA couples depth and expand: d=2->e=3, d=3->e=4, d=4->e=6)")
                if self.fixed_kernel and arch.ks[i] != MBV3_LARGE_KERNELS[s]:
                    raise InvalidArchitecture(
                        f"{self.name}: ks[{i}] = {arch.ks[i]} is not allowed; allowed: {MBV3_LARGE_KERNELS[s]} "
                        f"(fixed MobileNetV3-Large kernel of stage {s})")
        genome = tuple(self.d_choices.index(v) for v in arch.d)
        if not self.fixed_kernel:
            genome += tuple(self.ks_choices.index(v) for v in arch.ks)
        return genome + (self.resolutions.index(arch.r),)

    def from_genome(self, genome: Sequence[int]) -> OFAArch:
        d = tuple(self.d_choices[i] for i in genome[:N_STAGES])
        e = tuple(self.COUPLING[d[s]] for s in range(N_STAGES) for _ in range(MAX_DEPTH))
        if self.fixed_kernel:
            ks = tuple(MBV3_LARGE_KERNELS[s] for s in range(N_STAGES) for _ in range(MAX_DEPTH))
        else:
            ks = tuple(self.ks_choices[i] for i in genome[N_STAGES:N_STAGES + N_BLOCKS])
        return OFAArch(ks, e, d, self.resolutions[genome[-1]])

    def _coupling_ok(self, ks: np.ndarray, e: np.ndarray, d: np.ndarray) -> bool:
        mask = self.active_mask(d)
        want_e = np.repeat(_coupled_e(d), MAX_DEPTH, axis=1)
        ok = bool((e[mask] == want_e[mask]).all())
        if self.fixed_kernel:
            want_k = np.repeat(np.array(MBV3_LARGE_KERNELS)[None, :], MAX_DEPTH, axis=1)
            ok = ok and bool((ks[mask] == np.broadcast_to(want_k, ks.shape)[mask]).all())
        return ok

    def covering_archs(self) -> list[OFAArch]:
        """Per resolution, every coupled depth uniformly over the stages, with every kernel choice."""
        kernels = [None] if self.fixed_kernel else self.ks_choices
        archs = []
        for r in self.resolutions:
            for depth in self.d_choices:
                for k in kernels:
                    genome = (self.d_choices.index(depth),) * N_STAGES
                    if k is not None:
                        genome += (self.ks_choices.index(k),) * N_BLOCKS
                    archs.append(self.from_genome(genome + (self.resolutions.index(r),)))
        return archs

    def size(self) -> int:
        per_block = 1 if self.fixed_kernel else len(self.ks_choices)
        return sum(per_block ** d for d in self.d_choices) ** N_STAGES * len(self.resolutions)


@register_space("compofa_fixed")
class CompOFAFixedKernel(CompOFA):
    """243 networks per resolution: 3 coupled depth/expand choices in each of 5 stages."""

    fixed_kernel = True


@register_space("compofa_elastic")
class CompOFAElasticKernel(CompOFA):
    fixed_kernel = False


__all__ = ["OFAArch", "OFAMobileNetV3", "CompOFA", "CompOFAFixedKernel", "CompOFAElasticKernel"]
