"""Runtimes: what executes a network on a local device (eager PyTorch, ONNX Runtime, OpenVINO, LiteRT).

A runtime turns a ``torch.nn.Module`` and an example input into a :class:`Compiled` network whose
``run()`` performs one synchronous inference; :class:`~hwnas.devices.LocalDevice` times those calls
with one protocol for every runtime (:mod:`hwnas.measure.harness`). What a latency depends on
besides the network (runtime, its version, precision, optimisation level) is :meth:`Runtime.settings`,
recorded in every measured row and in the identity of a measurement file.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from hwnas.errors import ConfigError, choices_text
from hwnas.options import integer


@dataclass
class Compiled:
    """A network ready to run: ``run()`` is one synchronous inference on the example input."""

    run: Callable[[], Any]
    size_bytes: int | None = None      # the serialized model (ONNX / .tflite bytes; None: not serialized)
    compile_seconds: float = 0.0       # export + session creation, not part of the latency


class Runtime(ABC):
    """Executes networks for a :class:`~hwnas.devices.LocalDevice`."""

    name: str = ""
    precision: str = "fp32"

    @abstractmethod
    def version(self) -> str:
        """The runtime's version (recorded with each row)."""

    def settings(self) -> dict[str, Any]:
        """Everything besides the network and the device's protocol that a latency depends on."""
        return {"runtime": self.name, "runtime_version": self.version(), "precision": self.precision}

    @abstractmethod
    def compile(self, model: nn.Module, inputs: torch.Tensor, threads: int) -> Compiled:
        """``model`` (eval mode, on the CPU) prepared to run ``inputs`` with ``threads`` intra-op threads."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.precision})"


class TorchRuntime(Runtime):
    """Eager PyTorch on the CPU or a CUDA GPU (what the network is written in; not what deployments run).

    ``precision``: fp32, or fp16 on CUDA. On CUDA ``run()`` synchronizes, so a wall-clock timing of it
    is the GPU time of one inference plus the launch overhead.
    """

    name = "torch"
    PRECISIONS = ("fp32", "fp16")

    def __init__(self, kind: str = "cpu", precision: str = "fp32"):
        if precision not in self.PRECISIONS:
            raise ConfigError(f"device.runtime.precision = {precision!r} is not allowed for eager PyTorch; "
                              f"allowed: {choices_text(self.PRECISIONS)}")
        if precision == "fp16" and kind != "cuda":
            raise ConfigError("device.runtime.precision = 'fp16' needs device=local_cuda (half precision "
                              "convolutions on the CPU are not what any CPU deployment runs)")
        self.kind, self.precision = kind, precision
        self.device = torch.device("cuda" if kind == "cuda" else "cpu")

    def version(self) -> str:
        return torch.__version__

    def compile(self, model: nn.Module, inputs: torch.Tensor, threads: int) -> Compiled:
        t0 = time.perf_counter()
        dtype = torch.float16 if self.precision == "fp16" else torch.float32
        model = model.to(self.device, dtype).eval()
        x = inputs.to(self.device, dtype)
        if self.device.type == "cuda":
            sync = torch.cuda.synchronize

            def run():
                model(x)
                sync()
        else:
            def run():
                return model(x)
        return Compiled(run=run, compile_seconds=time.perf_counter() - t0)


# ------------------------------------------------------------------------------------- exported runtimes
#: The ONNX opset of both exported runtimes by default (ORT and OpenVINO read every opset in ``OPSETS``).
DEFAULT_OPSET = 17
#: 11: the lowest that ORT's quantizer keeps (it rewrites older models to 11, so the recorded opset would be
#: wrong); 20: the highest the TorchScript exporter writes.
OPSETS = (11, 20)


def _require(module: str, device: str, why: str = "", pip: str | None = None):
    """``module`` imported, or the one line that says how to install it (runtimes are optional at run time);
    ``pip``: what to install where it is not the module's name."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"device={device} needs the {module} package{why}: pip install {pip or module}") from None


def _onnx_bytes(model: nn.Module, inputs: torch.Tensor, opset: int) -> bytes:
    """``model`` as ONNX, traced on ``inputs`` with a fixed input shape (the shape that is timed).

    The TorchScript exporter, not the dynamo one: it takes well under a second for a mobile network where
    torch.export takes seconds, and it needs the onnx package only (the dynamo exporter needs onnxscript).
    """
    import io

    buffer = io.BytesIO()
    torch.onnx.export(model, (inputs,), buffer, dynamo=False, opset_version=opset, input_names=["input"])
    return buffer.getvalue()


