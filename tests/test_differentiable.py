"""Differentiable (ProxylessNAS-style) search: binarized paths, gate gradients, expected latency, derived archs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hwnas.errors import ConfigError
from hwnas.search.differentiable import DifferentiableSearch, estimator_latency, lut_latency
from hwnas.search.mixed import MixedNetwork, derive_arch, mixed_space
from hwnas.spaces import get_space
from hwnas.supernet.data import DigitsDataModule

RES = 24


@pytest.fixture(scope="module")
def space():
    return get_space("ofa_mbv3", resolutions=[RES, 28], width_mult=0.25, num_classes=10)


@pytest.fixture(scope="module")
def mixed(space):
    return mixed_space(space, RES)


def fake_table(space, mixed) -> dict[str, float]:
    """A made-up lookup table: a layer's latency grows with its kernel, expand and input size (deterministic)."""
    keys = {layer.key: layer for layer in mixed.fixed}
    for spec in mixed.layers:
        keys.update((layer.key, layer) for layer in spec.layers)
    rng = np.random.default_rng(0)
    return {k: float(0.05 + 1e-6 * np.prod(layer.input_shape) * (1 + k.count("kernel:7")) + 0.01 * rng.random())
            for k, layer in keys.items()}


def test_mixed_layers_and_skips(space, mixed):
    assert len(mixed.layers) == 20 and mixed.n_candidates == 10
    # depth {2,3,4}: the 3rd and 4th block of every stage may be skipped, the first two never
    assert [spec.skippable for spec in mixed.layers[:4]] == [False, False, True, True]
    assert mixed.mask().sum().item() == 20 * 9 + 10


def record_paths(net) -> list[tuple[int, int]]:
    """``(layer, candidate)`` of every candidate that runs, appended as the network runs."""
    ran: list[tuple[int, int]] = []
    for i, layer in enumerate(net.layers):
        if layer.shared:
            layer.block.register_forward_pre_hook(
                lambda m, inp, i=i, layer=layer: ran.append((i, layer.ops.index((m.active_kernel, m.active_expand)))))
        else:
            for c, op in enumerate(layer.candidates):
                op.register_forward_pre_hook(lambda m, inp, i=i, c=c: ran.append((i, c)))
    return ran


@pytest.mark.parametrize("candidates", ["shared", "independent"])
def test_binarized_sampling_runs_one_path_per_layer(mixed, candidates):
    torch.manual_seed(0)
    net = MixedNetwork(mixed, candidates)
    net.alpha.data.normal_()
    ran = record_paths(net)
    for _ in range(5):
        ran.clear()
        choice = net.sample()
        assert choice.shape == (20,)
        net(torch.randn(2, 3, RES, RES), choice, gates=True)
        skips = [i for i, c in enumerate(choice.tolist()) if c == len(mixed.layers[i].ops)]
        assert all(mixed.layers[i].skippable for i in skips)
        # exactly one candidate ran in every layer that was not skipped, none in skipped ones
        assert ran == [(i, int(c)) for i, c in enumerate(choice.tolist()) if i not in skips]
    # a layer without a skip candidate never samples one
    never = net.available.logical_not()
    draws = torch.stack([net.sample() for _ in range(200)])
    assert not never[torch.arange(20)[None, :].expand_as(draws), draws].any()


