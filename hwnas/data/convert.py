"""Converters from the authors' upstream files to the tables of the data root.

Each converter reads the upstream files of one derived table (``upstream``: the manifest's
upstream ``path`` -> the local file) and writes the table to ``out``. They reproduce the reference
tables byte for byte: the ``csv`` module with its default dialect (CRLF line ends, quoting only
where needed), numbers written as Python writes them (``repr`` of a float, ints as ints) or
copied as text where the upstream file is text.

Upstream formats (see ``manifest.yaml`` for the exact URLs and commits):

- HELP (github.com/HayeonLee/HELP), ``data/<space>/latency/<device>.pt``: a ``torch.save`` of a
  plain list of latencies in ms, one per architecture (ints for the whole-ms phones, floats
  otherwise). NAS-Bench-201 architectures come from ``data/nasbench201/str_arch2idx.pt`` (a dict
  NAS-Bench-201 string -> index), FBNet ones from ``data/fbnet/metainfo.pt`` (a dict whose
  ``arch`` is a list of ``{"op_idx_list": [22 ints], "arch_str": [22 op names]}``).
- NASFLAT (github.com/abdelfattah-lab/nasflat_latency), ``fbnet_zcp/zc_fbnet.json``: a JSON object
  ``"<22 op indices joined by _>" -> {proxy: value}`` for HELP's 5,000 FBNet architectures.
- Syed et al. (github.com/RhythmSyed/NAS_PerformanceEstimation),
  ``tutorial/latency_predictor/datasets/<device>/<name>.csv``: columns ``child_arch, latency``,
  ``child_arch`` an OFA sample dict as a Python literal (``{'wid': None, 'ks': [...], 'e': [...],
  'd': [...], 'r': [176]}``).
- NATS-Bench as tabulated by v-tao/nats-bench-landscape, ``nats_bench.csv``: one row per
  architecture in NAS-Bench-201 index order.
"""
from __future__ import annotations

import ast
import csv
import json
import posixpath
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from hwnas.errors import DataError, choices_text

Converter = Callable[[Mapping[str, Path], Path], None]

_LATENCY_DIR = "latency"
_NB201_INDEX = "str_arch2idx.pt"
_FBNET_META = "metainfo.pt"
_NASFLAT_ZC = "zc_fbnet.json"
_NATS_CSV = "nats_bench.csv"


# ---------------------------------------------------------------------------- reading
def _needed(upstream: Mapping[str, Path], name: str) -> Path:
    if name not in upstream:
        raise DataError(f"this conversion needs the upstream file '{name}'; given: {choices_text(sorted(upstream))}")
    return upstream[name]


def _load_pt(path: Path):
    """A HELP ``.pt`` file. They hold only lists, dicts, strings and numbers, so the restricted
    unpickler (``weights_only=True``) reads them and nothing in them can run code."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, pickle.UnpicklingError, zipfile errors, ...
        reason = " ".join(str(exc).split())[:300]
        raise DataError(f"upstream file '{path}' is not a readable torch file: {reason}") from None


def _numbers(path: Path, count: int | None = None) -> list[int | float]:
    values = _load_pt(path)
    if not isinstance(values, list) or not all(type(v) in (int, float) for v in values):
        raise DataError(
            f"upstream file '{path}' should hold a list of latencies (numbers); got {type(values).__name__}")
    if count is not None and len(values) != count:
        raise DataError(
            f"upstream file '{path}' holds {len(values)} latencies, expected {count} (one per architecture)")
    return values


def _devices(upstream: Mapping[str, Path]) -> list[tuple[str, Path]]:
    """The ``latency/<device>.pt`` files, by device name (the column order of the tables)."""
    found = sorted(
        (posixpath.splitext(posixpath.basename(name))[0], path)
        for name, path in upstream.items()
        if posixpath.dirname(name) == _LATENCY_DIR and name.endswith(".pt")
    )
    if not found:
        raise DataError(f"no '{_LATENCY_DIR}/<device>.pt' among the upstream files {choices_text(sorted(upstream))}")
    return found


def _fbnet_archs(path: Path) -> list[tuple[list[int], str]]:
    """``metainfo.pt`` -> (op indices, ``-``-joined op names) of each architecture, in order."""
    from hwnas.spaces.fbnet import OPS

    meta = _load_pt(path)
    archs = meta.get("arch") if isinstance(meta, dict) else None
    if not isinstance(archs, list):
        raise DataError(f"upstream file '{path}' should be a dict with an 'arch' list (HELP's FBNet metainfo)")
    out = []
    for i, item in enumerate(archs):
        ops = item.get("op_idx_list") if isinstance(item, dict) else None
        if not isinstance(ops, list) or not all(type(o) is int and 0 <= o < len(OPS) for o in ops):
            raise DataError(f"upstream file '{path}' arch[{i}]: op_idx_list should list op indices 0..{len(OPS) - 1}")
        names = [OPS[o] for o in ops]
        if "arch_str" in item and list(item["arch_str"]) != names:
            raise DataError(
                f"upstream file '{path}' arch[{i}]: arch_str {item['arch_str']} does not spell op_idx_list {ops}")
        out.append((ops, "-".join(names)))
    return out


def _write_rows(out: Path, header: Sequence[str], rows: Iterator[Sequence]) -> None:
    with open(out, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


# ---------------------------------------------------------------------------- converters
def convert_help_nb201_latency(upstream: Mapping[str, Path], out: Path) -> None:
    """HELP's NAS-Bench-201 latencies -> ``index, arch, <device columns>`` (devices by name)."""
    index_file = _needed(upstream, _NB201_INDEX)
    arch_of = _load_pt(index_file)
    if not isinstance(arch_of, dict) or not all(isinstance(k, str) and type(v) is int for k, v in arch_of.items()):
        raise DataError(f"upstream file '{index_file}' should map NAS-Bench-201 strings to indices")
    archs = {index: arch for arch, index in arch_of.items()}
    if sorted(archs) != list(range(len(arch_of))):
        raise DataError(f"upstream file '{index_file}': the indices are not 0..{len(arch_of) - 1}, each once")
    devices = _devices(upstream)
    columns = [_numbers(path, len(archs)) for _, path in devices]
    _write_rows(out, ["index", "arch", *(name for name, _ in devices)],
                ([i, archs[i], *(column[i] for column in columns)] for i in range(len(archs))))


