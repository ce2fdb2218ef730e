"""Profile each distinct layer (or fused kernel) of a space on this machine into an OFA-format lookup table.

Layers are appended to ``<output>.csv`` as they are profiled (a rerun profiles only what is missing);
the YAML table is written from it at the end, while the CSV's writer lock is still held.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
import yaml
from hydra.utils import instantiate
from tqdm import tqdm

from hwnas.devices import require_local
from hwnas.io import atomic_write_text
from hwnas.measure import MeasurementStore, provenance
from hwnas.spaces.kernels import check_granularity, table_universe

COLUMNS = ["key", "mean", "std", "median", "count", "input_shape", "device", "hardware", "threads", "torch", "batch_size"]


def run(cfg, ctx) -> dict[str, float]:
    space = instantiate(cfg.search_space)
    device = instantiate(cfg.device)
    require_local(device, "build_lut", "profiles layers on this machine")
    granularity = check_granularity(cfg.build_lut.get("granularity", "layer"), "build_lut.granularity")
    suffix = "__kernels" if granularity == "kernel" else ""
    output = Path(cfg.build_lut.output) if cfg.build_lut.get("output") else \
        Path(cfg.paths.output_dir) / "luts" / f"{space.name}__{device.name}{suffix}.yaml"
    universe = table_universe(space, granularity)
    identity = provenance.local_latency(f"latency of {granularity}s (job=build_lut)", cfg.search_space, device)
    with MeasurementStore(output.with_suffix(".csv"), COLUMNS, identity, key="key", option="build_lut.output") as store:
        todo = [layer for layer in universe if layer.key not in store]
        t0 = time.perf_counter()
        for layer in tqdm(todo, desc=f"profiling {space.name} {granularity}s on {device.name}", unit=granularity,
                          dynamic_ncols=True):
            shape = (device.batch_size, *layer.input_shape)
            timing = device.measure_module(layer.build().to(device.torch_device),
                                           torch.randn(shape, device=device.torch_device))
            store.append({"key": layer.key, "mean": f"{timing.mean_ms:.6g}", "std": f"{timing.std_ms:.4g}",
                          "median": f"{timing.median_ms:.6g}", "count": timing.repeats * timing.number,
                          **device.fingerprint(shape)})
        seconds = time.perf_counter() - t0
        rows = {r["key"]: r for r in store.rows}
        table = {layer.key: {"count": int(rows[layer.key]["count"]), "mean": float(rows[layer.key]["mean"]),
                             "std": float(rows[layer.key]["std"]), "median": float(rows[layer.key]["median"])}
                 for layer in universe}
        atomic_write_text(output, yaml.safe_dump(table, sort_keys=True))
    print(f"lookup table of {len(table)} {space.name} {granularity}s on {device.name} ({len(todo)} profiled now, "
          f"{seconds:.1f} s) -> {output}")
    ctx.tracker.log_artifact(output, "lookup_table", {"space": space.name, "device": device.name,
                                                      "granularity": granularity, "entries": len(table)})
    return {"n_layers": len(table), "n_profiled_now": len(todo), "profile_seconds": seconds}