@pytest.mark.parametrize("candidates", ["shared", "independent"])
def test_gate_gradient_reaches_alpha_as_proxylessnas(mixed, candidates):
    torch.manual_seed(1)
    net = MixedNetwork(mixed, candidates)
    net.alpha.data.normal_(0, 0.5)
    choice = net.sample()
    loss = F.cross_entropy(net(torch.randn(4, 3, RES, RES), choice, gates=True), torch.arange(4))
    loss.backward()
    grad, p = net.alpha.grad, net.probabilities().detach()
    assert grad is not None and torch.isfinite(grad).all()
    for i, c in enumerate(choice.tolist()):
        if c == len(mixed.layers[i].ops):  # skip: the zero branch has no gate gradient
            assert torch.allclose(grad[i], torch.zeros_like(grad[i]))
            continue
        # dL/dalpha_i = dL/dg_c * p_c * (onehot_c - p): proportional to p_c * (onehot_c - p), not all zero
        direction = p[i, c] * (F.one_hot(torch.tensor(c), mixed.n_candidates).float() - p[i])
        scale = grad[i] @ direction / (direction @ direction)
        assert torch.allclose(grad[i], scale * direction, atol=1e-7)
    assert grad.abs().sum() > 0
    if candidates == "independent":  # the weights of candidates that did not run receive no gradient
        unused = [op for i, layer in enumerate(net.layers) for c, op in enumerate(layer.candidates) if c != int(choice[i])]
        assert all(p.grad is None for op in unused for p in op.parameters())


def test_expected_latency_is_softmax_weighted_lut_sum(space, mixed):
    table = fake_table(space, mixed)
    latency = lut_latency(mixed, table, "test")
    module = DifferentiableSearch(**{"lambda": 1.0}).build_module(space, RES, latency)
    torch.manual_seed(2)
    module.network.alpha.data.normal_()
    by_hand = sum(table[layer.key] for layer in mixed.fixed)
    alpha = module.network.alpha.detach().double()
    for i, spec in enumerate(mixed.layers):
        logits = alpha[i, :len(spec.labels)]
        p = torch.exp(logits) / torch.exp(logits).sum()
        by_hand += sum(float(p[c]) * table[layer.key] for c, layer in enumerate(spec.layers))  # skip costs 0
    assert float(module.expected_latency().detach()) == pytest.approx(by_hand, rel=1e-5)
    assert latency.expected(module.network.probabilities().detach().numpy()) == pytest.approx(by_hand, rel=1e-5)
    # one-hot: the lookup-table sum of the derived architecture's own layers (skips compacted away)
    for seed in range(5):
        choice = module.network.sample(torch.Generator().manual_seed(seed)).tolist()
        arch = derive_arch(space, mixed, choice)
        lut_sum = sum(table[layer.key] for layer in space.layers(arch))
        assert module.path_latency(choice) == pytest.approx(lut_sum, rel=1e-5)
        assert _path_ms(latency, choice) == pytest.approx(lut_sum, rel=1e-9)


def _path_ms(latency, choice) -> float:
    """One path's latency from a per-candidate table: its fixed part plus each layer's chosen candidate."""
    return float(latency.fixed_ms + sum(latency.ops_ms[i, int(c)] for i, c in enumerate(choice)))


def test_estimator_latency_is_exact_for_an_additive_estimator(space, mixed):
    table = fake_table(space, mixed)

    class TableSum:  # an additive estimator: the lookup-table sum of each architecture's layers
        name = "table_sum"

        def predict(self, space, archs):
            return np.array([sum(table[layer.key] for layer in space.layers(a)) for a in archs])

    latency = estimator_latency(space, mixed, TableSum())
    rng = np.random.default_rng(4)
    for _ in range(5):
        choice = [int(rng.integers(len(spec.labels))) for spec in mixed.layers]
        arch = derive_arch(space, mixed, choice)
        assert _path_ms(latency, choice) == pytest.approx(TableSum().predict(space, [arch])[0], rel=1e-9)


@pytest.mark.parametrize("candidates", ["shared", "independent"])
def test_derived_arch_is_in_the_space_and_computes_the_path(space, mixed, candidates):
    torch.manual_seed(3)
    net = MixedNetwork(mixed, candidates)
    with torch.no_grad():  # non-trivial batch-norm statistics, exported with the weights
        for _ in range(2):
            net(torch.randn(8, 3, RES, RES), net.sample())
    net.eval()
    choice = [0] * 20
    choice[2] = 9            # stage 0: third block skipped, fourth kept -> depth 3, compacted
    choice[7] = 9            # stage 1: fourth block skipped
    choice[10], choice[11] = 9, 9
    choice[3] = 5
    arch, model = net.export(space, choice)
    assert space.validate(arch) is arch
    assert space.from_string(space.to_string(arch)) == arch
    assert arch.d == (3, 3, 2, 4, 4)
    ks_e = list(zip(arch.ks, arch.e))
    assert ks_e[2] == mixed.layers[3].ops[5]  # the fourth block moved up to the third slot
    x = torch.randn(3, 3, RES, RES)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), net(x, choice), atol=1e-5)


