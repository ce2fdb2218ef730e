"""This machine's CPU or GPU, measured for real through a runtime (:mod:`hwnas.devices.runtimes`)."""
from __future__ import annotations

import functools
import os
import platform
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from hwnas.devices.base import Device, HardwareDescriptor
from hwnas.errors import ConfigError, DataError, choices_text
from hwnas.options import integer
from hwnas.devices.runtimes import Compiled, Runtime, TorchRuntime
from hwnas.measure.harness import Timing, median_seconds, time_interleaved
from hwnas.measure.probes import ProbeSet

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
    """Measures networks here, through a runtime (eager PyTorch by default, ONNX Runtime, OpenVINO).

    The protocol (:mod:`hwnas.measure.harness`): every network gets ``warmup`` untimed runs, then
    ``repeats`` rounds time one block of ``number`` runs of each of up to ``interleave`` networks (each
    block after ``settle`` untimed runs), in a fresh random order per round; the median block time is
    the latency, p90/p99 its tail.
    ``threads`` pins intra-op threads (default 1: least noise on a shared machine). ``reference``: the
    ``noise_floor.csv`` of a job=measure run; its probe networks are then timed beside every chunk and
    the latencies divided by the chunk's drift, so they compare with that run's dataset
    (:mod:`hwnas.measure.probes`): how picks are verified against the data their model learned from.
    """

    def __init__(self, kind: str = "cpu", threads: int | None = 1, batch_size: int = 1, warmup: int = 5,
                 repeats: int = 20, number: int = 1, interleave: int = 20, settle: int = 1, runtime: Runtime | None = None,
                 reference: str | None = None, name: str | None = None):
        if kind not in KINDS:
            raise ConfigError(f"device.kind = {kind!r} is not allowed; allowed: {choices_text(KINDS)}")
        if kind == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device=local_cuda needs a CUDA GPU, and torch.cuda.is_available() is False here; "
                              "use device=local_cpu")
        threads = integer(threads, "device.threads", 1, allow_none=True,
                          hint=" (intra-op threads while measuring; null: every core)")
        self.batch_size = integer(batch_size, "device.batch_size", 1, hint=" (images per measured forward pass)")
        self.warmup = integer(warmup, "device.warmup", 0, hint=" (untimed runs before timing)")
        self.repeats = integer(repeats, "device.repeats", 1, hint=" (timed rounds; the median is the latency)")
        self.number = integer(number, "device.number", 1, hint=" (runs per timed block)")
        self.interleave = integer(interleave, "device.interleave", 1,
                                  hint=" (networks timed together, round by round; 1: one after another)")
        self.settle = integer(settle, "device.settle", 0, hint=" (untimed runs right before each timed block)")
        if runtime is not None and not isinstance(runtime, Runtime):
            raise ConfigError(f"device.runtime = {runtime!r} is not a runtime; give a node with _target_ "
                              f"hwnas.devices.runtimes.OnnxRuntime / OpenVinoRuntime / LiteRtRuntime / TorchRuntime, "
                              f"or null (eager PyTorch)")
        self.kind = kind
        self.runtime = runtime if runtime is not None else TorchRuntime(kind)
        self.threads = threads if threads is not None else (os.cpu_count() or 1)
        self.torch_device = torch.device("cuda" if kind == "cuda" else "cpu")
        self.name = name or self._default_name()
        self.reference = reference
        self._probes: dict[str, ProbeSet] = {}

    def _default_name(self) -> str:
        rt = self.runtime
        prefix = "local" if isinstance(rt, TorchRuntime) else rt.name
        precision = "" if rt.precision == "fp32" else f"_{rt.precision}"
        return f"{prefix}_{self.kind}_t{self.threads}_b{self.batch_size}{precision}"

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
        rt = self.runtime.settings()
        return {"device": self.name, "hardware": hw, "threads": self.threads, "torch": torch.__version__,
                "runtime": rt["runtime"], "runtime_version": rt["runtime_version"], "precision": rt["precision"],
                "batch_size": self.batch_size, "input_shape": "x".join(str(s) for s in input_shape)}

    # ------------------------------------------------------------------------------------------ measuring
    def compile(self, space, arch) -> Compiled:
        """``arch`` built and prepared by the runtime, on a random input of the device's batch size."""
        model = space.build_model(arch).eval()
        inputs = torch.randn(space.input_shape(arch, batch_size=self.batch_size))
        return self.compile_module(model, inputs)

    def compile_module(self, model: torch.nn.Module, inputs: torch.Tensor) -> Compiled:
        with torch.inference_mode(False), torch.no_grad():
            return self.runtime.compile(model.cpu().eval(), inputs.cpu(), self.threads)

    def time(self, compiled: Sequence[Compiled], seed: int = 0) -> list[Timing]:
        """One interleaved session of ``compiled`` networks (all at once, whatever ``interleave`` says)."""
        prev = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                samples = time_interleaved([c.run for c in compiled], self.warmup, self.repeats, self.number, seed,
                                           self.settle)
        finally:
            torch.set_num_threads(prev)
        return [Timing.from_samples(s, self.number) for s in samples]

    def probes(self, space) -> ProbeSet | None:
        """The probe networks of ``reference`` (compiled once per space), or None without a reference."""
        if not self.reference:
            return None
        if space.name not in self._probes:
            path = Path(self.reference)
            if not path.is_file():
                raise ConfigError(f"device.reference = '{path}' does not exist; give the noise_floor.csv of a "
                                  f"job=measure run (its probes and their reference latencies), or null")
            try:
                log = pd.read_csv(path).to_dict("records")
                probes = ProbeSet.from_log(log)
            except (KeyError, ValueError, pd.errors.ParserError) as exc:
                raise DataError(f"device.reference = '{path}' is not a noise_floor.csv of job=measure (columns arch, "
                                f"reference_ms, ...): {exc}") from exc
            probes.compiled = [self.compile(space, a) for a in space.from_strings(probes.keys)]
            self._probes[space.name] = probes
        return self._probes[space.name]

    def measure_many(self, space, archs: Sequence) -> list[Timing]:
        """Timings of ``archs``, ``interleave`` networks per interleaved session (beside the reference's
        probes, and divided by each session's drift, when there is a reference)."""
        out: list[Timing] = []
        archs = list(archs)
        probes = self.probes(space)
        for start in range(0, len(archs), self.interleave):
            chunk = [self.compile(space, a) for a in archs[start:start + self.interleave]]
            if probes is None:
                out += self.time(chunk, seed=start)
                continue
            timings = self.time(probes.compiled + chunk, seed=start)
            drift = probes.drift([t.median_ms for t in timings[:len(probes)]])
            out += [t.scaled(drift) for t in timings[len(probes):]]
        return out

    def measure(self, space, arch) -> Timing:
        return self.measure_many(space, [arch])[0]

    def measure_module(self, model: torch.nn.Module, inputs: torch.Tensor) -> Timing:
        return self.time([self.compile_module(model, inputs)])[0]

    def latency(self, space, archs) -> np.ndarray:
        return np.array([t.median_ms for t in self.measure_many(space, archs)], dtype=np.float64)
