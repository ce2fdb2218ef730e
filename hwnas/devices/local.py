"""This machine's CPU or GPU, measured for real."""
from __future__ import annotations

import functools
import os
import platform
from typing import Sequence

import numpy as np
import torch

from hwnas.devices.base import Device, HardwareDescriptor
from hwnas.errors import ConfigError, choices_text
from hwnas.options import integer
from hwnas.measure.harness import Timing, measure_latency, median_seconds

KINDS = ("cpu", "cuda")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None



class LocalDevice(Device):
    """Measures networks here. ``threads`` pins intra-op threads (default 1: least noise on shared machines)."""

    def __init__(self, kind: str = "cpu", threads: int | None = 1, batch_size: int = 1, warmup: int = 5,
                 repeats: int = 20, number: int = 1, name: str | None = None):
        if kind not in KINDS:
            raise ConfigError(f"device.kind = {kind!r} is not allowed; allowed: {choices_text(KINDS)}")
        if kind == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device=local_cuda needs a CUDA GPU, and torch.cuda.is_available() is False here; "
                              "use device=local_cpu")
        threads = integer(threads, "device.threads", 1, allow_none=True,
                          hint=" (intra-op threads while measuring; null: every core)")
        self.batch_size = integer(batch_size, "device.batch_size", 1, hint=" (images per measured forward pass)")
        self.warmup = integer(warmup, "device.warmup", 0, hint=" (untimed runs before timing)")
        self.repeats = integer(repeats, "device.repeats", 1, hint=" (timed blocks; the median is the latency)")
        self.number = integer(number, "device.number", 1, hint=" (runs per timed block)")
        self.kind = kind
        self.threads = threads if threads is not None else (os.cpu_count() or 1)
        self.torch_device = torch.device("cuda" if kind == "cuda" else "cpu")
        self.name = name or (f"local_{kind}_t{self.threads}_b{self.batch_size}")

    @functools.cached_property
    def descriptor(self) -> HardwareDescriptor:
        """Detected hardware: cores and memory from the OS, bandwidth and peak FLOP/s measured (copy, matmul)."""
        dev = self.torch_device
        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
        n = 2**25  # 128 MiB of float32
        src, dst = torch.empty(n, device=dev), torch.empty(n, device=dev)

        def copy():
            dst.copy_(src)
            sync()

        prev = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            bandwidth = 2 * 4 * n / median_seconds(copy) / 1e9  # read + write
            m = 1024 if dev.type == "cpu" else 4096
            a, b = torch.randn(m, m, device=dev), torch.randn(m, m, device=dev)

            def matmul():
                torch.mm(a, b)
                sync()

            peak = 2 * m**3 / median_seconds(matmul) / 1e9
        finally:
            torch.set_num_threads(prev)
        if dev.type == "cuda":
            props = torch.cuda.get_device_properties(dev)
            model, cores, mem = props.name, props.multi_processor_count, props.total_memory / 2**30
            kind = "gpu"
        else:
            model, cores, mem, kind = cpu_model(), self.threads, memory_gb(), "cpu"
        return HardwareDescriptor(name=self.name, kind=kind, model=model, cores=cores, memory_gb=mem,
                                  bandwidth_gbs=round(bandwidth, 2), peak_gflops=round(peak, 2),
                                  batch_size=self.batch_size, source="detected: OS, torch copy and matmul benchmarks")

    def fingerprint(self, input_shape: Sequence[int]) -> dict[str, object]:
        """Everything a latency depends on besides the network: recorded with each measured row."""
        hw = torch.cuda.get_device_name(self.torch_device) if self.kind == "cuda" else cpu_model()
        return {"device": self.name, "hardware": hw, "threads": self.threads, "torch": torch.__version__,
                "batch_size": self.batch_size, "input_shape": "x".join(str(s) for s in input_shape)}

    def measure(self, space, arch) -> Timing:
        model = space.build_model(arch).to(self.torch_device).eval()
        inputs = torch.randn(space.input_shape(arch, batch_size=self.batch_size), device=self.torch_device)
        return self.measure_module(model, inputs)

    def measure_module(self, model: torch.nn.Module, inputs: torch.Tensor) -> Timing:
        return measure_latency(model, inputs, warmup=self.warmup, repeats=self.repeats, number=self.number,
                               threads=self.threads)

    def latency(self, space, archs) -> np.ndarray:
        return np.array([self.measure(space, a).median_ms for a in archs], dtype=np.float64)
