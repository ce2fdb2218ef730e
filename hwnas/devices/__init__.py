"""Devices: where latency comes from (measured here, or a published/user table)."""
from hwnas.devices.base import Device, HardwareDescriptor
from hwnas.devices.local import LocalDevice
from hwnas.devices.table import TableDevice

__all__ = ["Device", "HardwareDescriptor", "LocalDevice", "TableDevice"]
