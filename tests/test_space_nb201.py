"""NAS-Bench-201 space: strings, official index order, genome ops, encodings, network, cost."""
from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest
import torch
from fixture_data import rows

from hwnas.errors import InvalidArchitecture
from hwnas.spaces import get_space
from hwnas.spaces.nb201 import OPS, NASBench201, NB201Arch

EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
ALLOWED = "allowed: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3"


@pytest.fixture(scope="module")
def space() -> NASBench201:
    return get_space("nb201")


@pytest.fixture(scope="module")
def table_rows(data_dir) -> list[dict]:
    """``index, arch`` of every row of the HELP table in this run's data root."""
    with open(data_dir / "nb201" / "latency_help.csv", newline="") as f:
        return [{"index": int(r["index"]), "arch": r["arch"]} for r in csv.DictReader(f)]


def uniform(op: str) -> NB201Arch:
    return NB201Arch((op,) * 6)


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "text, expected",
    [
        (EXAMPLE.replace("avg_pool_3x3~1", "conv_3x3~1"),
         f"nb201: edge 2<-1 (position 2) = 'conv_3x3' is not allowed; {ALLOWED}"),
        (EXAMPLE.replace("skip_connect~2", "max_pool~2"), "edge 3<-2 (position 5) = 'max_pool'"),
        (EXAMPLE.replace("avg_pool_3x3~1", "avg_pool_3x3~2"), "edge 2<-1 (position 2) has input node '2'; allowed: 1"),
        (EXAMPLE.replace("|nor_conv_3x3~0|+", "|nor_conv_3x3~1|+", 1), "edge 1<-0 (position 0) has input node '1'; allowed: 0"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "expected 3 nodes separated by '+', got 2"),
        (EXAMPLE + "+|none~0|", "expected 3 nodes separated by '+', got 4"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "node 2 must have 2 incoming edge(s), got 1"),
        ("nor_conv_3x3~0+|a~0|b~1|+|a~0|b~1|c~2|", "node 1 'nor_conv_3x3~0' must start and end with '|'"),
        ("|nor_conv_3x3|+|none~0|none~1|+|none~0|none~1|none~2|", "must look like 'op~input'"),
        ("garbage", "expected the format"),
    ],
)
def test_invalid_strings_name_the_problem(space, text, expected):
    with pytest.raises(InvalidArchitecture) as info:
        space.from_string(text)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    if "allowed: none" not in message and "input node" not in message:  # malformed: shows an example
        assert "e.g." in message and EXAMPLE in message


@pytest.mark.parametrize(
    "arch, expected",
    [
        (NB201Arch(("none",) * 5), "ops must have 6 entries"),
        (NB201Arch(("none",) * 5 + ("conv",)), "edge 3<-2 (position 5) = 'conv' is not allowed"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "expected an NB201Arch"),
    ],
)
def test_invalid_arch_objects(space, arch, expected):
    assert not space.is_valid(arch)
    with pytest.raises(InvalidArchitecture) as info:
        space.validate(arch)
    assert expected in str(info.value)


def test_arch_rejects_a_string_as_ops():
    with pytest.raises(InvalidArchitecture, match="from_string"):
        NB201Arch(EXAMPLE)


# ---------------------------------------------------------------------- strings and index order
def test_round_trip_all_rows(space, table_rows):
    assert len(table_rows) == rows(15_625)
    for row in table_rows:
        arch = space.from_string(row["arch"])
        assert space.to_string(arch) == row["arch"]


def test_enumerate_is_the_whole_space_in_index_order(space):
    assert space.size() == 15_625
    archs = list(space.enumerate())
    assert len(archs) == 15_625 and len(set(archs)) == 15_625
    np.testing.assert_array_equal(space.indices(archs), np.arange(15_625))
    assert all(space.from_index(i) == archs[i] for i in (0, 1, 9, 123, 15_624))
    with pytest.raises(InvalidArchitecture, match="out of range"):
        space.from_index(15_625)


def test_enumerate_matches_official_index_order(space, table_rows):
    """Our enumeration order is NAS-Bench-201's official index, row for row of the table (all 15,625 with the
    full data, indices 0-299 on the fixture)."""
    table = sorted(table_rows, key=lambda r: r["index"])
    assert [r["index"] for r in table] == list(range(rows(15_625)))
    listed = [space.to_string(a) for a in itertools.islice(space.enumerate(), len(table))]
    assert listed == [r["arch"] for r in table]
    archs = space.from_strings([r["arch"] for r in table_rows])
    np.testing.assert_array_equal(space.indices(archs), [r["index"] for r in table_rows])
    for row in table_rows[::37]:
        assert space.index(space.from_string(row["arch"])) == row["index"]
        assert space.from_index(row["index"]) == space.from_string(row["arch"])


# ---------------------------------------------------------------------- genome operations
def test_sample_mutate_crossover_are_valid_and_seeded(space):
    archs = space.sample(200, seed=0)
    assert archs == space.sample(200, seed=0)
    assert archs != space.sample(200, seed=1)
    assert all(space.is_valid(a) for a in archs)
    assert len(set(archs)) > 150

    mutants = space.mutate_batch(archs, prob=0.5, seed=3)
    assert mutants == space.mutate_batch(archs, prob=0.5, seed=3)
    assert all(space.is_valid(a) for a in mutants)

    children = space.crossover_batch(archs[:100], archs[100:], seed=4)
    assert children == space.crossover_batch(archs[:100], archs[100:], seed=4)
    for child, a, b in zip(children, archs[:100], archs[100:]):
        assert space.is_valid(child)
        assert all(op in (x, y) for op, x, y in zip(child.ops, a.ops, b.ops))


