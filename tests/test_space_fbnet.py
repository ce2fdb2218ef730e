"""FBNet space: strings, genome ops, encodings, network (CIFAR and ImageNet settings), cost."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from fixture_data import rows
from torch import nn

from hwnas.errors import ConfigError, InvalidArchitecture
from hwnas.spaces import get_space
from hwnas.spaces.fbnet import OPS, FBNet, FBNetArch
from hwnas.spaces.layers import ChannelShuffle, ConvBNAct, MBConv

ALLOWED = "allowed: k3_e1, k3_e1_g2, k3_e3, k3_e6, k5_e1, k5_e1_g2, k5_e3, k5_e6, skip"


@pytest.fixture(scope="module")
def space() -> FBNet:
    return get_space("fbnet")


@pytest.fixture(scope="module")
def arch_strings(data_dir) -> list[str]:
    with open(data_dir / "fbnet" / "latency_help.csv", newline="") as f:
        return [r["arch"] for r in csv.DictReader(f)]


def uniform(op: str) -> FBNetArch:
    return FBNetArch((op,) * 22)


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "text, expected",
    [
        ("-".join(["k3_e1"] * 4 + ["k7_e6"] + ["k3_e1"] * 17), f"fbnet: ops[4] = 'k7_e6' is not allowed; {ALLOWED}"),
        ("-".join(["k3_e1"] * 21 + ["k3_e1_g3"]), "ops[21] = 'k3_e1_g3' is not allowed"),
        ("-".join(["k3_e1"] * 21), "expected 22 layer ops joined by '-'"),
        ("-".join(["k3_e1"] * 23), "got 23 op(s)"),
        ("-".join(["k3_e1"] * 10 + [""] + ["k3_e1"] * 11), "got an empty op"),
        ("k3_e1,k3_e1", "got 1 op(s)"),
    ],
)
def test_invalid_strings_name_the_problem(space, text, expected):
    with pytest.raises(InvalidArchitecture) as info:
        space.from_string(text)
    message = str(info.value)
    assert expected in message and "\n" not in message
    if "is not allowed" not in message:  # malformed: says the format and shows a valid example
        example = message.split("e.g. ")[1].strip("'")
        assert space.is_valid(space.from_string(example))


@pytest.mark.parametrize(
    "arch, expected",
    [
        (FBNetArch(("skip",) * 21), "ops must have 22 entries"),
        (FBNetArch(("skip",) * 21 + ("k3",)), "ops[21] = 'k3' is not allowed"),
        ("-".join(["skip"] * 22), "expected an FBNetArch"),
    ],
)
def test_invalid_arch_objects(space, arch, expected):
    assert not space.is_valid(arch)
    with pytest.raises(InvalidArchitecture) as info:
        space.validate(arch)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"stage_strides": [1, 1, 2]}, "stage_strides"),
        ({"stage_strides": [1, 1, 2, 2, 1, 3, 1]}, "stage_strides"),
        ({"stem_stride": 4}, "stem_stride = 4"),
        ({"num_classes": 0}, "num_classes = 0"),
    ],
)
def test_bad_options(options, expected):
    with pytest.raises(ConfigError, match=expected):
        get_space("fbnet", **options)


# ---------------------------------------------------------------------- strings
def test_round_trip_all_rows(space, arch_strings):
    assert len(arch_strings) == rows(5_000)
    for text in arch_strings:
        assert space.to_string(space.from_string(text)) == text


def test_size_and_no_enumeration(space):
    assert space.size() == 9**22
    with pytest.raises(ConfigError, match="too many to enumerate"):
        next(space.enumerate())


# ---------------------------------------------------------------------- genome operations
def test_sample_mutate_crossover_are_valid_and_seeded(space):
    archs = space.sample(100, seed=0)
    assert archs == space.sample(100, seed=0) and archs != space.sample(100, seed=1)
    assert all(space.is_valid(a) for a in archs) and len(set(archs)) == 100

    mutants = space.mutate_batch(archs, prob=0.3, seed=3)
    assert mutants == space.mutate_batch(archs, prob=0.3, seed=3)
    assert all(space.is_valid(a) for a in mutants)

    children = space.crossover_batch(archs[:50], archs[50:], seed=4)
    assert children == space.crossover_batch(archs[:50], archs[50:], seed=4)
    for child, a, b in zip(children, archs[:50], archs[50:]):
        assert all(op in (x, y) for op, x, y in zip(child.ops, a.ops, b.ops))
    assert space.crossover(archs[0], archs[0], seed=5) == archs[0]


def test_mutation_probability_extremes(space):
    arch = space.sample(1, seed=7)[0]
    assert space.mutate(arch, prob=0.0, seed=1) == arch
    mutant = space.mutate(arch, prob=1.0, seed=2)
    assert space.is_valid(mutant)
    changed = sum(x != y for x, y in zip(mutant.ops, arch.ops))
    assert changed >= 10  # each of 22 genes redrawn uniformly over 9 ops: ~19.6 change


# ---------------------------------------------------------------------- encodings
def test_one_hot_encoding_is_exact(space):
    archs = space.sample(32, seed=8)
    enc = space.encode(archs)
    assert enc.shape == (32, 198)
    expected = torch.zeros(32, 198)
    for n, arch in enumerate(archs):
        for layer, op in enumerate(arch.ops):
            expected[n, 9 * layer + OPS.index(op)] = 1.0
    assert torch.equal(enc, expected)


def test_graph_encoding(space):
    archs = [uniform("k5_e6"), space.from_string("-".join(OPS[i % 9] for i in range(22)))]
    adjacency, features = space.encode_graph(archs)
    assert adjacency.shape == (2, 24, 24) and features.shape == (2, 24, 11)
    chain = torch.zeros(24, 24)
    chain[torch.arange(23), torch.arange(1, 24)] = 1.0
    assert torch.equal(adjacency[0], chain) and torch.equal(adjacency[1], chain)
    # columns: input, output, then the 9 ops in vocabulary order
    assert features[0].argmax(dim=1).tolist() == [0] + [2 + OPS.index("k5_e6")] * 22 + [1]
    assert features[1].argmax(dim=1).tolist() == [0] + [2 + i % 9 for i in range(22)] + [1]
    assert torch.equal(features.sum(dim=2), torch.ones(2, 24))


# ---------------------------------------------------------------------- networks and cost
def test_cifar_forward_and_layer_structure(space):
    arch = space.from_string("-".join(OPS[i % 9] for i in range(22)))
    assert space.input_shape(arch, batch_size=2) == (2, 3, 32, 32)
    model = space.build_model(arch)
    x = torch.randn(space.input_shape(arch, batch_size=2))
    assert model(x).shape == (2, 100)
    assert model.layers(model.stem(x)).shape == (2, 352, 4, 4)  # CIFAR strides end at 4x4

    # skip is the identity where the layer keeps its shape (layer 8: last of the 32-channel stage)
    # and a strided 1x1 projection where it does not (layer 17: first of the 184-channel stage)
    layers = list(model.layers)
    assert isinstance(layers[8], nn.Identity)
    assert isinstance(layers[17], ConvBNAct) and layers[17][0].stride == (2, 2)
    assert layers[17][0].in_channels == 112 and layers[17][0].out_channels == 184
    g2 = layers[1]  # k3_e1_g2: grouped pointwise convs around a shuffle, expand conv present at e1
    assert isinstance(g2, MBConv) and any(isinstance(m, ChannelShuffle) for m in g2.modules())
    assert [m.groups for m in g2.modules() if isinstance(m, nn.Conv2d)] == [2, 16, 2]
    e1 = layers[0]  # k3_e1: 1x1 expand conv kept at ratio 1
    assert [m.kernel_size for m in e1.modules() if isinstance(m, nn.Conv2d)] == [(1, 1), (3, 3), (1, 1)]


def test_imagenet_setting_forward():
    space = get_space("fbnet", **FBNet.IMAGENET)
    arch = uniform("k3_e1")
    assert space.input_shape(arch, batch_size=2) == (2, 3, 224, 224)
    model = space.build_model(arch)
    with torch.no_grad():
        features = model.layers(model.stem(torch.zeros(1, 3, 224, 224)))
        logits = model(torch.zeros(space.input_shape(arch, batch_size=2)))
    assert features.shape == (1, 352, 7, 7) and logits.shape == (2, 1000)


def test_cost_is_positive_and_ordered(space):
    costs = {op: space.cost(uniform(op)) for op in ("k5_e6", "k3_e6", "k3_e1", "skip")}
    for cost in costs.values():
        assert cost.params > 0 and cost.flops > 0 and cost.peak_activation_bytes > 0
    assert costs["k5_e6"].flops > costs["k3_e6"].flops > costs["k3_e1"].flops > costs["skip"].flops
    assert costs["k5_e6"].params > costs["k3_e6"].params > costs["k3_e1"].params > costs["skip"].params
    assert costs["k5_e6"].peak_activation_bytes > costs["skip"].peak_activation_bytes
    batch = space.costs([uniform("skip"), uniform("k5_e6")])
    np.testing.assert_array_equal(batch["flops"], [costs["skip"].flops, costs["k5_e6"].flops])
