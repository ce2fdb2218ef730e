"""Fetch the reference data from its original public sources, every byte checked by sha256.

``manifest.yaml`` lists each file of the data root with its sha256, its source and licence and
where to get it. Released files are fetched as they are and kept only if their sha256 matches.
Files that were *derived* (tables assembled from the authors' per-device pickles, a reformatted
CSV) cannot be fetched as such: their upstream files are fetched into ``<dir>/upstream/`` (each
checked against its own sha256 where the manifest pins one), converted by the manifest's
``convert`` step (:mod:`hwnas.data.convert`), and the table is kept only if its sha256 matches.
A mirror of the data tree (``base_url_override``) serves every file, derived or not, at
``<mirror>/<relative path>``.

Resumable: files (and upstream files) already present with the right sha256 are not fetched
again. Nothing is ever written in place: each download goes to a temporary file beside its target
and is renamed over it (atomically) only after the checksum matched. A file that cannot be
fetched does not stop the others: each dataset with missing files gets one line naming them and
where to put them by hand, and :func:`download` raises :class:`DataError` at the end.
"""
from __future__ import annotations

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
from typing import Iterable, Mapping

import yaml
from tqdm import tqdm

from hwnas.data.convert import CONVERTERS
from hwnas.errors import ConfigError, DataError, choices_text
from hwnas.io import file_digest

MANIFEST_PATH = Path(__file__).with_name("manifest.yaml")
UPSTREAM_DIR = "upstream"
URL_STATUSES = ("confirmed", "referenced", "inferred")
USER_AGENT = "hwnas-download/1 (python urllib)"
_CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# ---------------------------------------------------------------------------- manifest
@dataclass(frozen=True)
class RemoteFile:
    """One place a file can be fetched from; ``path`` places an upstream file below ``upstream/``,
    ``sha256`` (upstream files) is that of the file as published, ``manual`` marks a URL that needs
    a browser (the file is put in place by hand)."""

    url: str
    status: str
    path: str = ""
    manual: bool = False
    sha256: str | None = None


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
        path, sha = "", None
        if upstream:
            default = posixpath.basename(urllib.parse.urlsplit(item["url"]).path)
            path = _safe_relative(item.get("path") or default, here)
            if item.get("sha256") is not None:
                sha = str(item["sha256"])
                if not _SHA256.match(sha):
                    raise DataError(f"{here}: sha256 {sha!r} is not 64 lowercase hex digits")
        out.append(RemoteFile(url=item["url"], status=status, path=path, manual=bool(item.get("manual", False)),
                              sha256=sha))
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
        if derived and convert not in CONVERTERS:
            raise DataError(f"{where}: a derived file needs a convert step; {convert!r} is not one of "
                            f"{choices_text(CONVERTERS)}")
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


