"""The manifest against the reference data root, the converters against real upstream files, and
the downloader against a loopback server.

No test touches the internet: downloads come from an ``http.server`` on 127.0.0.1 that serves a
temporary copy of a few small data files, the committed subsets of the authors' upstream files
(``tests/data/upstream``, see its PROVENANCE.md) or files made up for the test.
"""
from __future__ import annotations

import functools
import hashlib
import http.server
import posixpath
import shutil
import socket
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from hwnas.data.convert import CONVERTERS
from hwnas.data.download import (
    Manifest,
    ManifestEntry,
    RemoteFile,
    download,
    file_sha256,
    load_manifest,
)
from hwnas.errors import ConfigError, DataError
from hwnas.jobs import download as download_job

HERE = Path(__file__).resolve().parent
#: Header + first 300 rows of each reference table (tests/data/make_root.py).
FIXTURE_ROOT = HERE / "data" / "root"
#: The authors' upstream files cut to the first 300 architectures (tests/data/upstream/make_upstream.py).
UPSTREAM_FIXTURES = HERE / "data" / "upstream"
FIXTURE_ROWS = 300
#: Released files that are also in the fixture root, so the mirror tests run without the full data.
SMALL_FILES = [
    "proxyless/mobile_trim.yaml",
    "ofa/note10_lut/note10_160_lookup_table.yaml",
    "ofa/note10_lut/note10_176_lookup_table.yaml",
    "ofa/specialized/note10_lat-8ms_top1-71.4_finetune-25/net.config",
    "ofa/specialized/note10_lat-8ms_top1-71.4_finetune-25/run.config",
]
DERIVED = {
    "nb201/latency_help.csv",
    "nb201/accuracy_200ep.csv",
    "fbnet/latency_help.csv",
    "fbnet/zero_cost_proxies.csv",
    *(f"ofa/syed/{p}.csv" for p in (
        "compofa_elastic__note10_lut", "compofa_fixed__note10_lut", "compofa_fixed__rtx2080ti_b64",
        "compofa_fixed__tesla_p40_b64", "compofa_fixed__xeon_cpu_b64", "ofa_mbv3__note10_lut",
        "ofa_mbv3__rtx2080ti_b64", "ofa_mbv3__tesla_p40_b64")),
}


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load_manifest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve(tmp_path):
    """``serve(folder) -> base URL`` of a loopback HTTP server for that folder."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def mirror(tmp_path, data_dir) -> Path:
    """A throwaway copy of a few small files of the data tree."""
    root = tmp_path / "mirror"
    for rel in SMALL_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_dir / rel, root / rel)
    return root


def _files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------------------- manifest
def test_manifest_covers_exactly_the_data_root(manifest, full_data_dir):
    on_disk = _files_under(full_data_dir) - {"README.md"}
    assert {entry.path for entry in manifest.files} == on_disk


def test_manifest_sha256_and_size_match_local_files(manifest, full_data_dir):
    for entry in manifest.files:
        path = full_data_dir / entry.path
        assert path.stat().st_size == entry.size, entry.path
        assert file_sha256(path) == entry.sha256, entry.path


def test_manifest_matches_the_whole_files_of_the_fixture_root(manifest):
    whole = {e.path: e for e in manifest.files if not e.derived and (FIXTURE_ROOT / e.path).is_file()}
    assert set(SMALL_FILES) <= set(whole)
    for rel, entry in whole.items():
        assert file_sha256(FIXTURE_ROOT / rel) == entry.sha256, rel


def test_manifest_says_where_each_file_came_from(manifest):
    assert {e.path for e in manifest.files if e.derived} == DERIVED
    for entry in manifest.files:
        source = manifest.sources[entry.source]
        assert source["paper"] and source["repository"].startswith("https://github.com/"), entry.path
        assert entry.licence, entry.path
        if entry.derived:
            assert entry.upstream and entry.note and not entry.urls and entry.convert in CONVERTERS, entry.path
            # every upstream file was seen at a pinned commit and is checked by its own sha256
            for remote in entry.upstream:
                assert remote.status == "confirmed" and remote.sha256 and not remote.manual, (entry.path, remote.path)
                assert remote.url.startswith("https://raw.githubusercontent.com/"), remote.url
            assert "could not be inspected" not in entry.note and "No upstream file" not in entry.note, entry.path
        else:
            assert entry.urls and all(r.url.startswith("https://") for r in entry.urls), entry.path
            assert any(r.status == "confirmed" for r in entry.urls), entry.path
    assert {e.convert for e in manifest.files if e.derived} == set(CONVERTERS)
    assert manifest.datasets == ["fbnet", "nb201", "ofa", "proxyless"]


def test_manifest_rejects_derived_file_without_converter(tmp_path):
    path = tmp_path / "manifest.yaml"
    path.write_text(
        "version: 1\nsources: {x: {}}\nfiles:\n"
        f"- {{path: a/b.csv, sha256: '{'0' * 64}', size: 1, source: x, derived: true,\n"
        "   upstream: [{url: 'https://example.org/b.pt', status: confirmed}]}\n"
    )
    with pytest.raises(DataError, match="entry 'a/b.csv': a derived file needs a convert step; None is not one of "
                                        "help_nb201_latency"):
        load_manifest(path)
    path.write_text(path.read_text().replace("derived: true", "derived: true, convert: syed_latency")
                    .replace("status: confirmed", "status: confirmed, sha256: abc"))
    with pytest.raises(DataError, match=r"upstream\[0\]: sha256 'abc' is not 64 lowercase hex digits"):
        load_manifest(path)


def test_only_selects_by_path_prefix(manifest):
    assert len(manifest.select(["ofa/note10_lut"])) == 17
    assert [e.path for e in manifest.select("proxyless")] == ["proxyless/mobile_trim.yaml"]
    assert {e.dataset for e in manifest.select(["nb201", "fbnet/"])} == {"nb201", "fbnet"}
    with pytest.raises(ConfigError, match="'nb999' matches no data file; top-level datasets: fbnet, nb201, ofa, proxyless"):
        manifest.select(["nb201", "nb999"])
    with pytest.raises(ConfigError, match="'ofa/note10' matches no data file"):
        manifest.select("ofa/note10")  # prefixes stop at path separators
    with pytest.raises(ConfigError, match="empty list"):
        manifest.select([])


# ---------------------------------------------------------------------------- downloading
def test_download_from_mirror_then_nothing_to_do(tmp_path, mirror, serve, manifest):
    url = serve(mirror)
    target = tmp_path / "data"
    first = download(target, only=SMALL_FILES, base_url_override=url + "/", timeout=5, progress=False)
    assert first["files_total"] == 5 and first["files_downloaded"] == 5 and first["files_present"] == 0
    assert _files_under(target) == set(SMALL_FILES)  # no temp files left behind
    expected = {e.path: e.sha256 for e in manifest.files}
    for rel in SMALL_FILES:
        assert file_sha256(target / rel) == expected[rel]

    second = download(target, only=SMALL_FILES, base_url_override=url, timeout=5, progress=False)
    assert second["files_downloaded"] == 0 and second["files_present"] == 5
    assert set(second["files"].values()) == {"present"}

    forced = download(target, only=["proxyless"], base_url_override=url, force=True, timeout=5, progress=False)
    assert forced["files_downloaded"] == 1


def test_changed_local_file_is_fetched_again(tmp_path, mirror, serve):
    url = serve(mirror)
    target = tmp_path / "data"
    (target / "proxyless").mkdir(parents=True)
    (target / "proxyless" / "mobile_trim.yaml").write_text("edited by hand\n")
    report = download(target, only=["proxyless"], base_url_override=url, timeout=5, progress=False)
    assert report["files_downloaded"] == 1
    assert (target / "proxyless" / "mobile_trim.yaml").read_bytes() == (mirror / "proxyless" / "mobile_trim.yaml").read_bytes()


def test_corrupted_download_is_rejected_and_leaves_nothing(tmp_path, mirror, serve, manifest):
    rel = "ofa/note10_lut/note10_176_lookup_table.yaml"
    with open(mirror / rel, "ab") as fh:
        fh.write(b"# tampered\n")
    url = serve(mirror)
    target = tmp_path / "data"
    with pytest.raises(DataError) as err:
        download(target, only=[rel], base_url_override=url, timeout=5, progress=False)
    message = str(err.value)
    expected = next(e.sha256 for e in manifest.files if e.path == rel)
    assert rel in message and expected in message and "sha256 mismatch: got " + file_sha256(mirror / rel) in message
    assert f"{url}/{rel}" in message and "\n" not in message
    assert _files_under(target) == set()


def test_missing_file_on_server_names_url_and_status(tmp_path, mirror, serve):
    url = serve(mirror)
    rel = "ofa/note10_lut/note10_168_lookup_table.yaml"
    with pytest.raises(DataError, match=f"{url}/{rel} -> HTTP 404"):
        download(tmp_path / "data", only=[rel], base_url_override=url, timeout=5, progress=False)
    assert _files_under(tmp_path / "data") == set()


def test_network_error_names_url_and_reason(tmp_path):
    url = _closed_port_url()
    with pytest.raises(DataError, match=f"could not fetch 'proxyless/mobile_trim.yaml'.*{url}/proxyless/mobile_trim.yaml -> .*refused"):
        download(tmp_path / "data", only=["proxyless"], base_url_override=url, timeout=5, progress=False)


def test_unknown_only_prefix_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="top-level datasets: fbnet, nb201, ofa, proxyless"):
        download(tmp_path / "data", only=["imagenet"], base_url_override=_closed_port_url(), progress=False)


def test_download_job_reports_numeric_metrics(tmp_path, mirror, serve):
    url = serve(mirror)
    cfg = OmegaConf.create({
        "paths": {"data_dir": None},
        "download": {"data_dir": str(tmp_path / "data"), "only": ["proxyless"], "force": False, "base_url": url},
    })
    metrics = download_job.run(cfg)
    assert metrics["files_total"] == 1.0 and metrics["files_downloaded"] == 1.0
    assert metrics["files_failed"] == 0.0
    assert all(isinstance(v, float) for v in metrics.values())
    assert (tmp_path / "data" / "proxyless" / "mobile_trim.yaml").is_file()


# ---------------------------------------------------------------------------- derived files
DERIVED_ENTRIES = [e for e in load_manifest().files if e.derived]


def _entry(manifest: Manifest, rel: str) -> ManifestEntry:
    return next(e for e in manifest.files if e.path == rel)


def _upstream_fixtures(entry: ManifestEntry, root: Path = UPSTREAM_FIXTURES) -> dict[str, Path]:
    folder = root / posixpath.dirname(entry.path)
    return {remote.path: folder / remote.path for remote in entry.upstream}


def _head(path: Path, rows: int) -> bytes:
    with open(path, "rb") as fh:
        return b"".join(fh.readline() for _ in range(rows + 1))


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict[str, Path]:
    """Each derived table converted from the committed upstream subsets."""
    out = tmp_path_factory.mktemp("converted")
    tables = {}
    for entry in DERIVED_ENTRIES:
        tables[entry.path] = out / entry.path.replace("/", "__")
        CONVERTERS[entry.convert](_upstream_fixtures(entry), tables[entry.path])
    return tables


def test_every_derived_table_has_upstream_fixtures():
    assert {e.path for e in DERIVED_ENTRIES} == DERIVED
    for entry in DERIVED_ENTRIES:
        for name, path in _upstream_fixtures(entry).items():
            assert path.is_file(), f"{entry.path}: no fixture for upstream file {name}"
    size = sum(p.stat().st_size for p in UPSTREAM_FIXTURES.rglob("*") if p.is_file())
    assert size < 1_500_000


@pytest.mark.parametrize("rel", sorted(DERIVED))
def test_converter_on_real_upstream_subset_gives_the_fixture_table(converted, rel):
    """The authors' files (first 300 architectures) -> exactly the first 300 rows of our table."""
    assert converted[rel].read_bytes() == (FIXTURE_ROOT / rel).read_bytes()


