"""Rebuild the fixture data root ``tests/data/root`` from a full data root (``../shared/data``).

Usage: python tests/data/make_root.py [FULL_DATA_ROOT]

Every table keeps its header and its first ``ROWS`` data rows, byte for byte (same line ends),
so a test on the fixture root reads exactly what it would read in the full table's first rows;
small released files (a few lookup tables, OFA's Note10 specialized configs, ProxylessNAS's
table) are copied whole. See PROVENANCE.md beside this script for sources and licences.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROWS = 300
HERE = Path(__file__).resolve().parent
ROOT = HERE / "root"

TABLES = [
    "nb201/latency_help.csv",
    "nb201/accuracy_200ep.csv",
    "fbnet/latency_help.csv",
    "fbnet/zero_cost_proxies.csv",
    "ofa/syed/*.csv",
]
WHOLE = [
    "ofa/note10_lut/note10_160_lookup_table.yaml",
    "ofa/note10_lut/note10_176_lookup_table.yaml",
    "ofa/note10_lut/note10_192_lookup_table.yaml",
    "ofa/note10_lut/note10_208_lookup_table.yaml",
    "ofa/note10_lut/note10_224_lookup_table.yaml",
    "ofa/specialized/note10_*/*",
    "proxyless/mobile_trim.yaml",
]


def head_lines(src: Path, dest: Path, rows: int) -> None:
    """Header + ``rows`` lines of ``src``; quoted fields of these tables hold no line breaks."""
    with open(src, "rb") as fin:
        lines = [fin.readline() for _ in range(rows + 1)]
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(b"".join(lines))


def main(full: Path) -> None:
    if ROOT.exists():
        shutil.rmtree(ROOT)
    for pattern in TABLES:
        for src in sorted(full.glob(pattern)):
            head_lines(src, ROOT / src.relative_to(full), ROWS)
    for pattern in WHOLE:
        for src in sorted(full.glob(pattern)):
            dest = ROOT / src.relative_to(full)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "data").resolve())
