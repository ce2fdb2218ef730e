"""What a stored row depends on besides its key, as a flat ``{key: primitive}`` identity.

Keys are named like the config keys a user would change (``search_space.width_mult``,
``device.threads``), so a refused run's message says what differs in the user's own terms. A
file's rows are one dataset only if all of these are equal (:mod:`hwnas.measure.sharing`).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from omegaconf import OmegaConf


def options(prefix: str, node: Any, drop: Iterable[str] = ()) -> dict[str, Any]:
    """``{prefix.key: value}`` of a config node's options (resolved; nested keys dotted), minus ``drop``
    and Hydra's ``_target_``-style keys."""
    plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    skip = set(drop)
    out: dict[str, Any] = {}

    def walk(value: Any, name: str) -> None:
        if isinstance(value, Mapping) and value:
            for k, v in value.items():
                if not str(k).startswith("_") and str(k) not in skip:
                    walk(v, f"{name}.{k}")
        else:
            out[name] = value

    walk(plain, prefix)
    return out


def search_space(node: Any) -> dict[str, Any]:
    """The search space as configured: its name and every option (resolutions, width, classes, input size)."""
    return options("search_space", node)


def local_device(device) -> dict[str, Any]:
    """Everything a latency measured by a :class:`~hwnas.devices.LocalDevice` depends on besides the
    network: the hardware, runtime (its version, precision, options), threads, batch size, the timing
    protocol and the torch version (and the device's name, last: it usually follows from the others,
    which say better what differs)."""
    fp = device.fingerprint(())  # device, hardware, threads, torch, batch_size (input_shape: per row)
    runtime = {f"device.runtime.{k}": v for k, v in device.runtime.settings().items() if k != "runtime"}
    return {"device.kind": device.kind, "device.hardware": fp["hardware"], "device.runtime": fp["runtime"], **runtime,
            "device.threads": fp["threads"], "device.batch_size": fp["batch_size"], "device.warmup": device.warmup,
            "device.repeats": device.repeats, "device.number": device.number, "device.interleave": device.interleave,
            "device.settle": device.settle,
            "torch": fp["torch"], "device.name": fp["device"]}


def local_latency(rows: str, space_node: Any, device) -> dict[str, Any]:
    """Identity of latencies measured on this machine: what the rows are, the space, the device and protocol."""
    return {"rows": rows, **search_space(space_node), **local_device(device)}