@pytest.mark.parametrize("rel", sorted(DERIVED))
def test_converted_subset_is_the_head_of_the_full_table(converted, full_data_dir, rel):
    assert converted[rel].read_bytes() == _head(full_data_dir / rel, FIXTURE_ROWS)


class _NotData:
    """Not a list, dict, string or number: the restricted unpickler must refuse it."""


def test_help_pickles_are_read_without_running_code(tmp_path, manifest):
    import torch

    entry = _entry(manifest, "nb201/latency_help.csv")
    upstream = _upstream_fixtures(entry)
    upstream["latency/pixel2.pt"] = tmp_path / "pixel2.pt"
    torch.save([_NotData()], upstream["latency/pixel2.pt"])
    with pytest.raises(DataError, match="pixel2.pt' is not a readable torch file: .*Weights only load failed"):
        CONVERTERS[entry.convert](upstream, tmp_path / "out.csv")
    torch.save(list(range(299)), upstream["latency/pixel2.pt"])
    with pytest.raises(DataError, match="pixel2.pt' holds 299 latencies, expected 300"):
        CONVERTERS[entry.convert](upstream, tmp_path / "out.csv")


def test_syed_converter_names_a_bad_row(tmp_path):
    source = tmp_path / "dev_ofa.csv"
    source.write_text("child_arch,latency\n"
                      "\"{'wid': None, 'ks': [3], 'e': [3], 'd': [2], 'r': [160]}\",1.5\n"
                      "\"{'ks': [3]\",2\n")
    with pytest.raises(DataError, match="dev_ofa.csv' line 3: child_arch .* is not an OFA sample dict"):
        CONVERTERS["syed_latency"]({"dev_ofa.csv": source}, tmp_path / "out.csv")
    source.write_text("arch,latency\n")
    with pytest.raises(DataError, match="has no column 'child_arch'; columns present: arch, latency"):
        CONVERTERS["syed_latency"]({"dev_ofa.csv": source}, tmp_path / "out.csv")


