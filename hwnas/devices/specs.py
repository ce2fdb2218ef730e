"""Published hardware specifications of the devices in the reference tables (``specs.yaml``)."""
from __future__ import annotations

import functools
import re
from pathlib import Path

import yaml

from hwnas.devices.base import HardwareDescriptor

SPECS_FILE = Path(__file__).with_name("specs.yaml")
_BATCH_SUFFIX = re.compile(r"^(?P<hw>.+?)_(?:b)?(?P<batch>\d+)$")


@functools.lru_cache(maxsize=1)
def load_specs() -> dict[str, dict]:
    with open(SPECS_FILE, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def hardware_id(column: str) -> tuple[str, int]:
    """``'1080ti_32'`` -> ``('1080ti', 32)``; ``'rtx2080ti_b64'`` -> ``('rtx2080ti', 64)``; ``'note10_lut'`` -> ``('note10', 1)``."""
    specs = load_specs()
    if column in specs:
        return column, 1
    m = _BATCH_SUFFIX.match(column)
    if m and m.group("hw") in specs:
        return m.group("hw"), int(m.group("batch"))
    if column.endswith("_lut") and column[:-4] in specs:
        return column[:-4], 1
    return column, 1


def descriptor_for(column: str, batch_size: int | None = None) -> HardwareDescriptor:
    """Descriptor of a table column; a device not in ``specs.yaml`` gets an all-unknown one."""
    hw, batch = hardware_id(column)
    spec = load_specs().get(hw, {})
    return HardwareDescriptor(
        name=column, kind=spec.get("kind", "unknown"), model=spec.get("model", ""),
        cores=spec.get("cores"), memory_gb=spec.get("memory_gb"), bandwidth_gbs=spec.get("bandwidth_gbs"),
        peak_gflops=spec.get("peak_gflops"), batch_size=batch_size or batch, source=spec.get("source", ""),
    )
