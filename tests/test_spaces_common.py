"""Contract tests parametrized over the space registry (timm style)."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import yaml

from hwnas.errors import InvalidArchitecture
from hwnas.spaces import get_space, list_spaces

SMALL = {"ofa_mbv3": {"resolutions": [128, 160]}, "compofa_fixed": {"resolutions": [160]},
         "compofa_elastic": {"resolutions": [160]}, "nb201": {}, "fbnet": {}}


def test_registry_lists_the_five_spaces():
    assert list_spaces() == sorted(SMALL)


@pytest.fixture(params=sorted(SMALL), scope="module")
def space(request):
    return get_space(request.param, **SMALL[request.param])


def test_strings_round_trip_and_encode(space):
    archs = space.sample(20, seed=0)
    assert space.from_strings([space.to_string(a) for a in archs]) == archs
    x = space.encode(archs)
    assert x.shape == (20, space.encoding_dim) and x.dtype == torch.float32
    assert set(torch.unique(x).tolist()) <= {0.0, 1.0}
    assert space.encode([]).shape == (0, space.encoding_dim)


def test_foreign_architecture_is_rejected(space):
    other = get_space("nb201" if space.name != "nb201" else "fbnet")
    foreign = other.sample(1, seed=0)[0]
    with pytest.raises(InvalidArchitecture, match=space.name):
        space.validate(foreign)
    with pytest.raises(InvalidArchitecture, match=space.name):
        space.from_string(other.to_string(foreign))


def test_layer_decomposition_sums_to_the_network(space):
    archs = space.sample(3, seed=1)
    costs = space.costs(archs)
    for i, arch in enumerate(archs):
        whole = space.cost(arch)
        assert costs["flops"][i] == whole.flops and costs["params"][i] == whole.params
        assert 0 < costs["peak_activation_bytes"][i] <= whole.peak_activation_bytes
    universe = {layer.key for layer in space.layer_universe()}
    for arch in space.sample(30, seed=2):
        assert {layer.key for layer in space.layers(arch)} <= universe


def _key_shape(text: str) -> tuple[int, ...]:
    """``'HxWxC'`` of a lookup-table key -> ``(C, H, W)``; a plain ``'N'`` (flattened features) -> ``(N,)``."""
    dims = tuple(int(d) for d in text.split("x"))
    return (dims[2], dims[0], dims[1]) if len(dims) == 3 else dims


def test_layers_run_on_their_input_shape(space):
    """Every layer of a network runs on its input shape and gives the output shape its key names
    (``...-input:HxWxC-output:HxWxC...``, the shapes its lookup-table latency is profiled at), and
    the layers chain: each reads the shape the one before it gives (NB201's cell edges keep the shape
    of the cell's input, which every edge of the cell reads)."""
    layers = space.layers(space.sample(1, seed=3)[0])
    for layer in layers:
        m = re.search(r"-input:([\dx]+)-output:([\dx]+)", layer.key)
        assert m, layer.key
        assert _key_shape(m.group(1)) == tuple(layer.input_shape), layer.key
        with torch.no_grad():
            out = layer.build().eval()(torch.zeros(1, *layer.input_shape))
        assert tuple(out.shape) == (1, *_key_shape(m.group(2))), layer.key
    for before, after in zip(layers, layers[1:]):
        produced = _key_shape(re.search(r"-output:([\dx]+)", before.key).group(1))
        assert tuple(after.input_shape) == produced, (before.key, after.key)


def _note10_keys(data_dir, resolutions) -> set[str]:
    keys = set()
    for r in resolutions:
        with open(data_dir / "ofa" / "note10_lut" / f"note10_{r}_lookup_table.yaml") as fh:
            keys |= set(yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    return keys


def test_ofa_w12_layers_are_the_note10_lookup_table(data_dir):
    """Our OFA network at width 1.2 has exactly the layers of OFA's Note10 tables, key for key
    (at the five resolutions of Syed et al.'s datasets, which the fixture root holds too)."""
    resolutions = [160, 176, 192, 208, 224]
    space = get_space("ofa_mbv3", width_mult=1.2, resolutions=resolutions)
    assert {layer.key for layer in space.layer_universe()} == _note10_keys(data_dir, resolutions)


def test_ofa_w12_layers_are_all_17_note10_lookup_tables(full_data_dir):
    resolutions = list(range(160, 225, 4))
    space = get_space("ofa_mbv3", width_mult=1.2, resolutions=resolutions)
    assert {layer.key for layer in space.layer_universe()} == _note10_keys(full_data_dir, resolutions)


def test_sample_is_prefix_stable(space):
    """Asking for more samples with the same seed extends, not reshuffles, the first ones."""
    assert space.sample(10, seed=5) == space.sample(25, seed=5)[:10]
    assert np.array_equal(space.genome_array(space.sample(0, seed=1)), np.zeros((0, len(space.genes))))