def _served(manifest: Manifest, url: str, only: set[str] | None = None, root: Path = UPSTREAM_FIXTURES) -> Manifest:
    """The derived entries with their upstream files on the loopback server, pinned to the sha256 of the
    subsets there, and each table to the sha256 of its fixture (first 300 rows)."""
    files = []
    for entry in manifest.files:
        if not entry.derived or (only is not None and entry.path not in only):
            continue
        folder = posixpath.dirname(entry.path)
        remotes = tuple(replace(r, url=f"{url}/{folder}/{r.path}", sha256=file_sha256(root / folder / r.path))
                        for r in entry.upstream)
        table = FIXTURE_ROOT / entry.path
        files.append(replace(entry, upstream=remotes, sha256=file_sha256(table), size=table.stat().st_size))
    return Manifest(sources=manifest.sources, files=tuple(files))


def test_download_fetches_and_converts_every_derived_table(tmp_path, manifest, serve):
    test_manifest = _served(manifest, serve(UPSTREAM_FIXTURES))
    upstream_files = {f"{e.upstream_dir}/{r.path}" for e in test_manifest.files for r in e.upstream}
    references = sum(len(e.upstream) for e in test_manifest.files)
    target = tmp_path / "data"
    report = download(target, manifest=test_manifest, timeout=5, progress=False)
    assert report["files_converted"] == len(DERIVED) and report["files_failed"] == 0
    # fbnet/upstream/metainfo.pt serves both FBNet tables: fetched once
    assert report["upstream_downloaded"] == len(upstream_files) == references - 1 and report["upstream_present"] == 1
    assert _files_under(target) == DERIVED | upstream_files  # no temp files left behind
    for rel in DERIVED:
        assert (target / rel).read_bytes() == (FIXTURE_ROOT / rel).read_bytes(), rel

    again = download(target, manifest=test_manifest, timeout=5, progress=False)
    assert again["files_present"] == len(DERIVED) and again["upstream_downloaded"] == again["files_converted"] == 0

    # A lost table is rebuilt from the upstream files already here; none is fetched again.
    (target / "fbnet" / "zero_cost_proxies.csv").unlink()
    (target / "fbnet" / "upstream" / "zc_fbnet.json").write_text("{}")  # ... unless it changed
    third = download(target, manifest=test_manifest, timeout=5, progress=False)
    assert third["files_converted"] == 1 and third["upstream_present"] == 1 and third["upstream_downloaded"] == 1
    assert (target / "fbnet" / "zero_cost_proxies.csv").read_bytes() == (
        FIXTURE_ROOT / "fbnet" / "zero_cost_proxies.csv").read_bytes()


