"""The search-space contract and the categorical-genome machinery every space shares.

A space describes its architectures as a fixed-length vector of categorical *genes* (NB201:
6 edges x 5 ops; FBNet: 22 layers x 9 ops; OFA: 20 kernels, 20 expands, 5 depths and a
resolution). Sampling, mutation, crossover, enumeration, size and the default one-hot
encoding are written once here, vectorized over ``(N, genes)`` integer index arrays; a space
only says how its architecture object maps to and from a genome and how to build the network.
"""
from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Hashable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from hwnas.errors import ConfigError, InvalidArchitecture, choices_text

Arch = Hashable


@dataclass(frozen=True)
class Gene:
    """One categorical decision: ``name`` (as shown in errors, e.g. ``ks[3]``) and its choices."""

    name: str
    choices: tuple

    def index(self, value, space: str) -> int:
        try:
            return self.choices.index(value)
        except ValueError:
            raise InvalidArchitecture(
                f"{space}: {self.name} = {value!r} is not allowed; allowed: {choices_text(self.choices)}"
            ) from None


@dataclass(frozen=True)
class Layer:
    """One layer of a network as a lookup table sees it: a key naming its configuration and shapes.

    Two layers with the same key are the same computation, so their latency, FLOPs and parameters
    are measured once (OFA's lookup-table idea). ``build()`` returns the runnable layer.
    """

    key: str
    input_shape: tuple[int, ...]  # without the batch dimension
    factory: Callable[[], nn.Module] = field(compare=False, hash=False, repr=False)

    def build(self) -> nn.Module:
        return self.factory()


def hwc(shape: Sequence[int]) -> str:
    """``(C, H, W)`` -> ``'HxWxC'`` as in OFA's lookup-table keys."""
    c, h, w = shape
    return f"{h}x{w}x{c}"


def conv_out(size: int, stride: int) -> int:
    """Spatial size after a 'same'-padded conv of odd kernel: ``ceil(size / stride)``."""
    return (size - 1) // stride + 1


def as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