class OnnxRuntime(Runtime):
    """ONNX Runtime on the CPU (or on a CUDA GPU, with onnxruntime-gpu): what many deployments run.

    ``optimization``: ORT's graph optimisation level (disable, basic, extended, all). ``quantize``: null
    (fp32), ``dynamic`` (8-bit weights, activations quantized in every run) or ``static`` (int8 weights and
    activations, QDQ format). Static quantization needs activation ranges; they come from
    ``calibration_batches`` random inputs (fixed seed) shaped like the timed input. Random calibration
    data is fine for latency (the int8 graph is the same whatever the ranges), not for accuracy: the
    outputs of such a model are not a deployment's.

    Static quantization runs ORT's pre-processing first and uses uint8 activations: the exporter feeds
    deduplicated biases through Identity nodes, and without folding them (pre-processing), or with int8
    activations on x86, ORT fuses at most half of the convolutions into int8 ones (an OFA subnet: 0 to 37
    of 73; both: all 73); the others run in float between (de)quantize nodes, and the timed "int8"
    network would be mostly float.
    """

    name = "onnxruntime"
    OPTIMIZATIONS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
                     "all": "ORT_ENABLE_ALL"}
    QUANTIZE = (None, "dynamic", "static")
    PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}

    def __init__(self, optimization: str = "all", quantize: str | None = None, calibration_batches: int = 8,
                 opset: int = DEFAULT_OPSET, provider: str = "cpu"):
        if optimization not in self.OPTIMIZATIONS:
            raise ConfigError(f"device.runtime.optimization = {optimization!r} is not allowed; "
                              f"allowed: {choices_text(self.OPTIMIZATIONS)}")
        if quantize not in self.QUANTIZE:
            raise ConfigError(f"device.runtime.quantize = {quantize!r} is not allowed; "
                              f"allowed: null (fp32), {choices_text(self.QUANTIZE[1:])}")
        if provider not in self.PROVIDERS:
            raise ConfigError(f"device.runtime.provider = {provider!r} is not allowed; "
                              f"allowed: {choices_text(self.PROVIDERS)}")
        self.calibration_batches = integer(calibration_batches, "device.runtime.calibration_batches", 1,
                                           hint=" (random inputs that set the int8 activation ranges)")
        self.opset = integer(opset, "device.runtime.opset", *OPSETS, hint=" (the ONNX opset of the export)")
        ort = _require("onnxruntime", "onnxruntime")
        _require("onnx", "onnxruntime", " (torch's ONNX exporter writes through it)")
        if provider != "cpu":
            available = ort.get_available_providers()
            if self.PROVIDERS[provider] not in available:
                raise ConfigError(f"device.runtime.provider = {provider!r} needs onnxruntime's "
                                  f"{self.PROVIDERS[provider]} (pip install onnxruntime-gpu, with a CUDA GPU); "
                                  f"available here: {choices_text(available)}")
            if quantize is not None:
                raise ConfigError(f"device.runtime.quantize = {quantize!r} needs provider=cpu (ORT's CUDA provider "
                                  f"has no int8 convolutions; it would time float kernels between (de)quantize nodes)")
        self.optimization, self.quantize, self.provider = optimization, quantize, provider
        self.precision = "fp32" if quantize is None else f"int8-{quantize}"

    def version(self) -> str:
        import onnxruntime

        return onnxruntime.__version__

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "optimization": self.optimization, "opset": self.opset, "provider": self.provider}

    def compile(self, model: nn.Module, inputs: torch.Tensor, threads: int) -> Compiled:
        import onnxruntime as ort

        t0 = time.perf_counter()
        onnx_model = _onnx_bytes(model, inputs, self.opset)
        if self.quantize is not None:
            onnx_model = self._quantized(onnx_model, inputs)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, self.OPTIMIZATIONS[self.optimization])
        options.log_severity_level = 3  # errors only: ORT's notes on node placement would print per network
        session = ort.InferenceSession(onnx_model, options, providers=[self.PROVIDERS[self.provider]])
        x = inputs.detach().cpu().numpy()
        if self.provider == "cuda":
            # Input and outputs stay on the GPU, as with eager PyTorch on CUDA; ORT synchronizes its CUDA
            # stream at the end of every run, so run() returns when the GPU is done.
            binding = session.io_binding()
            binding.bind_ortvalue_input("input", ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0))
            for output in session.get_outputs():
                binding.bind_output(output.name, "cuda")

            def run():
                session.run_with_iobinding(binding)
        else:
            feed = {"input": x}

            def run():
                return session.run(None, feed)
        return Compiled(run=run, size_bytes=len(onnx_model), compile_seconds=time.perf_counter() - t0)

    def _quantized(self, onnx_model: bytes, inputs: torch.Tensor) -> bytes:
        """The int8 model (ORT's quantizer reads and writes files, so they pass through a temporary folder)."""
        from onnxruntime import quantization as q

        root = logging.getLogger()
        level = root.level
        # The quantizer logs its advice (pre-process first; biases that are not initializers) as root
        # warnings, once per network; compile() follows it where the timed graph depends on it.
        root.setLevel(logging.ERROR)
        try:
            with tempfile.TemporaryDirectory(prefix="hwnas-int8-") as tmp:
                fp32, pre, int8 = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
                fp32.write_bytes(onnx_model)
                if self.quantize == "dynamic":
                    # uint8 weights: ORT has ConvInteger for int8 weights from 1.24 on, and 1.23 is the
                    # last release with wheels for Python 3.10.
                    q.quantize_dynamic(fp32, int8, weight_type=q.QuantType.QUInt8)
                else:
                    rng = np.random.default_rng(0)
                    batches = iter([{"input": rng.standard_normal(tuple(inputs.shape), dtype=np.float32)}
                                    for _ in range(self.calibration_batches)])

                    class Calibration(q.CalibrationDataReader):
                        def get_next(self):
                            return next(batches, None)

                    # Static shapes: ONNX's shape inference is enough (symbolic inference takes 10x longer).
                    q.quant_pre_process(fp32, pre, skip_symbolic_shape=True)
                    q.quantize_static(pre, int8, Calibration(), quant_format=q.QuantFormat.QDQ,
                                      activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8)
                return int8.read_bytes()
        finally:
            root.setLevel(level)


