"""Rebuild the upstream fixtures ``tests/data/upstream`` from the authors' full upstream files.

Usage: python tests/data/upstream/make_upstream.py FULL_UPSTREAM_ROOT

``FULL_UPSTREAM_ROOT`` is laid out as ``hwnas job=download`` leaves a data root: the upstream
files of ``<dir>/<table>`` in ``<dir>/upstream/<manifest upstream path>`` (e.g.
``nb201/upstream/latency/pixel2.pt``); each must have the sha256 the manifest pins. Every file is
cut to the entries of the first ``ROWS`` architectures, in its own format, and written to
``tests/data/upstream/<dir>/<manifest upstream path>``:

- CSV (``nats_bench.csv``, Syed et al.'s datasets): the header and the first ``ROWS`` lines, bytes
  as they are.
- HELP ``latency/<device>.pt``: the first ``ROWS`` latencies of the list.
- HELP ``str_arch2idx.pt``: the entries with index < ``ROWS``, in file order.
- HELP ``metainfo.pt``: ``arch`` cut to its first ``ROWS`` items, the other keys as they are.
- NASFLAT ``zc_fbnet.json``: the entries of the first ``ROWS`` architectures of ``metainfo.pt``,
  in file order, written with ``indent=4`` as upstream (re-dumping the full file so gives its
  exact bytes).

The ``.pt`` files are written in HELP's container: a stored (uncompressed) zip holding
``archive/data.pkl`` (a protocol-2 pickle, as ``torch.save`` writes; re-pickling HELP's full
files so gives their exact ``data.pkl`` bytes) and ``archive/version`` copied from the source.
Only the zip framing differs from torch's writer (no alignment padding), which ``torch.load``
does not need. The output is deterministic. See PROVENANCE.md for sources and licences.
"""
from __future__ import annotations

import hashlib
import json
import pickle
import posixpath
import shutil
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
ROWS = 300
PT_RECORDS = ("archive/data.pkl", "archive/version")


def read_pt(path: Path):
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        if names != list(PT_RECORDS):
            raise SystemExit(f"{path}: expected the records {PT_RECORDS}, found {names}")
        return pickle.loads(zf.read(PT_RECORDS[0])), zf.read(PT_RECORDS[1])


def write_pt(path: Path, obj, version: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in zip(PT_RECORDS, (pickle.dumps(obj, protocol=2), version)):
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)


def head_lines(src: Path, dest: Path, rows: int) -> None:
    with open(src, "rb") as fin:
        lines = [fin.readline() for _ in range(rows + 1)]
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(b"".join(lines))


def subset(name: str, src: Path, dest: Path, folder: Path) -> None:
    if name.endswith(".csv"):
        head_lines(src, dest, ROWS)
    elif name.startswith("latency/") and name.endswith(".pt"):
        values, version = read_pt(src)
        write_pt(dest, values[:ROWS], version)
    elif name == "str_arch2idx.pt":
        index, version = read_pt(src)
        write_pt(dest, {arch: i for arch, i in index.items() if i < ROWS}, version)
    elif name == "metainfo.pt":
        meta, version = read_pt(src)
        write_pt(dest, {**meta, "arch": meta["arch"][:ROWS]}, version)
    elif name == "zc_fbnet.json":
        meta, _ = read_pt(folder / "metainfo.pt")
        keep = {"_".join(map(str, a["op_idx_list"])) for a in meta["arch"][:ROWS]}
        with open(src, encoding="utf-8") as fh:
            proxies = json.load(fh)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(json.dumps({k: v for k, v in proxies.items() if k in keep}, indent=4), encoding="utf-8")
    else:
        raise SystemExit(f"no subset rule for upstream file '{name}'")


def main(full: Path) -> None:
    sys.path.insert(0, str(REPO))
    from hwnas.data.download import load_manifest

    for child in HERE.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
    done = set()
    for entry in load_manifest().files:
        if not entry.derived:
            continue
        table_dir = posixpath.dirname(entry.path)
        folder = full / entry.upstream_dir
        for remote in entry.upstream:
            if (table_dir, remote.path) in done:
                continue
            src = folder / remote.path
            got = hashlib.sha256(src.read_bytes()).hexdigest()
            if remote.sha256 and got != remote.sha256:
                raise SystemExit(f"{src}: sha256 {got}, the manifest pins {remote.sha256} ({remote.url})")
            subset(remote.path, src, HERE / table_dir / remote.path, folder)
            done.add((table_dir, remote.path))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__.split("\n\n")[1])
    main(Path(sys.argv[1]).resolve())