def test_changed_upstream_file_is_refused(tmp_path, manifest, serve):
    rel = "nb201/accuracy_200ep.csv"
    served = tmp_path / "served"
    shutil.copytree(UPSTREAM_FIXTURES / "nb201", served / "nb201")
    test_manifest = _served(manifest, serve(served), {rel})
    source = served / "nb201" / "nats_bench.csv"
    source.write_bytes(source.read_bytes().replace(b"85.86333333333334", b"85.9", 1))

    # The upstream file pinned by sha256: refused as it arrives, nothing is written.
    fresh = tmp_path / "fresh"
    with pytest.raises(DataError, match=f"{rel}.*nats_bench.csv -> sha256 mismatch: got {file_sha256(source)}"):
        download(fresh, manifest=test_manifest, timeout=5, progress=False)
    assert _files_under(fresh) == set()

    # Not pinned: fetched and converted, and the table refused by its own sha256.
    [entry] = test_manifest.files
    unpinned = Manifest(test_manifest.sources, (replace(entry, upstream=(replace(entry.upstream[0], sha256=None),)),))
    with pytest.raises(DataError, match=f"rebuilt '{rel}' has sha256 .* expected {entry.sha256}"):
        download(fresh, manifest=unpinned, timeout=5, progress=False)
    assert _files_under(fresh) == {"nb201/upstream/nats_bench.csv"}


