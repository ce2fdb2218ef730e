"""The manifest against the reference data root, and the downloader against a loopback server.

No test touches the internet: downloads come from an ``http.server`` on 127.0.0.1 that serves a
temporary copy of a few small data files (or files made up for the test).
"""
from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import socket
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from hwnas.data import resolve_data_dir
from hwnas.data.download import (
    Manifest,
    ManifestEntry,
    RemoteFile,
    convert_nats_bench_accuracy,
    download,
    file_sha256,
    load_manifest,
)
from hwnas.errors import ConfigError, DataError
from hwnas.jobs import download as download_job

SMALL_FILES = [
    "proxyless/mobile_trim.yaml",
    "ofa/note10_lut/note10_160_lookup_table.yaml",
    "ofa/note10_lut/note10_164_lookup_table.yaml",
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
NATS_COLUMNS = ["CIFAR10TestAccuracy200Epochs", "CIFAR100TestAccuracy200Epochs", "ImageNetTestAccuracy200Epochs"]


@pytest.fixture(scope="module")
def data_dir() -> Path:
    return resolve_data_dir()


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
def test_manifest_covers_exactly_the_data_root(manifest, data_dir):
    on_disk = _files_under(data_dir) - {"README.md"}
    assert {entry.path for entry in manifest.files} == on_disk


def test_manifest_sha256_and_size_match_local_files(manifest, data_dir):
    for entry in manifest.files:
        path = data_dir / entry.path
        assert path.stat().st_size == entry.size, entry.path
        assert file_sha256(path) == entry.sha256, entry.path


def test_manifest_says_where_each_file_came_from(manifest):
    assert {e.path for e in manifest.files if e.derived} == DERIVED
    for entry in manifest.files:
        source = manifest.sources[entry.source]
        assert source["paper"] and source["repository"].startswith("https://github.com/"), entry.path
        assert entry.licence, entry.path
        if entry.derived:
            assert entry.upstream and entry.note and not entry.urls, entry.path
        else:
            assert entry.urls and all(r.url.startswith("https://") for r in entry.urls), entry.path
    assert [e.convert for e in manifest.files if e.convert] == ["nats_bench_accuracy"]
    assert manifest.datasets == ["fbnet", "nb201", "ofa", "proxyless"]


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
    rel = "ofa/note10_lut/note10_164_lookup_table.yaml"
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
    assert metrics["files_derived_pending"] == 0.0
    assert all(isinstance(v, float) for v in metrics.values())
    assert (tmp_path / "data" / "proxyless" / "mobile_trim.yaml").is_file()


# ---------------------------------------------------------------------------- derived files
def _nats_bench_csv(accuracy_csv: Path, out: Path, *, unique_column: bool) -> Path:
    """The upstream layout (as stored in v-tao/nats-bench-landscape), made from the reference table."""
    header = ",".join(NATS_COLUMNS + ["ArchitectureString"] + (["UniqueString"] if unique_column else []))
    lines = [header]
    with open(accuracy_csv, encoding="utf-8", newline="") as fh:
        next(fh)
        for line in fh:
            index, arch, c10, c100, img = line.rstrip("\r\n").split(",")
            lines.append(",".join([c10, c100, img, arch] + ([f"u{index}"] if unique_column else [])))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")  # LF, no final newline
    return out


@pytest.mark.parametrize("unique_column", [False, True])
def test_nats_bench_conversion_reproduces_reference_bytes(tmp_path, data_dir, manifest, unique_column):
    entry = next(e for e in manifest.files if e.path == "nb201/accuracy_200ep.csv")
    upstream = _nats_bench_csv(data_dir / entry.path, tmp_path / "nats_bench.csv", unique_column=unique_column)
    out = tmp_path / "accuracy_200ep.csv"
    convert_nats_bench_accuracy({"nats_bench.csv": upstream}, out)
    assert file_sha256(out) == entry.sha256


def _with_upstream(entry: ManifestEntry, *remotes: RemoteFile) -> Manifest:
    return Manifest(sources={entry.source: {}}, files=(replace(entry, upstream=remotes),))


def test_derived_table_rebuilt_from_upstream(tmp_path, data_dir, manifest, serve):
    entry = next(e for e in manifest.files if e.path == "nb201/accuracy_200ep.csv")
    served = tmp_path / "served"
    _nats_bench_csv(data_dir / entry.path, served / "nats_bench.csv", unique_column=False)
    url = serve(served)
    test_manifest = _with_upstream(entry, RemoteFile(f"{url}/nats_bench.csv", "confirmed", "nats_bench.csv"))
    target = tmp_path / "data"
    report = download(target, manifest=test_manifest, timeout=5, progress=False)
    assert report["files_converted"] == 1 and report["upstream_downloaded"] == 1
    assert file_sha256(target / entry.path) == entry.sha256
    assert (target / "nb201" / "upstream" / "nats_bench.csv").is_file()

    # An upstream that changed since: the rebuilt table is refused and nothing replaces the target.
    text = (served / "nats_bench.csv").read_text().replace("94.37333333333333", "94.4", 1)
    (served / "nats_bench.csv").write_text(text)
    fresh = tmp_path / "fresh"
    with pytest.raises(DataError, match="rebuilt 'nb201/accuracy_200ep.csv' has sha256 .* expected " + entry.sha256):
        download(fresh, manifest=test_manifest, timeout=5, progress=False)
    assert _files_under(fresh) == {"nb201/upstream/nats_bench.csv"}


def test_derived_table_without_conversion_is_reported_pending(tmp_path, manifest, serve, capsys):
    entry = next(e for e in manifest.files if e.path == "nb201/latency_help.csv")
    served = tmp_path / "served"
    served.mkdir()
    (served / "pixel3.pt").write_bytes(b"not really a pickle")
    url = serve(served)
    test_manifest = _with_upstream(
        entry,
        RemoteFile(f"{url}/pixel3.pt", "confirmed", "latency/pixel3.pt"),
        RemoteFile(f"{url}/gone.pt", "inferred", "latency/gone.pt"),
        RemoteFile("https://drive.example/bundle.zip", "referenced", "bundle.zip", manual=True),
    )
    target = tmp_path / "data"
    report = download(target, manifest=test_manifest, timeout=5, progress=False)
    assert report["files_derived_pending"] == 1 and report["files_converted"] == 0
    assert report["upstream_downloaded"] == 1 and report["upstream_failed"] == 1 and report["upstream_manual"] == 1
    assert _files_under(target) == {"nb201/upstream/latency/pixel3.pt"}
    [pending] = report["pending"]
    assert pending["path"] == entry.path and "HTTP 404" in pending["failed"][0]
    out = capsys.readouterr().out
    assert "nb201/latency_help.csv is a derived table" in out and "converting them to the CSV is still needed" in out


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