class SearchSpace(ABC):
    """A set of architectures with their genome, string form, encoding and network builder."""

    name: ClassVar[str]
    #: Spaces with the same family share their encoding (None: the space's own name).
    encoding_family: ClassVar[str | None] = None
    #: ``enumerate()`` refuses spaces larger than this.
    enumerate_limit: ClassVar[int] = 10_000_000

    # ------------------------------------------------------------------ genome
    @property
    @abstractmethod
    def genes(self) -> tuple[Gene, ...]:
        """The categorical decisions, in genome order."""

    @abstractmethod
    def to_genome(self, arch: Arch) -> tuple[int, ...]:
        """Choice indices of ``arch`` (validates; raises :class:`InvalidArchitecture`)."""

    @abstractmethod
    def from_genome(self, genome: Sequence[int]) -> Arch:
        """The architecture of a vector of choice indices."""

    # ------------------------------------------------------------------ strings
    @abstractmethod
    def to_string(self, arch: Arch) -> str:
        """Canonical string form (the ``arch`` column of latency datasets)."""

    @abstractmethod
    def parse(self, text: str) -> Arch:
        """Parse a canonical string (no validation of choices; see :meth:`from_string`)."""

    def from_string(self, text: str) -> Arch:
        if not isinstance(text, str):
            raise InvalidArchitecture(f"{self.name}: expected an architecture string, got {type(text).__name__} {text!r}")
        arch = self.parse(text.strip())
        return self.validate(arch)

    def from_strings(self, texts: Iterable[str]) -> list[Arch]:
        archs = []
        for t in texts:
            if not isinstance(t, str):
                raise InvalidArchitecture(f"{self.name}: expected an architecture string, got {type(t).__name__} {t!r}")
            archs.append(self.parse(t.strip()))
        return self.validate_batch(archs)

    def validate_batch(self, archs: list[Arch]) -> list[Arch]:
        """Validate many architectures; spaces override this with a vectorized check."""
        for a in archs:
            self.validate(a)
        return archs

    def validate(self, arch: Arch) -> Arch:
        """Return ``arch`` if it belongs to the space, else raise :class:`InvalidArchitecture`."""
        self.to_genome(arch)
        return arch

    def is_valid(self, arch: Arch) -> bool:
        try:
            self.validate(arch)
            return True
        except InvalidArchitecture:
            return False

    # ------------------------------------------------------------------ vectorized genome ops
    @property
    def n_choices(self) -> np.ndarray:
        return np.array([len(g.choices) for g in self.genes], dtype=np.int64)

    def genome_array(self, archs: Sequence[Arch]) -> np.ndarray:
        """``(N, genes)`` int64 choice indices of a batch of architectures."""
        if len(archs) == 0:
            return np.zeros((0, len(self.genes)), dtype=np.int64)
        return np.asarray([self.to_genome(a) for a in archs], dtype=np.int64)

    def decode_genomes(self, genomes: np.ndarray) -> list[Arch]:
        return [self.from_genome(row) for row in np.asarray(genomes, dtype=np.int64).tolist()]

    def sample_genomes(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform random genomes; spaces with coupled genes override this."""
        return (rng.random((n, len(self.genes))) * self.n_choices).astype(np.int64)

    def sample(self, n: int, seed: int | np.random.Generator | None = None) -> list[Arch]:
        """``n`` architectures drawn uniformly per gene (reproducible for a given seed)."""
        if n < 0:
            raise ConfigError(f"{self.name}: sample size n = {n} must be >= 0")
        return self.decode_genomes(self.sample_genomes(n, as_rng(seed)))

    def sample_unique(self, n: int, seed: int | np.random.Generator | None = None, chunk: int = 1024) -> list[Arch]:
        """``n`` distinct architectures (fewer if the space is smaller), prefix-stable in ``n`` for a seed."""
        if n < 0:
            raise ConfigError(f"{self.name}: sample size n = {n} must be >= 0")
        n = min(n, self.size())
        rng, seen, out = as_rng(seed), set(), []
        while len(out) < n:
            for arch in self.decode_genomes(self.sample_genomes(chunk, rng)):
                key = self.to_string(arch)
                if key not in seen:
                    seen.add(key)
                    out.append(arch)
                    if len(out) == n:
                        break
        return out

    def mutate(self, arch: Arch, prob: float = 0.1, seed: int | np.random.Generator | None = None) -> Arch:
        """Resample each gene with probability ``prob`` (OFA's evolutionary mutation)."""
        return self.mutate_batch([arch], prob, seed)[0]

    def mutate_batch(self, archs: Sequence[Arch], prob: float = 0.1, seed=None) -> list[Arch]:
        if not 0.0 <= prob <= 1.0:
            raise ConfigError(f"{self.name}: mutation probability {prob} must lie in [0, 1]")
        rng = as_rng(seed)
        genomes = self.genome_array(archs)
        fresh = self.sample_genomes(len(genomes), rng)
        mask = rng.random(genomes.shape) < prob
        return self.decode_genomes(np.where(mask, fresh, genomes))

    def crossover(self, a: Arch, b: Arch, seed: int | np.random.Generator | None = None) -> Arch:
        """Uniform crossover: each gene from either parent with probability 1/2."""
        return self.crossover_batch([a], [b], seed)[0]

    def crossover_batch(self, parents_a: Sequence[Arch], parents_b: Sequence[Arch], seed=None) -> list[Arch]:
        rng = as_rng(seed)
        ga, gb = self.genome_array(parents_a), self.genome_array(parents_b)
        if ga.shape != gb.shape:
            raise ConfigError(f"{self.name}: crossover needs as many first as second parents ({len(ga)} != {len(gb)})")
        return self.decode_genomes(np.where(rng.random(ga.shape) < 0.5, ga, gb))

    # ------------------------------------------------------------------ size / enumeration
    def size(self) -> int:
        """Number of distinct architectures (spaces with meaningless genes override this)."""
        return math.prod(len(g.choices) for g in self.genes)

    def enumerate(self) -> Iterator[Arch]:
        """Every architecture once, in genome order."""
        if self.size() > self.enumerate_limit:
            raise ConfigError(
                f"{self.name}: the space has {self.size():.3g} architectures, too many to enumerate "
                f"(limit {self.enumerate_limit:,}); use sample() instead"
            )
        for genome in itertools.product(*(range(len(g.choices)) for g in self.genes)):
            yield self.from_genome(genome)

    # ------------------------------------------------------------------ encodings
    @property
    def encoding_dim(self) -> int:
        return int(self.n_choices.sum())

    def encode(self, archs: Sequence[Arch]) -> torch.Tensor:
        """Float one-hot encoding, one block per gene: ``(N, encoding_dim)``."""
        return one_hot_genomes(self.genome_array(archs), self.n_choices)

    def op_counts(self, archs: Sequence[Arch]) -> np.ndarray:
        """How many genes of ``archs`` take each choice, ``(N, columns)``: the operation histogram that
        NASFLAT-style operation features use (FBNet: blocks of each of its 9 types; NB201: edges of each
        of its 5 operations). Genes with the same choices share a block of columns (OFA: kernel sizes,
        expansions, depths apart)."""
        genomes = self.genome_array(archs)
        groups: dict[tuple, list[int]] = {}
        for i, gene in enumerate(self.genes):
            groups.setdefault(tuple(gene.choices), []).append(i)
        cols = []
        for choices, genes in groups.items():
            block = genomes[:, genes]
            cols += [(block == c).sum(axis=1) for c in range(len(choices))]
        return np.stack(cols, axis=1).astype(np.int64) if cols else np.zeros((len(genomes), 0), dtype=np.int64)

    def encode_layers(self, archs: Sequence[Arch], resolutions: Sequence[int] = ()) -> torch.Tensor:
        """Indicators of each layer's configuration, for latency models additive over layers
        (``estimator.encoding=layers``): one column per (layer, choice) a network can contain. Here, the
        one-hot encoding, which already codes each gene (NB201's edges, FBNet's layers) on its own;
        spaces whose layer cost depends on several genes at once (OFA: kernel, expansion and input
        resolution) override it. ``resolutions``: the input sizes to code (spaces with one ignore it)."""
        return self.encode(archs)

    def encode_graph(self, archs: Sequence[Arch]) -> tuple[torch.Tensor, torch.Tensor]:
        """Graph form for graph predictors: adjacency ``(N, V, V)`` and node features ``(N, V, F)``."""
        raise NotImplementedError(f"{self.name} has no graph encoding")

    # ------------------------------------------------------------------ networks
    @abstractmethod
    def build_model(self, arch: Arch) -> nn.Module:
        """A runnable, randomly initialised ``nn.Module`` of exactly this architecture."""

    @abstractmethod
    def input_shape(self, arch: Arch, batch_size: int = 1) -> tuple[int, ...]:
        """Shape of the input tensor ``build_model(arch)`` expects."""

    def cost(self, arch: Arch):
        """Parameters, FLOPs and peak activation memory of ``arch``, measured on the whole network."""
        from hwnas.spaces.cost import model_cost

        return model_cost(self.build_model(self.validate(arch)), self.input_shape(arch))

    def costs(self, archs: Sequence[Arch]) -> dict[str, np.ndarray]:
        """Costs of a batch as columns ``params, flops, macs, peak_activation_bytes``.

        Summed over the layer decomposition, each distinct layer costed once, so thousands of
        architectures take a second. Params and FLOPs equal :meth:`cost`; the peak activation is
        the largest single-layer peak (it ignores tensors held across layers by skip paths).
        """
        from hwnas.spaces.cost import layer_costs

        return layer_costs(self, archs)

    # ------------------------------------------------------------------ layer decomposition
    def layers(self, arch: Arch) -> list[Layer]:
        """The network of ``arch`` as a sequence of lookup-table layers."""
        raise NotImplementedError(f"{self.name} has no layer decomposition")

    def covering_archs(self) -> list[Arch]:
        """A few architectures whose layers together include every distinct layer of the space."""
        raise NotImplementedError(f"{self.name} has no layer decomposition")

    def layer_universe(self) -> list[Layer]:
        """Every distinct layer configuration of the space (what a lookup table must profile)."""
        seen: dict[str, Layer] = {}
        for arch in self.covering_archs():
            for layer in self.layers(arch):
                seen.setdefault(layer.key, layer)
        return list(seen.values())

    def kernels(self, arch: Arch) -> list[Layer]:
        """The network of ``arch`` as the fused kernels a runtime executes (nn-Meter's view; ``kernels.py``)."""
        from hwnas.spaces.kernels import kernels_of

        return [k for layer in self.layers(arch) for k in kernels_of(layer, type(self))]

    def kernel_universe(self) -> list[Layer]:
        """Every distinct kernel configuration of the space (what a kernel-level table must profile)."""
        from hwnas.spaces.kernels import kernels_of

        seen: dict[str, Layer] = {}
        for layer in self.layer_universe():
            for kernel in kernels_of(layer, type(self)):
                seen.setdefault(kernel.key, kernel)
        return list(seen.values())

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size(), "genes": len(self.genes), "encoding_dim": self.encoding_dim}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def one_hot_genomes(genomes: np.ndarray, n_choices: np.ndarray) -> torch.Tensor:
    """Concatenated per-gene one-hot of an ``(N, G)`` index array, in one scatter."""
    n, g = genomes.shape
    offsets = np.concatenate([[0], np.cumsum(n_choices)[:-1]])
    out = torch.zeros((n, int(n_choices.sum())), dtype=torch.float32)
    if n:
        cols = torch.from_numpy(genomes + offsets[None, :])
        out.scatter_(1, cols, 1.0)
    return out