def test_files_not_fetched_get_one_line_per_dataset(tmp_path, manifest, serve, capsys, monkeypatch):
    import hwnas.data.download as download_module

    served = tmp_path / "served"
    (served / "latency").mkdir(parents=True)
    shutil.copyfile(UPSTREAM_FIXTURES / "nb201" / "latency" / "pixel2.pt", served / "latency" / "pixel2.pt")
    url, closed = serve(served), _closed_port_url()
    latency = replace(_entry(manifest, "nb201/latency_help.csv"), upstream=(
        RemoteFile(f"{url}/latency/pixel2.pt", "confirmed", "latency/pixel2.pt"),
        RemoteFile(f"{url}/latency/gone.pt", "confirmed", "latency/gone.pt"),
        RemoteFile("https://drive.example/bundle.zip", "referenced", "bundle.zip", manual=True),
    ))
    trim = replace(_entry(manifest, "proxyless/mobile_trim.yaml"), urls=(
        RemoteFile(f"{closed}/a/mobile_trim.yaml", "confirmed"),
        RemoteFile(f"{closed}/b/mobile_trim.yaml", "confirmed"),
    ))
    attempts = []
    real_fetch = download_module._fetch
    monkeypatch.setattr(download_module, "_fetch", lambda u, *a, **k: attempts.append(u) or real_fetch(u, *a, **k))

    target = tmp_path / "data"
    with pytest.raises(DataError, match=f"2 of 2 data files were not fetched into '{target}' \\(nb201, proxyless; "
                                        "first cause: HTTP 404") as err:
        download(target, manifest=Manifest(manifest.sources, (latency, trim)), timeout=5, progress=False)
    report = err.value.report
    assert report["files_failed"] == 2 and report["files_converted"] == report["files_downloaded"] == 0
    assert report["upstream_downloaded"] == 1 and report["upstream_failed"] == 1 and report["upstream_manual"] == 1
    assert _files_under(target) == {"nb201/upstream/latency/pixel2.pt"}
    assert f"{closed}/b/mobile_trim.yaml" not in attempts  # its host was already found unreachable

    lines = capsys.readouterr().out.splitlines()
    host = closed.removeprefix("http://")
    assert lines[0] == (
        f"nb201: 1 of 1 files not fetched (nb201/latency_help.csv: HTTP 404 File not found); to add them by hand "
        f"put the upstream files in '{target / 'nb201' / 'upstream'}', then run the download again")
    assert lines[1].startswith(f"proxyless: 1 of 1 files not fetched (proxyless/mobile_trim.yaml: {host} unreachable (")
    assert lines[1].endswith(f"put the file at '{target / 'proxyless' / 'mobile_trim.yaml'}', "
                             f"then run the download again")
    assert lines[2].startswith(f"hwnas data in '{target}': 0 present, 0 downloaded, 0 rebuilt from upstream files, "
                               f"2 not fetched (their URLs and upstream file names: ")
    assert len(lines) == 3
    details = {f["path"]: f["error"] for f in report["failed"]}
    assert f"{url}/latency/gone.pt -> HTTP 404" in details["nb201/latency_help.csv"]
    assert "download https://drive.example/bundle.zip by hand into" in details["nb201/latency_help.csv"]


def test_download_job_without_network_prints_a_line_per_dataset(tmp_path, run_cli):
    code, out, err = run_cli("job=download", "logger=none", f"hydra.run.dir={tmp_path}/run",
                             f"download.data_dir={tmp_path}/data", "download.only=[proxyless,nb201]",
                             f"download.base_url={_closed_port_url()}", "download.timeout=5")
    assert code == 2
    assert "nb201: 2 of 2 files not fetched" in out and "proxyless: 1 of 1 files not fetched" in out
    assert f"put the files at their manifest paths under '{tmp_path}/data/nb201'" in out
    assert "hwnas: error: 3 of 3 data files were not fetched" in err and "Traceback" not in err

def test_mirror_serves_derived_files_directly(tmp_path, serve):
    served = tmp_path / "served"
    (served / "ofa" / "syed").mkdir(parents=True)
    body = b"arch,latency_ms\r\nx,1.0\r\n"
    (served / "ofa" / "syed" / "tiny__dev.csv").write_bytes(body)
    entry = ManifestEntry(
        path="ofa/syed/tiny__dev.csv", sha256=hashlib.sha256(body).hexdigest(), size=len(body), source="syed",
        licence="test", derived=True, upstream=(RemoteFile(_closed_port_url() + "/never", "inferred", "x.csv"),),
    )
    report = download(tmp_path / "data", manifest=Manifest({"syed": {}}, (entry,)),
                      base_url_override=serve(served), timeout=5, progress=False)
    assert report["files_downloaded"] == 1 and report["upstream_downloaded"] == 0
    assert (tmp_path / "data" / entry.path).read_bytes() == body