def test_mutation_probability_extremes(space):
    arch = space.from_string(EXAMPLE)
    assert space.mutate(arch, prob=0.0, seed=1) == arch
    mutants = space.mutate_batch([arch] * 50, prob=1.0, seed=2)
    assert all(m != arch for m in mutants[:10])
    changed = np.mean([[x != y for x, y in zip(m.ops, arch.ops)] for m in mutants])
    assert 0.6 < changed < 0.95  # each gene is redrawn uniformly: changes with probability 4/5


# ---------------------------------------------------------------------- encodings
def test_one_hot_encoding_is_exact(space):
    archs = space.sample(64, seed=5)
    enc = space.encode(archs)
    assert enc.shape == (64, 30) and enc.dtype == torch.float32
    expected = torch.zeros(64, 30)
    for n, arch in enumerate(archs):
        for e, op in enumerate(arch.ops):
            expected[n, 5 * e + OPS.index(op)] = 1.0
    assert torch.equal(enc, expected)


def _reaches_output(adjacency: torch.Tensor) -> bool:
    reach = torch.zeros(adjacency.shape[0])
    reach[0] = 1.0
    for _ in range(adjacency.shape[0]):
        reach = ((reach + reach @ adjacency) > 0).float()
    return bool(reach[-1])


def test_graph_encoding_of_known_arch(space):
    adjacency, features = space.encode_graph([space.from_string(EXAMPLE)])
    assert adjacency.shape == (1, 8, 8) and features.shape == (1, 8, 7)
    # nodes: input, edges 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2, output; no edge is `none`
    flows = {(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 6), (3, 6), (4, 7), (5, 7), (6, 7)}
    expected = torch.zeros(8, 8)
    for i, j in flows:
        expected[i, j] = 1.0
    assert torch.equal(adjacency[0], expected)
    # columns: input, output, none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3
    assert features[0].argmax(dim=1).tolist() == [0, 5, 5, 6, 3, 5, 3, 1]
    assert torch.equal(features.sum(dim=2), torch.ones(1, 8))
    assert _reaches_output(adjacency[0])


@pytest.mark.parametrize(
    "text, connected",
    [
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", False),
        ("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|", False),  # node 2 is cut off
        ("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|nor_conv_3x3~2|", True),
        ("|none~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|", True),
    ],
)
def test_graph_encoding_cuts_none_edges(space, text, connected):
    adjacency, features = space.encode_graph([space.from_string(text)])
    assert _reaches_output(adjacency[0]) is connected
    none_nodes = [i + 1 for i, op in enumerate(space.from_string(text).ops) if op == "none"]
    assert adjacency[0, none_nodes].sum() == 0 and adjacency[0, :, none_nodes].sum() == 0
    assert (features[0, none_nodes, 2] == 1).all()


def test_graph_encoding_batch(space):
    archs = space.sample(100, seed=6)
    adjacency, features = space.encode_graph(archs)
    assert adjacency.shape == (100, 8, 8) and features.shape == (100, 8, 7)
    for n in (0, 57, 99):
        a, f = space.encode_graph([archs[n]])
        assert torch.equal(adjacency[n], a[0]) and torch.equal(features[n], f[0])
    assert torch.equal(torch.triu(adjacency, diagonal=1), adjacency)  # a DAG in topological order
    empty_adj, empty_feat = space.encode_graph([])
    assert empty_adj.shape == (0, 8, 8) and empty_feat.shape == (0, 8, 7)


# ---------------------------------------------------------------------- networks and cost
@pytest.mark.parametrize("input_size, num_classes", [(32, 10), (16, 120)])
def test_forward_shape(input_size, num_classes):
    space = get_space("nb201", num_classes=num_classes, input_size=input_size, channels=8, cells_per_stage=1)
    arch = space.from_string(EXAMPLE)
    assert space.input_shape(arch, batch_size=2) == (2, 3, input_size, input_size)
    model = space.build_model(arch)
    out = model(torch.randn(space.input_shape(arch, batch_size=2)))
    assert out.shape == (2, num_classes)


def test_build_rejects_invalid_arch(space):
    with pytest.raises(InvalidArchitecture):
        space.build_model(NB201Arch(("conv",) * 6))


def test_cost_is_positive_and_ordered(space):
    costs = {op: space.cost(uniform(op)) for op in ("nor_conv_3x3", "nor_conv_1x1", "skip_connect")}
    for cost in costs.values():
        assert cost.params > 0 and cost.flops > 0 and cost.peak_activation_bytes > 0
    assert costs["nor_conv_3x3"].flops > costs["nor_conv_1x1"].flops > costs["skip_connect"].flops
    assert costs["nor_conv_3x3"].params > costs["nor_conv_1x1"].params > costs["skip_connect"].params
    # the published NAS-Bench-201 extremes on CIFAR-10: 1.53 M parameters / 220 M multiply-adds
    assert costs["nor_conv_3x3"].params == pytest.approx(1.53e6, rel=0.01)
    assert costs["nor_conv_3x3"].macs == pytest.approx(220e6, rel=0.01)