# ---------------------------------------------------------------------------- fetching
class _FetchFailed(Exception):
    """A URL that did not yield the expected bytes; ``reason`` is one line; ``unreachable``: no
    connection could be made at all (name lookup, refused, connect timeout)."""

    def __init__(self, reason: str, unreachable: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable


class _NotFetched(DataError):
    """One manifest file that could not be brought here; ``reason`` is its first cause, short;
    ``by_hand`` where the file (or, with ``upstream``, its upstream files) go when fetched by hand."""

    def __init__(self, message: str, reason: str, by_hand: Path, upstream: bool = False):
        super().__init__(message)
        self.reason = reason
        self.by_hand = by_hand
        self.upstream = upstream


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
    digest, nbytes, connected = hashlib.new(algorithm), 0, False
    try:
        try:
            request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            with urllib.request.urlopen(request, timeout=timeout) as response, os.fdopen(fd, "wb") as out:
                fd, connected = -1, True
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
            raise _FetchFailed(" ".join(str(exc.reason).split()), unreachable=not connected) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise _FetchFailed(" ".join(str(exc).split()) or type(exc).__name__,
                               unreachable=not connected and isinstance(exc, OSError)) from None
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


class _Fetcher:
    """``_fetch`` for one download run: remembers hosts that could not be reached at all and skips
    their other URLs (an offline run ends in seconds, not a timeout per file)."""

    def __init__(self, timeout: float, progress: bool | None):
        self.timeout, self.progress = timeout, progress
        self.unreachable: dict[str, str] = {}
        self.bytes = 0

    def __call__(self, url: str, dest: Path, expected_sha256: str | None, label: str) -> None:
        host = urllib.parse.urlsplit(url).netloc
        if host in self.unreachable:
            raise _FetchFailed(self.unreachable[host], unreachable=True)
        try:
            self.bytes += _fetch(url, dest, timeout=self.timeout, expected_sha256=expected_sha256, label=label,
                                 progress=self.progress)
        except _FetchFailed as exc:
            if not exc.unreachable:
                raise
            self.unreachable[host] = f"{host} unreachable ({exc.reason})"
            raise _FetchFailed(self.unreachable[host], unreachable=True) from None

    def verified(self, entry: ManifestEntry, urls: Iterable[str], dest: Path) -> None:
        """The first URL whose bytes match the manifest wins; :class:`_NotFetched` naming every attempt otherwise."""
        failures = []
        for url in urls:
            try:
                return self(url, dest, entry.sha256, entry.path)
            except _FetchFailed as exc:
                failures.append((url, exc.reason))
        raise _NotFetched(
            f"could not fetch '{entry.path}' (expected sha256 {entry.sha256}): "
            f"{'; '.join(f'{url} -> {why}' for url, why in failures)}; nothing was written",
            failures[0][1] if failures else "no URL", dest,
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

    Files already present with the right sha256 are left alone unless ``force`` (upstream files
    too). Every file is attempted; if some could not be fetched or rebuilt, one line per dataset
    says which and where to put them by hand, and :class:`DataError` is raised at the end (its
    ``report`` attribute holds the report, with each failure in ``failed``).
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
    fetch = _Fetcher(timeout, progress)

    counts = dict.fromkeys(
        ["files_present", "files_downloaded", "files_converted", "files_failed",
         "upstream_downloaded", "upstream_present", "upstream_failed", "upstream_manual"], 0)
    statuses: dict[str, str] = {}
    failed: list[dict] = []

    def fetch_upstream(entry: ManifestEntry) -> dict[str, Path]:
        folder = root / entry.upstream_dir
        paths, problems = {}, []
        for remote in entry.upstream:
            target = folder / remote.path
            paths[remote.path] = target
            if (target.is_file() and (not force or remote.manual)
                    and (remote.sha256 is None or file_sha256(target) == remote.sha256)):
                counts["upstream_present"] += 1
                continue
            if remote.manual:
                counts["upstream_manual"] += 1
                problems.append((f"download {remote.url} by hand into '{target}'"
                                 + (" (the file there has another sha256)" if target.exists() else ""),
                                 "needs a download by hand"))
                continue
            try:
                fetch(remote.url, target, remote.sha256, f"{entry.upstream_dir}/{remote.path}")
                counts["upstream_downloaded"] += 1
            except _FetchFailed as exc:
                counts["upstream_failed"] += 1
                problems.append((f"{remote.url} -> {exc.reason}", exc.reason))
        if problems:
            raise _NotFetched(
                f"could not fetch {len(problems)} of the {len(entry.upstream)} upstream files of '{entry.path}' "
                f"into '{folder}': {'; '.join(text for text, _ in problems)}",
                problems[0][1], folder, upstream=True,
            )
        return paths

    with tqdm(entries, desc="hwnas data", unit="file", disable=None if progress is None else not progress) as bar:
        for entry in bar:
            dest = root / entry.path
            if not force and dest.is_file() and file_sha256(dest) == entry.sha256:
                counts["files_present"] += 1
                statuses[entry.path] = "present"
                continue
            try:
                if mirror is not None or not entry.derived:
                    urls = [f"{mirror}/{urllib.parse.quote(entry.path)}"] if mirror else [r.url for r in entry.urls]
                    fetch.verified(entry, urls, dest)
                    counts["files_downloaded"] += 1
                    statuses[entry.path] = "downloaded"
                else:
                    _rebuild(entry, fetch_upstream(entry), dest, root / entry.upstream_dir)
                    counts["files_converted"] += 1
                    statuses[entry.path] = "converted"
            except _NotFetched as exc:
                counts["files_failed"] += 1
                statuses[entry.path] = "failed"
                failed.append({"path": entry.path, "dataset": entry.dataset, "error": str(exc),
                               "reason": exc.reason, "by_hand": str(exc.by_hand), "upstream": exc.upstream})

    report: dict = {"data_dir": str(root.resolve()), "files_total": len(entries), **counts,
                    "bytes_downloaded": fetch.bytes, "files": statuses, "failed": failed}
    for line in _missing_lines(root, entries, failed):
        _say(line)
    _say(
        f"hwnas data in '{report['data_dir']}': {counts['files_present']} present, "
        f"{counts['files_downloaded']} downloaded, {counts['files_converted']} rebuilt from upstream files, "
        f"{counts['files_failed']} not fetched"
        + (f" (their URLs and upstream file names: {MANIFEST_PATH})" if failed else "")
    )
    if failed:
        if len(failed) == 1:
            error = DataError(failed[0]["error"])
        else:
            datasets = sorted({f["dataset"] for f in failed})
            error = DataError(
                f"{len(failed)} of {len(entries)} data files were not fetched into '{report['data_dir']}' "
                f"({', '.join(datasets)}; first cause: {failed[0]['reason']}); the lines above say where each "
                f"dataset's files go by hand"
            )
        error.report = report
        raise error
    return report


def _missing_lines(root: Path, entries: list[ManifestEntry], failed: list[dict]) -> list[str]:
    """One line per dataset with files not fetched: how many, why, where to put them by hand."""
    lines = []
    for dataset in sorted({f["dataset"] for f in failed}):
        mine = [f for f in failed if f["dataset"] == dataset]
        total = sum(1 for e in entries if e.dataset == dataset)
        reasons = list(dict.fromkeys(f["reason"] for f in mine))
        others = len(reasons) - 1
        why = reasons[0] + (f"; {others} other cause{'s' if others > 1 else ''}" if others else "")
        upstream = sorted({f["by_hand"] for f in mine if f["upstream"]})
        released = [f for f in mine if not f["upstream"]]
        places = []
        if released:
            places.append(f"the file at '{released[0]['by_hand']}'" if len(released) == 1
                          else f"the files at their manifest paths under '{root / dataset}'")
        if upstream:
            places.append("the upstream files in " + ", ".join(f"'{u}'" for u in upstream))
        names = ", ".join(f["path"] for f in mine[:3]) + (f" and {len(mine) - 3} more" if len(mine) > 3 else "")
        lines.append(f"{dataset}: {len(mine)} of {total} files not fetched ({names}: {why}); "
                     f"to add them by hand put {' and '.join(places)}, then run the download again")
    return lines


def _rebuild(entry: ManifestEntry, upstream: Mapping[str, Path], dest: Path, folder: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            CONVERTERS[entry.convert](upstream, tmp)
        except DataError as exc:
            raise _NotFetched(f"cannot convert the upstream files of '{entry.path}': {exc}",
                              "upstream files in another format", folder, upstream=True) from None
        got = file_sha256(tmp)
        if got != entry.sha256:
            raise _NotFetched(
                f"rebuilt '{entry.path}' has sha256 {got}, expected {entry.sha256}: the upstream files differ "
                f"from those the reference table was made from; the rebuilt file was discarded "
                f"(upstream files kept in '{folder}')",
                "rebuilt table has another sha256", folder, upstream=True,
            )
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
