"""Devices: where latency comes from (measured here, a published/user table, or a lookup table)."""
from hwnas.devices.base import Device, HardwareDescriptor
from hwnas.devices.estimated import EstimatorDevice
from hwnas.devices.local import LocalDevice
from hwnas.devices.table import TableDevice

from hwnas.errors import ConfigError


def require_local(device, job: str, why: str) -> LocalDevice:
    """``device`` if it measures on this machine, else a one-line error for ``job``."""
    if not isinstance(device, LocalDevice):
        raise ConfigError(f"job={job} {why}: use device=local_cpu or device=local_cuda, not the table device {device.name}")
    return device


def require_table(device, job: str, why: str) -> TableDevice:
    """``device`` if it knows latencies from a table, else a one-line error for ``job``."""
    if not isinstance(device, TableDevice):
        raise ConfigError(f"job={job} {why}: use device=help, device=syed or device=table device.path=<CSV with "
                          f"arch, latency_ms, e.g. from job=measure>, not {device.name}")
    return device


__all__ = ["Device", "EstimatorDevice", "HardwareDescriptor", "LocalDevice", "TableDevice", "require_local",
           "require_table"]
