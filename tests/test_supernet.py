"""The elastic supernet: kernel transforms, slicing, extraction equal to the space's own network, channel sorting,
phases and their config errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.errors import ConfigError
from hwnas.spaces import get_space
from hwnas.spaces.layers import make_divisible
from hwnas.supernet import OFASupernet, PhaseSampler, Schedule, largest_arch, median_arch, parse_phases, smallest_arch
from hwnas.supernet.elastic import ElasticDepthwiseConv, ElasticMBConv

torch.set_num_threads(1)
TINY = dict(resolutions=[16, 20], width_mult=0.25, num_classes=10)


def tiny_space(name="ofa_mbv3", **kw):
    return get_space(name, **{**TINY, **kw})


def scramble(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics/affine and kernel transforms, so a wrong slice or transform shows up."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            if isinstance(m, ElasticDepthwiseConv):
                for p in m.transforms.values():
                    p.add_(torch.randn(p.shape, generator=g) * 0.2)
            if isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


def test_kernel_transform_shapes_and_learned_centres():
    conv = ElasticDepthwiseConv(8, (3, 5, 7), stride=1)
    assert {k: tuple(p.shape) for k, p in conv.transforms.items()} == {"7to5": (25, 25), "5to3": (9, 9)}
    for k in (7, 5, 3):
        assert conv.kernel(k).shape == (8, 1, k, k)
        assert conv(torch.randn(2, 8, 9, 9), k).shape == (2, 8, 9, 9)
    crop3 = conv.weight[:, :, 2:5, 2:5]
    assert torch.equal(conv.kernel(3), crop3)  # identity transforms: plain centre crops
    with torch.no_grad():
        for p in conv.transforms.values():
            p.add_(torch.randn(p.shape) * 0.1)
    assert (conv.kernel(3) - crop3).abs().max() > 1e-3
    # 5x5 = M(7->5) @ centre 5x5; 3x3 = M(5->3) @ centre of the *transformed* 5x5
    k5 = (conv.weight[:, 0, 1:6, 1:6].reshape(8, 25) @ conv.transforms["7to5"].T).reshape(8, 1, 5, 5)
    assert torch.allclose(conv.kernel(5), k5, atol=1e-6)
    k3 = (k5[:, 0, 1:4, 1:4].reshape(8, 9) @ conv.transforms["5to3"].T).reshape(8, 1, 3, 3)
    assert torch.allclose(conv.kernel(3), k3, atol=1e-6)
    with pytest.raises(ConfigError, match="kernel size 9 .*allowed: 7, 5, 3"):
        conv.kernel(9)


@pytest.mark.parametrize("name", ["ofa_mbv3", "compofa_fixed", "compofa_elastic"])
def test_extract_subnet_equals_supernet(name):
    torch.manual_seed(0)
    space = tiny_space(name)
    net = OFASupernet(space)
    scramble(net)
    net.eval()
    archs = [smallest_arch(space), largest_arch(space), median_arch(space), *space.sample(3 if name == "ofa_mbv3" else 1, seed=1)]
    for arch in archs:
        x = torch.randn(3, 3, arch.r, arch.r)
        sub = net.extract_subnet(arch).eval()
        assert type(sub) is type(space.build_model(arch))
        net.set_active_subnet(arch)
        with torch.no_grad():
            diff = (net(x) - sub(x)).abs().max().item()
        assert diff < 1e-5, (space.to_string(arch), diff)
        assert sum(p.numel() for p in sub.parameters()) == sum(p.numel() for p in space.build_model(arch).parameters())


def test_depth_and_expand_slicing():
    space = tiny_space()
    net = OFASupernet(space)
    arch = space.make(ks=[3, 5, 7, 3] * 5, e=[3, 4, 6, 4] * 5, d=[2, 3, 4, 2, 3], r=16)
    sub = net.extract_subnet(arch)
    assert len(list(sub.children())) == 2 + sum(arch.d) + 4
    blocks = list(sub.children())[2:2 + sum(arch.d)]
    active = arch.active()
    for block, i in zip(blocks, active):
        s, b = divmod(i, 4)
        elastic: ElasticMBConv = net.stages[s][b]
        mid = make_divisible(round(elastic.c_in * arch.e[i]))
        expand, dw = block.body[0][0], block.body[1][0]
        assert expand.out_channels == mid and dw.kernel_size == (arch.ks[i], arch.ks[i])
        assert torch.equal(expand.weight, elastic.expand_conv.weight[:mid])
        assert torch.equal(dw.weight, elastic.depthwise.kernel(arch.ks[i], mid))
    # stage 0 runs 2 of its blocks: the 3rd and 4th block's weights are not used
    net.set_active_subnet(arch)
    net(torch.randn(2, 3, 16, 16)).sum().backward()
    assert net.stages[0][2].expand_conv.weight.grad is None and net.stages[0][1].expand_conv.weight.grad is not None
    assert net.stages[0][0].expand_conv.weight.grad[make_divisible(round(net.stages[0][0].c_in * 3)):].abs().sum() == 0


def test_channel_sorting_preserves_the_full_network():
    torch.manual_seed(0)
    space = tiny_space()
    net = OFASupernet(space)
    scramble(net, seed=3)
    with torch.no_grad():  # random importances, so sorting really permutes
        for _, block in net.blocks():
            block.project_conv.weight.mul_(torch.rand(1, block.project_conv.in_channels, 1, 1) * 2)
    net.eval()
    top = largest_arch(space)
    net.set_active_subnet(top)
    x = torch.randn(4, 3, top.r, top.r)
    with torch.no_grad():
        before = net(x)
        small_before = net.extract_subnet(space.make([7] * 20, [3] * 20, [4] * 5, top.r)).eval()(x)
    net.reorganize_channels()
    with torch.no_grad():
        after = net(x)
        small_after = net.extract_subnet(space.make([7] * 20, [3] * 20, [4] * 5, top.r)).eval()(x)
    assert (before - after).abs().max() < 1e-5
    assert (small_before - small_after).abs().max() > 1e-4  # the kept channels changed: the most important now
    for _, block in net.blocks():
        imp = block.project_conv.weight.abs().sum(dim=(0, 2, 3))
        assert torch.all(imp[:-1] >= imp[1:])


def test_small_image_resolutions_encode_per_resolution():
    space = tiny_space(resolutions=[24, 28, 32])
    assert space.encoding_dim == 120 + 3
    enc = space.encode([space.make([3] * 20, [3] * 20, [2] * 5, 28)])
    assert enc[0, 120:].tolist() == [0.0, 1.0, 0.0]
    assert get_space("ofa_mbv3", resolutions=[224]).encoding_dim == 128
    with pytest.raises(ConfigError, match="mix ImageNet-scale"):
        get_space("ofa_mbv3", resolutions=[32, 128])
    with pytest.raises(ConfigError, match="resolution 8 is outside"):
        get_space("ofa_mbv3", resolutions=[8])


PHASES = [{"name": "full", "epochs": 2, "lr": 0.1, "ks": "max", "e": "max", "d": "max", "distill": False},
          {"name": "depth", "epochs": 1, "lr": 0.01, "subnets": 2, "e": "max", "d": [4, 3]},
          {"name": "all", "epochs": 3, "lr": 0.03, "warmup_epochs": 1}]


def test_phase_sampler_respects_phase_choices():
    space = tiny_space()
    full, depth, everything = (PhaseSampler(space, p) for p in parse_phases(PHASES, space))
    for a in full.sample(10, np.random.default_rng(0)):
        assert set(a.ks) == {7} and set(a.e) == {6} and set(a.d) == {4} and a.r in (16, 20)
    archs = depth.sample(50, np.random.default_rng(0))
    assert {d for a in archs for d in a.d} == {3, 4} and {e for a in archs for e in a.e} == {6}
    assert {k for a in archs for k in a.ks} == {3, 5, 7}
    assert everything.largest() == largest_arch(space) and everything.smallest() == smallest_arch(space)
    # CompOFA: expand follows depth, kernels fixed to MobileNetV3-Large's
    comp = tiny_space("compofa_fixed")
    for a in PhaseSampler(comp, parse_phases(PHASES, comp)[1]).sample(20, np.random.default_rng(1)):
        assert comp.is_valid(a) and set(a.d) <= {3, 4}


def test_schedule_positions_and_learning_rate():
    space = tiny_space()
    sched = Schedule(parse_phases(PHASES, space), steps_per_epoch=10)
    assert sched.total_steps == 60
    assert [sched.position(s).phase for s in (0, 19, 20, 29, 30, 59)] == [0, 0, 1, 1, 2, 2]
    assert sched.position(25).step == 5 and sched.position(60).done
    assert sched.lr(20) == pytest.approx(0.01) and sched.lr(29) < 0.001
    assert sched.lr(30) == pytest.approx(0.03 / 10) and sched.lr(39) == pytest.approx(0.03)  # warm-up


@pytest.mark.parametrize("change,message", [
    ({"foo": 1}, "unknown phase option 'foo'; allowed: name, epochs"),
    ({"d": [4, 1]}, r"phases\[1\].d = \[4, 1\]: 1 is not a choice of ofa_mbv3; allowed: 2, 3, 4"),
    ({"ks": "biggest"}, r"phases\[1\].ks = 'biggest' is not allowed; allowed: null \(all\), max, min"),
    ({"epochs": -1}, r"phases\[1\].epochs = -1 must be >= 0"),
    ({"lr": 0}, r"phases\[1\].lr = 0 must be > 0"),
    ({"subnets": 0}, r"phases\[1\].subnets = 0 must be >= 1"),
    ({"sort_channels": "yes"}, r"sort_channels = 'yes' must be true or false"),
])
def test_bad_phase_options_raise_config_error(change, message):
    phases = [dict(p) for p in PHASES]
    phases[1].update(change)
    with pytest.raises(ConfigError, match=message):
        parse_phases(phases, tiny_space())


def test_derived_field_restriction_is_refused():
    phases = [dict(p) for p in PHASES]
    phases[1]["e"] = [6, 4]
    with pytest.raises(ConfigError, match="compofa_fixed derives e"):
        parse_phases(phases, tiny_space("compofa_fixed"))
    phases[1]["e"] = "max"  # no-op on a derived field
    parse_phases(phases, tiny_space("compofa_fixed"))