class OpenVinoRuntime(Runtime):
    """Intel's OpenVINO on the CPU, configured for the latency of one request: one stream, ``threads``
    inference threads, a single infer request.

    ``precision``: fp32, or bf16 where the CPU has bfloat16 instructions. The precision is always set:
    OpenVINO's default on such a CPU is bf16, so an unset hint would time a different network there than
    on a CPU without them. There is no performance-hint option: with one stream and the threads fixed,
    OpenVINO's THROUGHPUT hints compile to the same configuration as LATENCY. The model is read from the
    same ONNX export as :class:`OnnxRuntime`: OpenVINO's own converter from the torch module gives the same
    outputs and takes 3-5 s per small OFA subnet, export and read 0.5 s.
    """

    name = "openvino"
    PRECISIONS = {"fp32": "f32", "bf16": "bf16"}

    def __init__(self, precision: str = "fp32"):
        if precision not in self.PRECISIONS:
            raise ConfigError(f"device.runtime.precision = {precision!r} is not allowed for OpenVINO; "
                              f"allowed: {choices_text(self.PRECISIONS)}")
        ov = _require("openvino", "openvino")
        _require("onnx", "openvino", " (torch's ONNX exporter writes through it)")
        if precision == "bf16":
            capabilities = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
            if "BF16" not in capabilities:
                raise ConfigError(f"device.runtime.precision = 'bf16' needs a CPU with bfloat16 instructions; "
                                  f"OpenVINO finds {choices_text(capabilities)} here; use fp32")
        self.precision = precision

    def version(self) -> str:
        import importlib.metadata

        return importlib.metadata.version("openvino")

    def compile(self, model: nn.Module, inputs: torch.Tensor, threads: int) -> Compiled:
        import openvino as ov

        t0 = time.perf_counter()
        onnx_model = _onnx_bytes(model, inputs, DEFAULT_OPSET)
        core = ov.Core()
        network = core.compile_model(core.read_model(onnx_model), "CPU", {
            "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
            "INFERENCE_PRECISION_HINT": self.PRECISIONS[self.precision]})
        request = network.create_infer_request()
        feed = {0: inputs.detach().cpu().numpy()}

        def run():
            return request.infer(feed, share_inputs=True)
        return Compiled(run=run, size_bytes=len(onnx_model), compile_seconds=time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------------ LiteRT
#: What device=litert installs (the converter pulls jax and transformers: an extra, not a core dependency).
LITERT_PIP = "'hwnas[litert]'"


def _tflite_bytes(model: nn.Module, inputs: torch.Tensor) -> bytes:
    """``model`` as a LiteRT (.tflite) flatbuffer, converted by litert_torch (torch.export, then the LiteRT
    converter) with the fixed input shape of ``inputs``; the input stays NCHW (the converter adds the
    transposes to LiteRT's NHWC kernels inside the graph)."""
    import litert_torch

    # litert_torch prints ~25 lines of progress per conversion (rich, on stdout); LITERT_TORCH_SHOW_PROGRESS=y
    # keeps them. Its own warnings and errors are not touched; torch's deprecation note on the pytree specs
    # the converter passes (a FutureWarning about torch internals) is. The converter's C++ side still logs
    # one line per network (absl INFO: "Estimated count of arithmetic ops").
    quiet = "LITERT_TORCH_SHOW_PROGRESS" not in os.environ
    if quiet:
        os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", r".*isinstance\(treespec, LeafSpec\)", FutureWarning)
            return bytes(litert_torch.convert(model, (inputs,)).model_content())
    finally:
        if quiet:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)


