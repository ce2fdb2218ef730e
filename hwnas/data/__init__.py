"""Reference data: where it lives, how to read it, how to fetch it.

``root`` finds the data root, ``tables`` reads and validates the published tables, and
``download`` fetches them from their original public sources (see ``manifest.yaml``).
"""
from hwnas.data.root import data_path, resolve_data_dir
from hwnas.data.tables import (
    AccuracyTable,
    LatencyTable,
    ProxyTable,
    WideTable,
    load_fbnet_latency,
    load_fbnet_proxies,
    load_nb201_accuracy,
    load_nb201_latency,
    load_syed,
    read_accuracy_table,
    read_latency_table,
    read_lut_yaml,
    read_proxy_table,
    read_wide_table,
    syed_pairs,
)

__all__ = [
    "AccuracyTable",
    "LatencyTable",
    "ProxyTable",
    "WideTable",
    "data_path",
    "load_fbnet_latency",
    "load_fbnet_proxies",
    "load_nb201_accuracy",
    "load_nb201_latency",
    "load_syed",
    "read_accuracy_table",
    "read_latency_table",
    "read_lut_yaml",
    "read_proxy_table",
    "read_wide_table",
    "resolve_data_dir",
    "syed_pairs",
]
