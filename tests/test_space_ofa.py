"""OFA MobileNetV3 and CompOFA spaces on the real Syed et al. datasets."""
from __future__ import annotations

import csv
import json
import time

import numpy as np
import pytest
import torch
from fixture_data import rows

from hwnas.errors import ConfigError, InvalidArchitecture
from hwnas.spaces import get_space
from hwnas.spaces.ofa import OFAArch


def _archs(data_dir, name):
    with open(data_dir / "ofa" / "syed" / name, newline="") as fh:
        return [row["arch"] for row in csv.DictReader(fh)]


def reference_encoding(arch: dict) -> list[float]:
    """The 128-d definition, written out literally: kernel/expand one-hot per active block, resolution bin."""
    feats = [0.0] * 128
    for stage in range(5):
        for b in range(arch["d"][stage]):
            i = 4 * stage + b
            feats[3 * i + {3: 0, 5: 1, 7: 2}[arch["ks"][i]]] = 1.0
            feats[60 + 3 * i + {3: 0, 4: 1, 6: 2}[arch["e"][i]]] = 1.0
    feats[120 + (arch["r"] - 112) // 16] = 1.0
    return feats


@pytest.fixture(scope="module")
def ofa():
    return get_space("ofa_mbv3")


def test_encoding_bit_exact_and_fast(ofa, data_dir):
    strings = _archs(data_dir, "ofa_mbv3__rtx2080ti_b64.csv")
    archs = ofa.from_strings(strings)
    x = ofa.encode(archs)
    assert x.shape == (rows(10_000), 128) and x.dtype == torch.float32
    ref = torch.tensor([reference_encoding(json.loads(s)) for s in strings])
    assert torch.equal(x, ref)
    batch = (archs * -(-10_000 // len(archs)))[:10_000]  # 10,000 archs whatever the table's length
    t0 = time.perf_counter()
    ofa.encode(batch)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5, f"encoding 10,000 archs took {elapsed:.2f} s"


def test_ofa_accuracy_predictor_reads_our_encoding(ofa, full_data_dir):
    """OFA's released predictor gives 0.836 (largest, r=224) and 0.753 (smallest, r=160) on this encoding.

    Needs ofa/acc_predictor.pth, which the fixture root does not hold (one state dict, no subset)."""
    mlp = torch.nn.Sequential(torch.nn.Linear(128, 400), torch.nn.ReLU(), torch.nn.Linear(400, 400), torch.nn.ReLU(),
                              torch.nn.Linear(400, 400), torch.nn.ReLU(), torch.nn.Linear(400, 1))
    mlp.load_state_dict(torch.load(full_data_dir / "ofa" / "acc_predictor.pth", map_location="cpu", weights_only=True))
    largest = ofa.make([7] * 20, [6] * 20, [4] * 5, 224)
    smallest = ofa.make([3] * 20, [3] * 20, [2] * 5, 160)
    with torch.no_grad():
        acc = mlp(ofa.encode([largest, smallest])).squeeze(1)
    assert acc[0].item() == pytest.approx(0.836, abs=5e-4)
    assert acc[1].item() == pytest.approx(0.753, abs=5e-4)


@pytest.mark.parametrize("space,file", [("ofa_mbv3", "ofa_mbv3__note10_lut.csv"),
                                        ("compofa_fixed", "compofa_fixed__xeon_cpu_b64.csv"),
                                        ("compofa_elastic", "compofa_elastic__note10_lut.csv")])
def test_string_round_trip(data_dir, space, file):
    s = get_space(space)
    strings = _archs(data_dir, file)
    assert [s.to_string(a) for a in s.from_strings(strings)] == strings


def test_skipped_blocks_do_not_change_encoding(ofa):
    a = ofa.make([3] * 20, [3] * 20, [2] * 5, 160)
    b = ofa.make([3, 3, 7, 7] * 5, [3, 3, 6, 6] * 5, [2] * 5, 160)
    assert torch.equal(ofa.encode([a]), ofa.encode([b]))
    assert a != b


@pytest.mark.parametrize("text,needle", [
    ('{"ks":[3]}', "missing e, d, r"),
    ('{"ks":[3],"e":[3],"d":[2],"r":160,"w":1}', "unknown w"),
    ('not json', "is not JSON"),
    ('[1,2]', "expected a JSON object"),
    (json.dumps({"ks": [3] * 19, "e": [3] * 20, "d": [2] * 5, "r": 160}), "'ks' must be a list of 20 integers, got 19 values"),
    (json.dumps({"ks": [3] * 5 + [4] + [3] * 14, "e": [3] * 20, "d": [2] * 5, "r": 160}), "ks[5] = 4 is not allowed; allowed: 3, 5, 7"),
    (json.dumps({"ks": [3] * 20, "e": [3] * 19 + [5], "d": [2] * 5, "r": 160}), "e[19] = 5 is not allowed; allowed: 3, 4, 6"),
    (json.dumps({"ks": [3] * 20, "e": [3] * 20, "d": [2, 2, 5, 2, 2], "r": 160}), "d[2] = 5 is not allowed; allowed: 2, 3, 4"),
    (json.dumps({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 100}), "r = 100 is not allowed"),
    (json.dumps({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": "160"}), "r = '160' is not an integer"),
    (json.dumps({"ks": [3.5] + [3] * 19, "e": [3] * 20, "d": [2] * 5, "r": 160}), "ks[0] = 3.5 is not an integer"),
])
def test_validation_errors_name_the_problem(ofa, text, needle):
    with pytest.raises(InvalidArchitecture) as info:
        ofa.from_string(text)
    message = str(info.value)
    assert needle in message and message.startswith("ofa_mbv3:") and "\n" not in message


def test_compofa_coupling_and_fixed_kernel_errors():
    fixed = get_space("compofa_fixed")
    with pytest.raises(InvalidArchitecture, match=r"e\[4\] = 6 is not allowed with d\[1\] = 3; allowed: 4"):
        fixed.from_string(json.dumps({"ks": [3] * 4 + [5] * 4 + [3] * 8 + [5] * 4, "e": [6] * 4 + [6] * 4 + [6] * 12,
                                      "d": [4, 3, 4, 4, 4], "r": 160}))
    with pytest.raises(InvalidArchitecture, match=r"ks\[4\] = 3 is not allowed; allowed: 5"):
        fixed.from_string(json.dumps({"ks": [3] * 20, "e": [6] * 20, "d": [4] * 5, "r": 160}))
    with pytest.raises(InvalidArchitecture, match="e\\[0\\] = 6"):
        fixed.encode([OFAArch((3,) * 20, (6,) * 20, (2,) * 5, 160)])


def test_compofa_fixed_enumerates_243_per_resolution(data_dir):
    space = get_space("compofa_fixed")
    archs = list(space.enumerate())
    assert len(archs) == space.size() == 243 * 5 and len(set(archs)) == len(archs)
    for r in space.resolutions:
        assert sum(a.r == r for a in archs) == 243
    assert set(space.from_strings(_archs(data_dir, "compofa_fixed__rtx2080ti_b64.csv"))) <= set(archs)
    assert get_space("compofa_fixed", resolutions=[224]).size() == 243


def test_sizes():
    assert get_space("ofa_mbv3", resolutions=[224]).size() == (9 ** 2 + 9 ** 3 + 9 ** 4) ** 5
    assert get_space("compofa_elastic", resolutions=[224]).size() == (3 ** 2 + 3 ** 3 + 3 ** 4) ** 5
    with pytest.raises(ConfigError, match="too many to enumerate"):
        next(get_space("ofa_mbv3").enumerate())


@pytest.mark.parametrize("name", ["ofa_mbv3", "compofa_fixed", "compofa_elastic"])
def test_sample_mutate_crossover_valid_and_reproducible(name):
    space = get_space(name)
    a, b = space.sample(50, seed=3), space.sample(50, seed=3)
    assert a == b and a != space.sample(50, seed=4)
    kids = space.mutate_batch(a, 0.3, seed=1) + space.crossover_batch(a[:25], a[25:], seed=2)
    assert all(space.is_valid(k) for k in a + kids)
    assert space.mutate(a[0], 0.0, seed=0) == a[0]
    assert space.mutate(a[0], 1.0, seed=0) != a[0]
    child = space.crossover(a[0], a[1], seed=0)
    ga, gb, gc = (np.array(space.to_genome(x)) for x in (a[0], a[1], child))
    assert ((gc == ga) | (gc == gb)).all()


def test_bad_space_options():
    with pytest.raises(ConfigError, match="resolution 300 is outside"):
        get_space("ofa_mbv3", resolutions=[300])
    with pytest.raises(ConfigError, match="unknown search space 'ofa'; allowed: .*ofa_mbv3"):
        get_space("ofa")
    with pytest.raises(ConfigError, match="accepted options: .*resolutions"):
        get_space("ofa_mbv3", depth=3)


def test_widths_match_note10_lut_network():
    w = get_space("ofa_mbv3", width_mult=1.2).widths()
    # the Note10 LUT keys: first conv 3->24, last stage 192, final expand 1152, feature mix 1536
    assert (w["stem"], w["stages"], w["final_expand"], w["last_channel"]) == (24, (32, 48, 96, 136, 192), 1152, 1536)
    assert get_space("ofa_mbv3").widths()["stages"] == (24, 40, 80, 112, 160)


def test_build_model_forward_and_cost(ofa):
    arch = ofa.make([3, 5, 7, 3] * 5, [3, 4, 6, 4] * 5, [2, 3, 4, 3, 2], 128)
    model = ofa.build_model(arch).eval()
    with torch.no_grad():
        y = model(torch.randn(ofa.input_shape(arch, batch_size=2)))
    assert y.shape == (2, 1000)
    # depth: exactly sum(d) elastic blocks are built
    from hwnas.spaces.layers import MBConv
    assert sum(isinstance(m, MBConv) for m in model.modules()) == 1 + sum(arch.d)
    big, small = ofa.make([7] * 20, [6] * 20, [4] * 5, 224), ofa.make([3] * 20, [3] * 20, [2] * 5, 128)
    cb, cs = ofa.cost(big), ofa.cost(small)
    assert cb.flops > 5 * cs.flops and cb.params > cs.params and cb.peak_activation_bytes > cs.peak_activation_bytes
    # the largest OFA w1.0 subnet has 7.7 M parameters (Cai et al.)
    assert cb.params == pytest.approx(7.7e6, rel=0.01)
    costs = ofa.costs([big, small])
    assert costs["macs"][0] == cb.macs