class LiteRtRuntime(Runtime):
    """Google's LiteRT (TensorFlow Lite) interpreter on the CPU: what Android and embedded deployments run.

    The module is converted by litert_torch into a .tflite flatbuffer (fixed input shape, fp32); one
    ``Interpreter`` with ``threads`` threads runs it, its tensors allocated and its input set once, so
    ``run()`` is one synchronous ``invoke()`` (and a copy of the output). ``xnnpack``: true runs the
    network through the XNNPACK delegate, LiteRT's default CPU backend; false keeps LiteRT's builtin
    kernels alone (the op resolver without default delegates: ~6x slower on a small conv net here).
    fp32 only. Conversion takes 10-20 s per small OFA subnet on a 2-core VM (compile time, not latency).
    """

    name = "litert"

    def __init__(self, xnnpack: bool = True):
        if not isinstance(xnnpack, bool):
            raise ConfigError(f"device.runtime.xnnpack = {xnnpack!r} is not allowed; allowed: true (XNNPACK "
                              f"delegate, LiteRT's default), false (builtin kernels only)")
        _require("litert_torch", "litert", " (it converts the torch module to a .tflite model)", LITERT_PIP)
        _require("ai_edge_litert", "litert", " (LiteRT's interpreter)", LITERT_PIP)
        self.xnnpack = xnnpack

    def version(self) -> str:
        import ai_edge_litert

        return ai_edge_litert.__version__

    def settings(self) -> dict[str, Any]:
        import litert_torch

        return {**super().settings(), "litert_torch_version": litert_torch.__version__, "xnnpack": self.xnnpack}

    def _interpreter(self, flatbuffer: bytes, threads: int):
        """An interpreter of ``flatbuffer`` with its tensors allocated."""
        from ai_edge_litert import interpreter as lite

        resolver = (lite.OpResolverType.AUTO if self.xnnpack
                    else lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interpreter = lite.Interpreter(model_content=flatbuffer, num_threads=threads,
                                       experimental_op_resolver_type=resolver)
        interpreter.allocate_tensors()
        return interpreter

    def compile(self, model: nn.Module, inputs: torch.Tensor, threads: int) -> Compiled:
        t0 = time.perf_counter()
        flatbuffer = _tflite_bytes(model, inputs)
        interpreter = self._interpreter(flatbuffer, threads)
        (source,) = interpreter.get_input_details()
        interpreter.set_tensor(source["index"], inputs.detach().cpu().numpy().astype(np.float32, copy=False))
        outputs = [o["index"] for o in interpreter.get_output_details()]
        invoke, get = interpreter.invoke, interpreter.get_tensor

        def run():
            invoke()
            return [get(i) for i in outputs]
        return Compiled(run=run, size_bytes=len(flatbuffer), compile_seconds=time.perf_counter() - t0)
