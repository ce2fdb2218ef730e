"""Fetch the reference data from its original public sources, every byte checked by sha256.

``manifest.yaml`` lists each file of the data root with its sha256, its source and licence and
where to get it. Released files are fetched as they are and kept only if their sha256 matches.
Files that were *derived* (tables assembled from the authors' per-device pickles, a reformatted
CSV) cannot be fetched as such: their upstream files are fetched into ``<dir>/upstream/`` and,
where the conversion is known exactly (``convert:``), the file is rebuilt and kept only if its
sha256 matches; otherwise the conversion is reported as pending. A mirror of the data tree
(``base_url_override``) serves every file, derived or not, at ``<mirror>/<relative path>``.

Nothing is ever written in place: each download goes to a temporary file beside its target and
is renamed over it (atomically) only after the checksum matched.
"""
from __future__ import annotations

import csv
import hashlib
import http.client
import os
import posixpath
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import yaml
from tqdm import tqdm

from hwnas.errors import ConfigError, DataError, choices_text

MANIFEST_PATH = Path(__file__).with_name("manifest.yaml")
UPSTREAM_DIR = "upstream"
URL_STATUSES = ("confirmed", "referenced", "inferred")
USER_AGENT = "hwnas-download/1 (python urllib)"
_CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# ---------------------------------------------------------------------------- manifest
@dataclass(frozen=True)
class RemoteFile:
    """One place a file can be fetched from; ``path`` places an upstream file below ``upstream/``."""

    url: str
    status: str
    path: str = ""
    manual: bool = False


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    sha256: str
    size: int
    source: str
    licence: str
    urls: tuple[RemoteFile, ...] = ()
    derived: bool = False
    upstream: tuple[RemoteFile, ...] = ()
    convert: str | None = None
    note: str = ""

    @property
    def dataset(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def upstream_dir(self) -> str:
        return posixpath.join(posixpath.dirname(self.path), UPSTREAM_DIR)


@dataclass(frozen=True)
class Manifest:
    sources: dict[str, dict]
    files: tuple[ManifestEntry, ...]

    @property
    def datasets(self) -> list[str]:
        return sorted({entry.dataset for entry in self.files})

    def select(self, only: str | Iterable[str] | None) -> list[ManifestEntry]:
        """Entries under the given relative-path prefixes (``nb201``, ``ofa/note10_lut``), in manifest order."""
        if only is None:
            return list(self.files)
        prefixes = [only] if isinstance(only, str) else list(only)
        if not prefixes:
            raise ConfigError(
                f"download.only is an empty list; use null for every file or list prefixes of "
                f"{choices_text(self.datasets)} (e.g. ofa/note10_lut)"
            )
        chosen: set[str] = set()
        for raw in prefixes:
            prefix = str(raw).strip().strip("/")
            matched = [e.path for e in self.files if prefix and (e.path == prefix or e.path.startswith(prefix + "/"))]
            if not matched:
                raise ConfigError(
                    f"download.only entry '{raw}' matches no data file; top-level datasets: "
                    f"{choices_text(self.datasets)} (a prefix may go deeper, e.g. ofa/note10_lut)"
                )
            chosen.update(matched)
        return [e for e in self.files if e.path in chosen]


def _safe_relative(path: object, where: str) -> str:
    text = str(path)
    parts = text.split("/")
    if not text or text.startswith("/") or "\\" in text or any(p in ("", ".", "..") for p in parts):
        raise DataError(f"{where}: path '{text}' must be a relative path without '.', '..' or empty parts")
    return text


def _remote_files(items: object, where: str, *, upstream: bool) -> tuple[RemoteFile, ...]:
    if not isinstance(items, list) or not items:
        raise DataError(f"{where}: expected a non-empty list of {{url, status}} items")
    out = []
    for i, item in enumerate(items):
        here = f"{where}[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            raise DataError(f"{here}: expected a mapping with a 'url' string")
        status = item.get("status")
        if status not in URL_STATUSES:
            raise DataError(f"{here}: status {status!r} is not one of {choices_text(URL_STATUSES)}")
        path = ""
        if upstream:
            default = posixpath.basename(urllib.parse.urlsplit(item["url"]).path)
            path = _safe_relative(item.get("path") or default, here)
        out.append(RemoteFile(url=item["url"], status=status, path=path, manual=bool(item.get("manual", False))))
    return tuple(out)


def load_manifest(path: str | os.PathLike | None = None) -> Manifest:
    """Read and check a manifest (by default the one shipped beside this module)."""
    path = Path(path) if path is not None else MANIFEST_PATH
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except OSError as exc:
        raise DataError(f"manifest '{path}' cannot be read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise DataError(f"manifest '{path}' is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list) or not isinstance(doc.get("sources"), dict):
        raise DataError(f"manifest '{path}' must be a mapping with 'sources' and a 'files' list")
    sources = doc["sources"]
    entries, seen = [], set()
    for i, item in enumerate(doc["files"]):
        where = f"manifest '{path}' files[{i}]"
        if not isinstance(item, dict):
            raise DataError(f"{where}: expected a mapping")
        rel = _safe_relative(item.get("path", ""), where)
        where = f"manifest '{path}' entry '{rel}'"
        if rel in seen:
            raise DataError(f"{where}: listed twice")
        seen.add(rel)
        sha = str(item.get("sha256", ""))
        if not _SHA256.match(sha):
            raise DataError(f"{where}: sha256 {sha!r} is not 64 lowercase hex digits")
        size = item.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise DataError(f"{where}: size {size!r} is not a byte count")
        source = item.get("source")
        if source not in sources:
            raise DataError(f"{where}: source {source!r} is not one of {choices_text(sources)}")
        derived = bool(item.get("derived", False))
        convert = item.get("convert")
        if convert is not None and convert not in CONVERTERS:
            raise DataError(f"{where}: convert {convert!r} is not one of {choices_text(CONVERTERS)}")
        entries.append(
            ManifestEntry(
                path=rel,
                sha256=sha,
                size=size,
                source=source,
                licence=str(item.get("licence") or sources[source].get("licence", "")),
                urls=() if derived else _remote_files(item.get("urls"), f"{where} urls", upstream=False),
                derived=derived,
                upstream=_remote_files(item.get("upstream"), f"{where} upstream", upstream=True) if derived else (),
                convert=convert if derived else None,
                note=str(item.get("note", "")),
            )
        )
    return Manifest(sources=sources, files=tuple(entries))


def file_sha256(path: str | os.PathLike) -> str:
    return file_digest(path, "sha256")


# ---------------------------------------------------------------------------- conversions
def convert_nats_bench_accuracy(upstream: Mapping[str, Path], out: Path) -> None:
    """``nats_bench.csv`` (v-tao/nats-bench-landscape) -> ``index, arch, cifar10, cifar100, imagenet16_120``.

    Row ``i`` of the upstream file is NAS-Bench-201 index ``i``; the numbers are copied as text so
    the result is byte-identical to the reference table (``csv`` module, CRLF line ends).
    """
    source = upstream["nats_bench.csv"]
    columns = {
        "arch": "ArchitectureString",
        "cifar10": "CIFAR10TestAccuracy200Epochs",
        "cifar100": "CIFAR100TestAccuracy200Epochs",
        "imagenet16_120": "ImageNetTestAccuracy200Epochs",
    }
    with open(source, encoding="utf-8", newline="") as fin, open(out, "w", encoding="utf-8", newline="") as fout:
        reader = csv.DictReader(fin)
        missing = [c for c in columns.values() if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(
                f"upstream table '{source}' has no column '{missing[0]}'; "
                f"columns present: {choices_text(reader.fieldnames or [])}"
            )
        writer = csv.writer(fout)
        writer.writerow(["index", *columns])
        for i, row in enumerate(reader):
            writer.writerow([i, *(row[c] for c in columns.values())])


Converter = Callable[[Mapping[str, Path], Path], None]
CONVERTERS: dict[str, Converter] = {"nats_bench_accuracy": convert_nats_bench_accuracy}


# ---------------------------------------------------------------------------- fetching
class _FetchFailed(Exception):
    """A URL that did not yield the expected bytes; ``reason`` is one line."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _fetch(url: str, dest: Path, *, timeout: float, expected_sha256: str | None, label: str, progress: bool | None,
           algorithm: str = "sha256") -> int:
    """Stream ``url`` into ``dest`` via a temp file beside it; returns the byte count.

    ``expected_sha256`` is the expected hex digest under ``algorithm`` (sha256 unless a source
    publishes another, as the CIFAR page publishes md5).
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as exc:
        raise DataError(f"cannot write into '{dest.parent}': {exc.strerror}") from None
    tmp = Path(tmp_name)
    digest, nbytes = hashlib.new(algorithm), 0
    try:
        try:
            request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            with urllib.request.urlopen(request, timeout=timeout) as response, os.fdopen(fd, "wb") as out:
                fd = -1
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                with tqdm(total=total, unit="B", unit_scale=True, desc=label, leave=False,
                          disable=None if progress is None else not progress) as bar:
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        nbytes += len(chunk)
                        bar.update(len(chunk))
        except urllib.error.HTTPError as exc:
            raise _FetchFailed(f"HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise _FetchFailed(" ".join(str(exc.reason).split())) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise _FetchFailed(" ".join(str(exc).split()) or type(exc).__name__) from None
        got = digest.hexdigest()
        if expected_sha256 is not None and got != expected_sha256:
            raise _FetchFailed(f"{algorithm} mismatch: got {got}")
        os.replace(tmp, dest)
        return nbytes
    finally:
        if fd >= 0:
            os.close(fd)
        if tmp.exists():
            tmp.unlink()


def _fetch_verified(entry: ManifestEntry, urls: Iterable[str], dest: Path, *, timeout: float, progress) -> int:
    """The first URL whose bytes match the manifest wins; DataError naming every attempt otherwise."""
    failures = []
    for url in urls:
        try:
            return _fetch(url, dest, timeout=timeout, expected_sha256=entry.sha256, label=entry.path, progress=progress)
        except _FetchFailed as exc:
            failures.append(f"{url} -> {exc.reason}")
    raise DataError(
        f"could not fetch '{entry.path}' (expected sha256 {entry.sha256}): {'; '.join(failures)}; nothing was written"
    )


def fetch_file(url: str, dest: str | os.PathLike, *, checksum: tuple[str, str] | None, timeout: float = 60,
               progress: bool | None = None) -> Path:
    """Download one file (not in the manifest) to ``dest``, atomically, kept only if ``checksum`` matches.

    ``checksum`` is ``(algorithm, hexdigest)`` as the source publishes it, e.g. ``("md5", "...")``.
    """
    dest = Path(dest)
    algorithm, expected = checksum if checksum else ("sha256", None)
    try:
        _fetch(url, dest, timeout=timeout, expected_sha256=expected, label=dest.name, progress=progress,
               algorithm=algorithm)
    except _FetchFailed as exc:
        raise DataError(f"could not fetch {url} -> '{dest}': {exc.reason}; nothing was written") from None
    return dest


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _say(message: str) -> None:
    tqdm.write(message)


def download(
    data_dir: str | os.PathLike,
    only: str | Iterable[str] | None = None,
    force: bool = False,
    base_url_override: str | None = None,
    timeout: float = 60,
    *,
    manifest: Manifest | str | os.PathLike | None = None,
    progress: bool | None = None,
) -> dict:
    """Bring ``data_dir`` up to the manifest; returns counts (``files_*``, ``upstream_*``) and details.

    Files already present with the right sha256 are left alone unless ``force``. A derived file
    that cannot be rebuilt here is counted in ``files_derived_pending`` and listed in ``pending``.
    """
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest)
    entries = manifest.select(only)
    root = Path(data_dir).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"data root '{root}' cannot be created: {exc.strerror}") from None
    mirror = (base_url_override or "").strip().rstrip("/") or None

    counts = dict.fromkeys(
        ["files_present", "files_downloaded", "files_converted", "files_derived_pending",
         "upstream_downloaded", "upstream_present", "upstream_failed", "upstream_manual", "bytes_downloaded"], 0)
    statuses: dict[str, str] = {}
    pending: list[dict] = []

    def fetch_upstream(entry: ManifestEntry, *, strict: bool) -> tuple[dict[str, Path], list[str], list[str]]:
        folder = root / entry.upstream_dir
        paths, failed, manual = {}, [], []
        for remote in entry.upstream:
            target = folder / remote.path
            paths[remote.path] = target
            if remote.manual:
                if not target.exists():
                    manual.append(f"{remote.url} -> {target}")
                continue
            if target.exists() and not force:
                counts["upstream_present"] += 1
                continue
            try:
                counts["bytes_downloaded"] += _fetch(
                    remote.url, target, timeout=timeout, expected_sha256=None, label=remote.path, progress=progress
                )
                counts["upstream_downloaded"] += 1
            except _FetchFailed as exc:
                if strict:
                    raise DataError(
                        f"could not fetch upstream file '{remote.path}' of '{entry.path}' from {remote.url}: {exc.reason}"
                    ) from None
                failed.append(f"{remote.url} -> {exc.reason}")
        counts["upstream_failed"] += len(failed)
        counts["upstream_manual"] += len(manual)
        return paths, failed, manual

    with tqdm(entries, desc="hwnas data", unit="file", disable=None if progress is None else not progress) as bar:
        for entry in bar:
            dest = root / entry.path
            if not force and dest.is_file() and file_sha256(dest) == entry.sha256:
                counts["files_present"] += 1
                statuses[entry.path] = "present"
                continue
            if mirror is not None or not entry.derived:
                urls = [f"{mirror}/{urllib.parse.quote(entry.path)}"] if mirror else [r.url for r in entry.urls]
                counts["bytes_downloaded"] += _fetch_verified(entry, urls, dest, timeout=timeout, progress=progress)
                counts["files_downloaded"] += 1
                statuses[entry.path] = "downloaded"
            elif entry.convert is not None:
                upstream, _, _ = fetch_upstream(entry, strict=True)
                _rebuild(entry, upstream, dest)
                counts["files_converted"] += 1
                statuses[entry.path] = "converted"
            elif dest.is_file() and file_sha256(dest) == entry.sha256:
                counts["files_present"] += 1  # forced, but nothing here can rebuild it
                statuses[entry.path] = "present"
            else:
                _, failed, manual = fetch_upstream(entry, strict=False)
                counts["files_derived_pending"] += 1
                statuses[entry.path] = "pending"
                folder = root / entry.upstream_dir
                pending.append({"path": entry.path, "upstream_dir": str(folder), "note": entry.note,
                                "failed": failed, "manual": manual})
                _say(
                    f"{entry.path} is a derived table: its upstream files are in '{folder}'; converting them to "
                    f"the CSV is still needed (see its note in {MANIFEST_PATH.name})"
                    + (f"; download by hand: {'; '.join(manual)}" if manual else "")
                    + (f"; failed: {'; '.join(failed)}" if failed else "")
                )

    report: dict = {"data_dir": str(root.resolve()), "files_total": len(entries), **counts,
                    "files": statuses, "pending": pending}
    _say(
        f"hwnas data in '{report['data_dir']}': {counts['files_present']} present, "
        f"{counts['files_downloaded']} downloaded, {counts['files_converted']} rebuilt, "
        f"{counts['files_derived_pending']} derived tables pending conversion"
    )
    return report


def _rebuild(entry: ManifestEntry, upstream: Mapping[str, Path], dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        CONVERTERS[entry.convert](upstream, tmp)
        got = file_sha256(tmp)
        if got != entry.sha256:
            raise DataError(
                f"rebuilt '{entry.path}' has sha256 {got}, expected {entry.sha256}: the upstream files differ "
                f"from those the reference table was made from; the rebuilt file was discarded "
                f"(upstream files kept in '{next(iter(upstream.values())).parent}')"
            )
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