def convert_help_fbnet_latency(upstream: Mapping[str, Path], out: Path) -> None:
    """HELP's FBNet latencies -> ``index, arch, <device columns>``, ``arch`` the 22 op names joined by ``-``."""
    archs = _fbnet_archs(_needed(upstream, _FBNET_META))
    devices = _devices(upstream)
    columns = [_numbers(path, len(archs)) for _, path in devices]
    _write_rows(out, ["index", "arch", *(name for name, _ in devices)],
                ([i, arch, *(column[i] for column in columns)] for i, (_, arch) in enumerate(archs)))


def convert_nasflat_zero_cost_proxies(upstream: Mapping[str, Path], out: Path) -> None:
    """NASFLAT's ``zc_fbnet.json`` in the order of HELP's FBNet architectures -> ``index, arch, <proxies>``
    (proxies by name)."""
    source = _needed(upstream, _NASFLAT_ZC)
    archs = _fbnet_archs(_needed(upstream, _FBNET_META))
    try:
        with open(source, encoding="utf-8") as fh:
            proxies = json.load(fh)
    except (OSError, ValueError) as exc:
        raise DataError(f"upstream file '{source}' is not readable JSON: {exc}") from None
    if not isinstance(proxies, dict) or not proxies or not all(isinstance(v, dict) for v in proxies.values()):
        raise DataError(f"upstream file '{source}' should map architectures to {{proxy: value}} objects")
    names = sorted(next(iter(proxies.values())))
    rows = []
    for i, (ops, arch) in enumerate(archs):
        key = "_".join(map(str, ops))
        values = proxies.get(key)
        if values is None:
            raise DataError(f"upstream file '{source}' has no proxies for FBNet architecture {i} (key '{key}')")
        if sorted(values) != names:
            raise DataError(f"upstream file '{source}' key '{key}': proxies {choices_text(sorted(values))}, "
                            f"expected {choices_text(names)}")
        rows.append([i, arch, *(values[n] for n in names)])
    _write_rows(out, ["index", "arch", *names], iter(rows))


def convert_syed_latency(upstream: Mapping[str, Path], out: Path) -> None:
    """One Syed et al. dataset CSV -> ``arch, latency_ms``: ``arch`` compact JSON ``{"ks","e","d","r"}`` with
    ``r`` an int, the latency copied as text, rows in file order."""
    if len(upstream) != 1:
        raise DataError(f"this conversion reads one upstream CSV; given {choices_text(sorted(upstream))}")
    source = next(iter(upstream.values()))

    def rows(reader: csv.DictReader) -> Iterator[list[str]]:
        for line, row in enumerate(reader, start=2):
            try:
                sample = ast.literal_eval(row["child_arch"])
                r = sample["r"][0] if isinstance(sample["r"], list) else sample["r"]
                arch = {"ks": sample["ks"], "e": sample["e"], "d": sample["d"], "r": int(r)}
            except (ValueError, SyntaxError, TypeError, KeyError, IndexError):
                raise DataError(f"upstream file '{source}' line {line}: child_arch {row['child_arch']!r} is not an "
                                f"OFA sample dict with ks, e, d and r") from None
            yield [json.dumps(arch, separators=(",", ":")), row["latency"]]

    with open(source, encoding="utf-8", newline="") as fin:
        reader = csv.DictReader(fin)
        _require(reader, source, ["child_arch", "latency"])
        _write_rows(out, ["arch", "latency_ms"], rows(reader))


def convert_nats_bench_accuracy(upstream: Mapping[str, Path], out: Path) -> None:
    """``nats_bench.csv`` -> ``index, arch, cifar10, cifar100, imagenet16_120``: index = row number,
    accuracies copied as text."""
    source = _needed(upstream, _NATS_CSV)
    columns = {
        "arch": "ArchitectureString",
        "cifar10": "CIFAR10TestAccuracy200Epochs",
        "cifar100": "CIFAR100TestAccuracy200Epochs",
        "imagenet16_120": "ImageNetTestAccuracy200Epochs",
    }
    with open(source, encoding="utf-8", newline="") as fin:
        reader = csv.DictReader(fin)
        _require(reader, source, columns.values())
        _write_rows(out, ["index", *columns],
                    ([i, *(row[c] for c in columns.values())] for i, row in enumerate(reader)))


def _require(reader: csv.DictReader, source: Path, names) -> None:
    present = reader.fieldnames or []
    missing = [c for c in names if c not in present]
    if missing:
        raise DataError(
            f"upstream table '{source}' has no column '{missing[0]}'; columns present: {choices_text(present)}")


CONVERTERS: dict[str, Converter] = {
    "help_nb201_latency": convert_help_nb201_latency,
    "help_fbnet_latency": convert_help_fbnet_latency,
    "nasflat_zero_cost_proxies": convert_nasflat_zero_cost_proxies,
    "syed_latency": convert_syed_latency,
    "nats_bench_accuracy": convert_nats_bench_accuracy,
}