def test_large_lambda_lowers_expected_latency(space):
    images = DigitsDataModule(image_size=RES, batch_size=32, seed=0)
    trainer = {"_target_": "pytorch_lightning.Trainer", "accelerator": "cpu", "devices": 1, "limit_train_batches": 4,
               "limit_val_batches": 1, "enable_progress_bar": False}
    mixed = mixed_space(space, RES)
    latency = lut_latency(mixed, fake_table(space, mixed), "test")
    found = {}
    for lam in (0.0, 100.0):
        strategy = DifferentiableSearch(**{"lambda": lam}, epochs=1, warmup_epochs=0, arch_lr=0.05,
                                        resolution=RES, seed=0)
        found[lam] = strategy.search(space, images, latency, trainer)
    start = latency.expected(np.where(mixed.mask().numpy(), 1.0, 0.0) / mixed.mask().numpy().sum(1, keepdims=True))
    assert found[100.0].expected_latency_ms < start - 0.01
    assert found[100.0].expected_latency_ms < found[0.0].expected_latency_ms - 0.01
    assert found[100.0].derived_latency_ms <= found[0.0].derived_latency_ms
    for result in found.values():
        assert space.validate(result.arch) is result.arch


@pytest.mark.parametrize("options,needles", [
    ({"lambda": -0.5}, ["lambda = -0.5", ">= 0"]),
    ({"latency_source": "oracle"}, ["'oracle'", "lut, profile, estimator"]),
    ({"latency_statistic": "p90"}, ["'p90'", "mean, median"]),
    ({"weight_optimizer": "lbfgs"}, ["'lbfgs'", "sgd, adam"]),
    ({"candidates": "tied"}, ["'tied'", "shared, independent"]),
    ({"epochs": 0}, ["epochs = 0", ">= 1"]),
    ({"latency_source": "lut"}, ["latency_path", "build_lut"]),
    ({"lamda": 1.0}, ["'lamda'", "lambda"]),
])
def test_bad_config_raises(options, needles):
    with pytest.raises(ConfigError) as err:
        DifferentiableSearch(**options)
    for needle in needles:
        assert needle in str(err.value)


def test_search_job_refuses_differentiable(space):
    with pytest.raises(ConfigError, match="job=differentiable_search"):
        DifferentiableSearch().run(space, None)


def test_job_writes_outputs(compose_cfg, tmp_path):
    from hwnas.jobs import run_job

    cfg = compose_cfg("job=differentiable_search", "logger=none", "search_strategy.epochs=1",
                      "search_strategy.warmup_epochs=1", "search_strategy.lambda=0.5", "search_space.resolutions=[24]",
                      "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1",
                      "differentiable_search.progress_bar=false", "differentiable_search.calibration_images=64",
                      "device.warmup=0", "device.repeats=2", "differentiable_search.retrain_epochs=1")
    metrics = run_job(cfg, run_dir=tmp_path / "run")
    run = tmp_path / "run"
    saved = json.loads((run / "metrics.json").read_text())
    for key in ("expected_latency_ms", "derived_latency_ms", "measured_latency_ms", "val/acc_inherited",
                "test/acc_inherited", "test/acc_retrained", "lambda"):
        assert key in saved and key in metrics
    space = get_space("ofa_mbv3", resolutions=[24], width_mult=0.25, num_classes=10)
    arch = space.from_string((run / "derived_arch.txt").read_text())
    assert saved["depth"] == sum(arch.d)
    alphas = (run / "alphas.csv").read_text().splitlines()
    assert alphas[0].startswith("layer,block,") and len(alphas) == 1 + 20 * 9 + 10
    assert (run / "lut.yaml").exists() and (run / "derived.csv").exists()
