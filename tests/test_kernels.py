"""Kernel-level decomposition (nn-Meter's view, hwnas/spaces/kernels.py), its table and estimator."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from hwnas.estimators import LookupTableEstimator
from hwnas.jobs import run_job
from hwnas.spaces import get_space
from hwnas.spaces.cost import layer_cost

SMALL_OFA = dict(resolutions=[24, 32], width_mult=0.25, num_classes=10)
SPACES = [("ofa_mbv3", SMALL_OFA), ("compofa_fixed", SMALL_OFA), ("nb201", {}), ("fbnet", {})]
FAST = ["device.warmup=0", "device.repeats=2", "logger=none"]


@pytest.mark.parametrize("name,options", SPACES, ids=[s for s, _ in SPACES])
def test_kernels_hold_exactly_the_networks_parameters_and_flops(name, options):
    """No computation dropped or counted twice: kernel sums equal the whole network's params and FLOPs."""
    space = get_space(name, **options)
    for arch in space.sample(3, seed=1):
        kernels = space.kernels(arch)
        whole = space.cost(arch)
        assert sum(layer_cost(k).params for k in kernels) == whole.params
        assert sum(layer_cost(k).flops for k in kernels) == whole.flops
        assert len(kernels) > len(space.layers(arch))


@pytest.mark.parametrize("name,options", SPACES, ids=[s for s, _ in SPACES])
def test_every_kernel_of_the_universe_runs_with_the_shapes_its_key_names(name, options):
    space = get_space(name, **options)
    universe = space.kernel_universe()
    assert len({k.key for k in universe}) == len(universe)
    rng = np.random.default_rng(0)
    for kernel in rng.choice(np.array(universe, dtype=object), size=min(40, len(universe)), replace=False):
        module = kernel.build().eval()
        with torch.no_grad():
            out = module(torch.randn(1, *kernel.input_shape))
        shape = tuple(out.shape[1:])
        written = f"output:{shape[1]}x{shape[2]}x{shape[0]}" if len(shape) == 3 else f"output:{shape[0]}"
        assert written in kernel.key, (kernel.key, shape)


def test_fusion_rule_on_an_ofa_block_and_an_nb201_op():
    space = get_space("ofa_mbv3", **SMALL_OFA)
    arch = space.validate(space.from_string('{"ks":[' + ",".join(["5"] * 20) + '],"e":[' + ",".join(["4"] * 20)
                                            + '],"d":[2,2,2,2,2],"r":32}'))
    layers = space.layers(arch)
    from hwnas.spaces.kernels import kernels_of

    block = next(layer for layer in layers if "idskip:1-se:1-hs:1" in layer.key)  # SE, h_swish, residual
    chain = [k.key.split("-input")[0] for k in kernels_of(block)]
    assert chain == ["conv-bn-hswish", "dwconv-bn-hswish", "se", "conv-bn", "add"]
    first = next(layer for layer in layers if "stride:2-idskip:0-se:1-hs:1" in layer.key)  # no add
    assert [k.key.split("-input")[0] for k in kernels_of(first)] == ["conv-bn-hswish", "dwconv-bn-hswish", "se", "conv-bn"]
    assert "kernel:5-stride:2" in kernels_of(first)[1].key

    nb = get_space("nb201")
    cell = nb.from_string("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|")
    keys = [k.key.split("-input")[0] for k in nb.kernels(cell)]
    # ReLU-Conv-BN: the ReLU comes before the conv, so it is a kernel of its own; the conv and BN fuse
    assert keys[:3] == ["conv-bn", "relu", "conv-bn"] and "zero" in keys and "avgpool2d" in keys
    assert "add" in keys  # the reduction block's residual


def test_build_kernel_table_then_estimate_with_it(compose_cfg, tmp_path):
    lut = tmp_path / "kernels.yaml"
    m = run_job(compose_cfg("job=build_lut", "search_space=nb201", "build_lut.granularity=kernel",
                            f"build_lut.output={lut}", *FAST), run_dir=tmp_path / "b")
    table = yaml.safe_load(lut.read_text())
    space = get_space("nb201")
    assert set(table) == {k.key for k in space.kernel_universe()} and m["n_layers"] == len(table) == 27
    again = run_job(compose_cfg("job=build_lut", "search_space=nb201", "build_lut.granularity=kernel",
                                f"build_lut.output={lut}", *FAST), run_dir=tmp_path / "b2")
    assert again["n_profiled_now"] == 0

    archs = space.sample(20, seed=3)
    est = LookupTableEstimator(path=str(lut), granularity="kernel")
    expected = [sum(table[k.key]["mean"] for k in space.kernels(a)) for a in archs]
    assert np.allclose(est.predict(space, archs), expected, rtol=1e-12)
    # the job's config option reaches the estimator
    cfg = compose_cfg("job=predict", "search_space=nb201", "estimator=kernel_lut", f"estimator.path={lut}")
    assert cfg.estimator.granularity == "kernel"
    # a kernel table read as a layer table names the missing layer and the option
    with pytest.raises(Exception, match="build_lut.granularity=layer"):
        LookupTableEstimator(path=str(lut)).predict(space, archs)


@pytest.mark.parametrize("args,needle", [
    (["job=build_lut", "search_space=nb201", "build_lut.granularity=block"], "build_lut.granularity = 'block'"),
    (["job=predict", "search_space=nb201", "estimator=kernel_lut", "estimator.path=x.yaml",
      "estimator.granularity=ops", "predict.input={in}"], "estimator.granularity = 'ops'"),
])
def test_bad_granularity_is_one_line(run_cli, one_line_error, tmp_path, args, needle):
    (tmp_path / "in.csv").write_text("arch\n" + get_space("nb201").to_string(get_space("nb201").sample(1, seed=0)[0]) + "\n")
    args = [a.replace("{in}", str(tmp_path / "in.csv")) for a in args]
    code, _, err = run_cli(*args, f"hydra.run.dir={tmp_path}", "logger=none")
    one_line_error(code, err, needle, "allowed: layer, kernel")

