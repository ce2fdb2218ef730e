"""Runtimes: what executes a network on a local device (eager PyTorch, ONNX Runtime, OpenVINO).

A runtime turns a ``torch.nn.Module`` and an example input into a :class:`Compiled` network whose
``run()`` performs one synchronous inference; :class:`~hwnas.devices.LocalDevice` times those calls
with one protocol for every runtime (:mod:`hwnas.measure.harness`). What a latency depends on
besides the network (runtime, its version, precision, optimisation level) is :meth:`Runtime.settings`,
recorded in every measured row and in the identity of a measurement file.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from hwnas.errors import ConfigError, choices_text


@dataclass
class Compiled:
    """A network ready to run: ``run()`` is one synchronous inference on the example input."""

    run: Callable[[], Any]
    size_bytes: int | None = None      # the serialized model (ONNX / IR bytes; None: not serialized)
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
