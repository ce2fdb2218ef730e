"""ONNX Runtime, OpenVINO and LiteRT as runtimes: a compiled network computes what eager PyTorch computes on
the same input, int8 models are smaller, settings name what a latency depends on, bad options are one line.
The LiteRT tests skip where its optional packages are absent (pip install 'hwnas[litert]')."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from hwnas.devices.runtimes import (DEFAULT_OPSET, LiteRtRuntime, OnnxRuntime, OpenVinoRuntime, _onnx_bytes,
                                    _tflite_bytes)
from hwnas.errors import ConfigError, user_error_text
from hwnas.spaces import get_space

OPTIMIZATIONS = ["disable", "basic", "extended", "all"]


def _small_net() -> nn.Module:
    """A few layers of the kinds mobile networks use (BN with non-trivial statistics, depthwise, h-swish)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                        nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16), nn.Hardswish(), nn.Conv2d(16, 32, 1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    net[1].running_mean.uniform_(-0.5, 0.5)
    net[1].running_var.uniform_(0.5, 2.0)
    return net.eval()


def _ofa_subnet() -> tuple[nn.Module, torch.Tensor]:
    """A subnet of the tiny OFA space and 8 inputs. PyTorch's default initialisation shrinks the signal to
    nothing over ~25 layers (the logits are the same for every input), so the weights are drawn with He
    initialisation: a runtime that mixed up its input would then give other logits."""
    space = get_space("ofa_mbv3", resolutions=[32], width_mult=0.25)
    arch = space.sample(1, seed=0)[0]
    torch.manual_seed(0)
    net = space.build_model(arch).eval()
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return net, torch.randn(space.input_shape(arch, batch_size=8), generator=torch.Generator().manual_seed(1))


def _reference(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return net(x).numpy()


def _relative_error(out, ref: np.ndarray) -> float:
    """Largest deviation relative to the largest logit (elementwise relative error is meaningless near 0)."""
    return float(np.abs(np.asarray(out) - ref).max() / np.abs(ref).max())


def _cosine(out, ref: np.ndarray) -> float:
    """Mean cosine similarity of each input's logits."""
    out = np.asarray(out)
    return float(np.mean((out * ref).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref, axis=1)))


@pytest.fixture(scope="module")
def small():
    net = _small_net()
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    return net, x, _reference(net, x)


@pytest.fixture(scope="module")
def ofa():
    """The OFA subnet compiled by every runtime once: ``{"ref": logits, name: Compiled}``."""
    net, x = _ofa_subnet()
    runtimes = {"fp32": OnnxRuntime(), "dynamic": OnnxRuntime(quantize="dynamic"),
                "static": OnnxRuntime(quantize="static"), "openvino": OpenVinoRuntime()}
    return {"ref": _reference(net, x), **{name: rt.compile(net, x, threads=1) for name, rt in runtimes.items()}}


def _needs_litert():
    """Skip where the optional LiteRT packages are absent (the extra hwnas[litert])."""
    pytest.importorskip("litert_torch", reason="device=litert needs pip install 'hwnas[litert]'")
    pytest.importorskip("ai_edge_litert.interpreter", reason="device=litert needs pip install 'hwnas[litert]'")


@pytest.fixture(scope="module")
def small_tflite(small):
    """The small net converted to a .tflite flatbuffer once."""
    _needs_litert()
    net, x, _ = small
    return _tflite_bytes(net, x)


@pytest.fixture(scope="module")
def ofa_litert():
    """The OFA subnet compiled by LiteRT (one conversion: ~18 s on a 2-core VM), its logits and ONNX size."""
    _needs_litert()
    net, x = _ofa_subnet()
    return {"ref": _reference(net, x), "litert": LiteRtRuntime().compile(net, x, threads=1),
            "onnx_bytes": len(_onnx_bytes(net, x, DEFAULT_OPSET))}


# --------------------------------------------------------------------------------------------- outputs
@pytest.mark.parametrize("optimization", OPTIMIZATIONS)
def test_onnxruntime_fp32_computes_what_torch_computes(small, optimization):
    net, x, ref = small
    compiled = OnnxRuntime(optimization=optimization).compile(net, x, threads=1)
    assert _relative_error(compiled.run()[0], ref) < 1e-4
    assert compiled.size_bytes > 0 and compiled.compile_seconds > 0


@pytest.mark.parametrize("quantize", ["dynamic", "static"])
def test_onnxruntime_int8_keeps_the_small_nets_answers(small, quantize):
    """A few layers lose ~0.5% of the logits' range to int8; every input keeps its class."""
    net, x, ref = small
    out = np.asarray(OnnxRuntime(quantize=quantize).compile(net, x, threads=1).run()[0])
    assert _relative_error(out, ref) < 2e-2
    assert (out.argmax(1) == ref.argmax(1)).all()


def test_openvino_fp32_computes_what_torch_computes(small):
    net, x, ref = small
    assert _relative_error(OpenVinoRuntime().compile(net, x, threads=1).run()[0], ref) < 1e-4


def test_openvino_bf16_is_close(small):
    import openvino as ov

    if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        pytest.skip("this CPU has no bfloat16 instructions")
    net, x, ref = small
    out = np.asarray(OpenVinoRuntime("bf16").compile(net, x, threads=1).run()[0])
    assert _relative_error(out, ref) < 2e-2  # bf16 keeps 8 bits of mantissa: ~0.4% per rounding
    assert (out.argmax(1) == ref.argmax(1)).all()


@pytest.mark.parametrize("name", ["fp32", "openvino"])
def test_ofa_subnet_fp32(ofa, name):
    assert _relative_error(ofa[name].run()[0], ofa["ref"]) < 1e-4


@pytest.mark.parametrize("name", ["dynamic", "static"])
def test_ofa_subnet_int8(ofa, name):
    """Over ~25 layers of an untrained network, int8 (per-tensor, ranges from random calibration inputs)
    moves the logits by ~15% of their range, and the top class of 1000 near-equal random logits often
    changes, so neither a 1e-4 tolerance nor the argmax says whether the graph is right. The direction of
    the logit vector does: it stays within a few degrees (cosine ~0.98), where a broken graph (another
    input, misread weights, a zero output) is near 0."""
    assert _cosine(ofa[name].run()[0], ofa["ref"]) > 0.95


@pytest.mark.parametrize("xnnpack", [True, False])
def test_litert_computes_what_torch_computes(small, xnnpack):
    _needs_litert()
    net, x, ref = small
    compiled = LiteRtRuntime(xnnpack=xnnpack).compile(net, x, threads=1)
    assert _relative_error(compiled.run()[0], ref) < 1e-4
    assert compiled.size_bytes > 0 and compiled.compile_seconds > 0


@pytest.mark.parametrize("xnnpack", [True, False])
def test_litert_xnnpack_is_what_runs(small_tflite, xnnpack):
    """xnnpack=true hands the graph to the XNNPACK delegate (a DELEGATE node in the execution plan);
    false leaves every op to LiteRT's builtin kernels."""
    ops = [op["op_name"] for op in LiteRtRuntime(xnnpack=xnnpack)._interpreter(small_tflite, 1)._get_ops_details()]
    assert ("DELEGATE" in ops) == xnnpack
    assert "CONV_2D" in ops and "DEPTHWISE_CONV_2D" in ops


def test_litert_ofa_subnet(ofa_litert):
    compiled = ofa_litert["litert"]
    out = compiled.run()[0]
    assert out.shape == ofa_litert["ref"].shape
    assert _relative_error(out, ofa_litert["ref"]) < 1e-4
    # both hold the fp32 weights: the flatbuffer is about the size of the ONNX export
    assert 0.8 < compiled.size_bytes / ofa_litert["onnx_bytes"] < 1.25


def test_litert_run_repeats(ofa_litert):
    first = ofa_litert["litert"].run()[0].copy()
    for _ in range(3):
        np.testing.assert_array_equal(ofa_litert["litert"].run()[0], first)


def test_litert_on_a_local_device():
    """LocalDevice's protocol times LiteRT like any runtime: compiled from the space, named by the runtime."""
    _needs_litert()
    from hwnas.devices import LocalDevice

    space = get_space("ofa_mbv3", resolutions=[16], width_mult=0.25, num_classes=10)
    device = LocalDevice(warmup=2, repeats=20, runtime=LiteRtRuntime())
    assert device.name == "litert_cpu_t1_b1"
    timing = device.measure(space, space.sample(1, seed=0)[0])
    assert timing.median_ms > 0 and timing.p90_ms >= timing.median_ms and timing.repeats == 20
    fingerprint = device.fingerprint(space.input_shape(space.sample(1, seed=0)[0], batch_size=1))
    assert fingerprint["runtime"] == "litert" and fingerprint["precision"] == "fp32"


def test_static_int8_convolutions_are_all_int8(tmp_path):
    """What is timed as int8-static is int8: ORT's optimised graph has no float convolution left."""
    import onnx
    import onnxruntime

    net, x = _ofa_subnet()
    int8 = OnnxRuntime(quantize="static")._quantized(_onnx_bytes(net, x, DEFAULT_OPSET), x)
    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.log_severity_level = 3
    onnxruntime.InferenceSession(int8, options, providers=["CPUExecutionProvider"])
    ops = [node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node]
    assert "Conv" not in ops
    assert ops.count("QLinearConv") == sum(isinstance(m, nn.Conv2d) for m in net.modules())


def test_int8_models_are_smaller(ofa):
    assert ofa["dynamic"].size_bytes < ofa["fp32"].size_bytes / 2
    assert ofa["static"].size_bytes < ofa["fp32"].size_bytes / 2
    assert ofa["openvino"].size_bytes == ofa["fp32"].size_bytes  # both read the same export


@pytest.mark.parametrize("name", ["fp32", "dynamic", "static", "openvino"])
def test_run_repeats(ofa, name):
    first = np.asarray(ofa[name].run()[0]).copy()
    for _ in range(3):
        np.testing.assert_array_equal(np.asarray(ofa[name].run()[0]), first)


def test_onnxruntime_cuda(small):
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime has no CUDAExecutionProvider here (onnxruntime-gpu and a CUDA GPU)")
    net, x, _ = small
    compiled = OnnxRuntime(provider="cuda").compile(net, x, threads=1)
    for _ in range(3):
        compiled.run()


# -------------------------------------------------------------------------------------------- settings
def test_settings_name_what_a_latency_depends_on():
    import onnxruntime
    import openvino

    assert OnnxRuntime(optimization="basic", opset=13).settings() == {
        "runtime": "onnxruntime", "runtime_version": onnxruntime.__version__, "precision": "fp32",
        "optimization": "basic", "opset": 13, "provider": "cpu"}
    assert OnnxRuntime(quantize="dynamic").precision == "int8-dynamic"
    assert OnnxRuntime(quantize="static").settings()["precision"] == "int8-static"
    settings = OpenVinoRuntime().settings()
    assert settings == {"runtime": "openvino", "runtime_version": settings["runtime_version"], "precision": "fp32"}
    assert openvino.__version__.startswith(settings["runtime_version"])


def test_litert_settings_name_what_a_latency_depends_on():
    _needs_litert()
    import ai_edge_litert
    import litert_torch

    assert LiteRtRuntime().settings() == {
        "runtime": "litert", "runtime_version": ai_edge_litert.__version__, "precision": "fp32",
        "litert_torch_version": litert_torch.__version__, "xnnpack": True}
    assert LiteRtRuntime(xnnpack=False).settings()["xnnpack"] is False
    assert repr(LiteRtRuntime()) == "LiteRtRuntime(fp32)"


# ------------------------------------------------------------------------------------------ bad values
BAD = [
    (lambda: OnnxRuntime(optimization="fast"), ["device.runtime.optimization = 'fast'", "disable, basic, extended, all"]),
    (lambda: OnnxRuntime(quantize="int4"), ["device.runtime.quantize = 'int4'", "null (fp32), dynamic, static"]),
    (lambda: OnnxRuntime(calibration_batches=0), ["device.runtime.calibration_batches = 0", ">= 1"]),
    (lambda: OnnxRuntime(calibration_batches=1.5), ["device.runtime.calibration_batches = 1.5", "integer"]),
    (lambda: OnnxRuntime(opset=9), ["device.runtime.opset = 9", "between 11 and 20"]),
    (lambda: OnnxRuntime(opset=21), ["device.runtime.opset = 21", "between 11 and 20"]),
    (lambda: OnnxRuntime(provider="tpu"), ["device.runtime.provider = 'tpu'", "cpu, cuda"]),
    (lambda: OpenVinoRuntime(precision="fp16"), ["device.runtime.precision = 'fp16'", "fp32, bf16"]),
    (lambda: LiteRtRuntime(xnnpack="yes"), ["device.runtime.xnnpack = 'yes'", "true (XNNPACK", "false (builtin"]),
]


@pytest.mark.parametrize("make,needles", BAD, ids=[n[0].removeprefix("device.runtime.") for _, n in BAD])
def test_bad_values_are_one_line(make, needles):
    with pytest.raises(ConfigError) as err:
        make()
    text = str(err.value)
    assert "\n" not in text and all(n in text for n in needles), text


def test_cuda_provider_without_it_names_what_is_available():
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime has the CUDA provider here")
    with pytest.raises(ConfigError, match="provider = 'cuda' needs onnxruntime's CUDAExecutionProvider.*"
                                          "available here: .*CPUExecutionProvider"):
        OnnxRuntime(provider="cuda")


def test_bf16_without_the_instructions(monkeypatch):
    import openvino

    monkeypatch.setattr(openvino.Core, "get_property", lambda self, device, name: ["FP32", "INT8"])
    with pytest.raises(ConfigError, match=r"'bf16' needs a CPU with bfloat16 instructions; OpenVINO finds FP32, INT8"):
        OpenVinoRuntime("bf16")


@pytest.mark.parametrize("make,module,device", [(OnnxRuntime, "onnxruntime", "onnxruntime"),
                                                (OnnxRuntime, "onnx", "onnxruntime"),
                                                (OpenVinoRuntime, "openvino", "openvino")])
def test_a_missing_package_is_one_line(monkeypatch, make, module, device):
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    with pytest.raises(ConfigError) as err:
        make()
    assert f"device={device} needs the {module} package" in str(err.value)
    assert str(err.value).endswith(f"pip install {module}") and "\n" not in str(err.value)


@pytest.mark.parametrize("module", ["litert_torch", "ai_edge_litert"])
def test_a_missing_litert_package_is_one_line(monkeypatch, module):
    if module == "ai_edge_litert":
        pytest.importorskip("litert_torch")  # imported first (it imports ai_edge_litert itself)
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    with pytest.raises(ConfigError) as err:
        LiteRtRuntime()
    text = str(err.value)
    assert text.startswith(f"device=litert needs the {module} package") and "\n" not in text
    assert text.endswith("pip install 'hwnas[litert]'")


# --------------------------------------------------------------------------------------------- configs
@pytest.mark.parametrize("option,target,precision", [("onnxruntime", OnnxRuntime, "fp32"),
                                                     ("onnxruntime_int8", OnnxRuntime, "int8-dynamic"),
                                                     ("openvino", OpenVinoRuntime, "fp32")])
def test_configs_reuse_local_cpus_protocol(compose_cfg, option, target, precision):
    cfg = OmegaConf.to_container(compose_cfg(f"device={option}").device)
    local = OmegaConf.to_container(compose_cfg("device=local_cpu").device)
    runtime = cfg.pop("runtime")
    rounds = ("warmup", "repeats", "number")  # sub-millisecond networks: more rounds of single runs
    assert {k: v for k, v in cfg.items() if k not in rounds} == {k: v for k, v in local.items() if k not in ("runtime", *rounds)}
    assert (cfg["repeats"], cfg["number"]) == (200, 1)
    assert runtime["_target_"] == f"{target.__module__}.{target.__name__}"
    built = instantiate(runtime)
    assert isinstance(built, target) and built.precision == precision


def test_litert_config_reuses_onnxruntimes_protocol(compose_cfg):
    """device=litert composes without the packages (they are needed once the runtime is built)."""
    cfg = OmegaConf.to_container(compose_cfg("device=litert").device)
    ort = OmegaConf.to_container(compose_cfg("device=onnxruntime").device)
    runtime = cfg.pop("runtime")
    ort.pop("runtime")
    assert cfg == ort  # local_cpu's protocol with 200 rounds of single runs
    assert runtime == {"_target_": "hwnas.devices.runtimes.LiteRtRuntime", "xnnpack": True}
    _needs_litert()
    device = instantiate(compose_cfg("device=litert").device)
    assert isinstance(device.runtime, LiteRtRuntime) and device.runtime.xnnpack is True
    assert device.name == "litert_cpu_t1_b1" and device.repeats == 200
    assert instantiate(compose_cfg("device=litert", "device.runtime.xnnpack=false").device).runtime.xnnpack is False


def test_a_bad_config_value_is_one_user_line(compose_cfg):
    cfg = compose_cfg("device=onnxruntime", "device.runtime.optimization=fast")
    with pytest.raises(Exception) as err:
        instantiate(cfg.device)
    line = user_error_text(err.value)
    assert line.startswith("device.runtime.optimization = 'fast' is not allowed") and "\n" not in line
