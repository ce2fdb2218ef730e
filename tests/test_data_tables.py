"""The table readers on the real reference data, and every way a table can be malformed."""
from __future__ import annotations

import csv
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
from fixture_data import rows

import hwnas
from hwnas.data import (
    data_path,
    load_fbnet_latency,
    load_fbnet_proxies,
    load_nb201_accuracy,
    load_nb201_latency,
    load_syed,
    read_accuracy_table,
    read_latency_table,
    read_lut_yaml,
    read_wide_table,
    resolve_data_dir,
    syed_pairs,
)
from hwnas.data import root as root_module
from hwnas.errors import ConfigError, DataError
from hwnas.spaces import get_space

NB201_DEVICES = {
    *(f"{gpu}_{b}" for gpu in ("1080ti", "2080ti", "titan_rtx", "titanx", "titanxp") for b in (1, 32, 256)),
    "gold_6226", "gold_6240", "silver_4114", "silver_4210r",
    "pixel2", "pixel3", "samsung_a50", "samsung_s7", "essential_ph_1", "raspi4", "eyeriss", "fpga",
}
FBNET_OPS = {"k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip"}
SYED_PAIRS = [
    "compofa_elastic__note10_lut",
    "compofa_fixed__note10_lut",
    "compofa_fixed__rtx2080ti_b64",
    "compofa_fixed__tesla_p40_b64",
    "compofa_fixed__xeon_cpu_b64",
    "ofa_mbv3__note10_lut",
    "ofa_mbv3__rtx2080ti_b64",
    "ofa_mbv3__tesla_p40_b64",
]


@pytest.fixture(scope="module")
def nb201(data_dir):
    return load_nb201_latency(data_dir)


def _csv_column(path: Path, name: str) -> list[str]:
    """One column of a CSV, read with the csv module (independently of the readers under test)."""
    with open(path, newline="") as fh:
        return [row[name] for row in csv.DictReader(fh)]


# ---------------------------------------------------------------------------- real data
def test_data_root_is_the_one_this_run_chose(data_dir):
    assert resolve_data_dir() == data_dir  # conftest hands the chosen root to the library via HWNAS_DATA


def test_nb201_wide_table_shape_and_first_row(nb201):
    assert nb201.latency_ms.shape == (rows(15_625), 27)
    assert nb201.latency_ms.dtype == np.float64
    assert set(nb201.devices) == NB201_DEVICES
    assert np.array_equal(nb201.index, np.arange(rows(15_625)))
    assert nb201.archs[0] == (
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    )
    first = {device: nb201.column(device)[0] for device in nb201.devices}
    assert first["1080ti_1"] == 10.75437068939209
    assert first["eyeriss"] == 3.645620000000001
    assert first["fpga"] == 2.57296
    assert first["pixel2"] == 9.0  # whole milliseconds on this phone
    assert first["samsung_s7"] == 29.0
    assert first["titanxp_32"] == 7.385053634643555


def test_nb201_near_zero_latencies_are_valid(nb201):
    # Cells whose output is cut off from the input cost almost nothing on some devices.
    assert 0 < nb201.latency_ms.min() < 0.01


def test_wide_table_to_long(nb201):
    long = nb201.to_long("pixel3")
    assert len(long) == rows(15_625)
    assert long.archs == nb201.archs
    assert np.array_equal(long.latency_ms, nb201.latency_ms[:, nb201.devices.index("pixel3")])
    assert np.array_equal(long.extra["index"], nb201.index)
    assert "pixel3" in long.source
    long.latency_ms[0] = -1.0  # a copy: the wide table is unchanged
    assert nb201.column("pixel3")[0] > 0


def test_unknown_device_names_it_and_lists_devices(nb201):
    with pytest.raises(ConfigError, match="unknown device 'tpu_v4'.*available: .*pixel3"):
        nb201.column("tpu_v4")
    with pytest.raises(ConfigError, match="tpu_v4"):
        nb201.to_long("tpu_v4")


def test_fbnet_wide_table(data_dir):
    table = load_fbnet_latency(data_dir)
    assert table.latency_ms.shape == (rows(5_000), 27)
    assert {"1080ti_64", "titan_rtx_64", "raspi4", "eyeriss"} <= set(table.devices)
    ops = table.archs[0].split("-")
    assert len(ops) == 22 and set(ops) <= FBNET_OPS


@pytest.mark.parametrize("pair", SYED_PAIRS)
def test_syed_tables_have_10000_rows(data_dir, pair):
    space, device = pair.split("__")
    table = load_syed(space, device, data_dir)
    assert len(table) == rows(10_000)
    assert table.latency_ms.shape == (rows(10_000),)
    assert (table.latency_ms > 0).all()
    assert table.archs[0].startswith('{"ks":[')


def test_syed_pairs_found_in_folder(data_dir):
    assert syed_pairs(data_dir) == SYED_PAIRS


def test_compofa_fixed_repeats_architectures_by_construction(data_dir):
    """243 networks x 5 resolutions sampled 10,000 times: the rows repeat architectures, all of them kept."""
    path = data_path("ofa/syed/compofa_fixed__note10_lut.csv", data_dir)
    table = load_syed("compofa_fixed", "note10_lut", data_dir)
    assert table.archs == _csv_column(path, "arch")  # every row, repeats included, in file order
    distinct = set(table.archs)
    assert len(distinct) < len(table)
    space = get_space("compofa_fixed")
    assert len({space.from_string(a) for a in distinct}) == len(distinct) <= space.size() == 1_215
    with pytest.raises(DataError, match=r"compofa_fixed__note10_lut\.csv.* times \(rows "):
        load_syed("compofa_fixed", "note10_lut", data_dir, allow_duplicates=False)


def test_compofa_fixed_lists_every_network_of_its_space(full_data_dir):
    """The full 10,000 rows hold all 1,215 CompOFA fixed-kernel networks (README: ~1,215 distinct rows)."""
    space = get_space("compofa_fixed")
    table = load_syed("compofa_fixed", "note10_lut", full_data_dir)
    assert set(space.from_strings(table.archs)) == set(space.enumerate())
    assert len(set(table.archs)) == 1_215


def test_unknown_syed_pair_lists_available(data_dir):
    with pytest.raises(ConfigError, match="space 'ofa_mbv3' and device 'pixel1'.*ofa_mbv3__note10_lut"):
        load_syed("ofa_mbv3", "pixel1", data_dir)


def test_nb201_accuracy_table(data_dir, nb201):
    acc = load_nb201_accuracy(data_dir)
    assert acc.datasets == ["cifar10", "cifar100", "imagenet16_120"]
    assert len(acc) == rows(15_625)
    assert acc.archs == nb201.archs and np.array_equal(acc.index, nb201.index)
    assert [acc.column(d)[0] for d in acc.datasets] == [85.86333333333334, 52.913333294677734, 26.6333332739936]
    for d in acc.datasets:
        assert ((acc.column(d) > 0) & (acc.column(d) < 100)).all()


def test_nb201_accuracy_maxima(full_data_dir):
    """The published NATS-Bench maxima over all 15,625 cells."""
    acc = load_nb201_accuracy(full_data_dir)
    assert [round(float(acc.column(d).max()), 2) for d in acc.datasets] == [94.37, 73.51, 47.31]


def test_unknown_dataset_names_it(data_dir):
    acc = load_nb201_accuracy(data_dir)
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet1k'.*cifar10, cifar100, imagenet16_120"):
        acc.column("imagenet1k")


def test_fbnet_proxies(data_dir):
    proxies = load_fbnet_proxies(data_dir)
    assert len(proxies) == rows(5_000) and len(proxies.names) == 13
    assert {"synflow", "nwot", "flops", "params", "zen"} <= set(proxies.names)
    assert proxies.archs == load_fbnet_latency(data_dir).archs
    with pytest.raises(ConfigError, match="unknown proxy 'naswot'"):
        proxies.column("naswot")


def _note10_tables(data_dir) -> dict[int, dict]:
    folder = data_path("ofa/note10_lut", data_dir)
    return {int(p.name.split("_")[1]): read_lut_yaml(p) for p in sorted(folder.glob("*.yaml"))}


def test_note10_lookup_tables_load(data_dir):
    tables = _note10_tables(data_dir)
    assert set(tables) <= set(range(160, 225, 4))
    assert {160, 176, 192, 208, 224} <= set(tables)  # the resolutions of Syed et al.'s OFA datasets
    for table in tables.values():
        entry = table["Logits-input:1x1x1536-output:1000"]
        assert set(entry) == {"count", "mean", "std"} and entry["mean"] > 0


def test_note10_lookup_tables_cover_160_to_224_step_4(full_data_dir):
    assert sorted(_note10_tables(full_data_dir)) == list(range(160, 225, 4))


def test_proxyless_lookup_table_loads(data_dir):
    lut = read_lut_yaml(data_path("proxyless/mobile_trim.yaml", data_dir))
    assert lut["Conv-input:224x224x3-output:112x112x32"]["mean"] == pytest.approx(4.083755600814664)


def test_read_latency_table_reads_one_device_of_a_wide_file(data_dir, nb201):
    table = read_latency_table(data_path("nb201/latency_help.csv", data_dir), column="raspi4")
    assert np.array_equal(table.latency_ms, nb201.column("raspi4"))
    assert list(table.extra) == ["index"]


# ---------------------------------------------------------------------------- user CSVs
def _csv(tmp_path: Path, text: str, name: str = "table.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_long_table_keeps_numeric_extras(tmp_path):
    path = _csv(tmp_path, "arch,latency_ms,energy_mj,note\na,1.5,2.0,x\nb,2.5,3.0,y\n")
    table = read_latency_table(path)
    assert table.archs == ["a", "b"] and table.latency_ms.tolist() == [1.5, 2.5]
    assert list(table.extra) == ["energy_mj"] and table.extra["energy_mj"].tolist() == [2.0, 3.0]
    assert table.source == str(path) and len(table) == 2


def test_long_table_other_latency_column(tmp_path):
    path = _csv(tmp_path, "arch,latency_ms,latency_p90_ms\na,1.0,1.5\nb,2.0,2.5\n")
    table = read_latency_table(path, column="latency_p90_ms")
    assert table.latency_ms.tolist() == [1.5, 2.5]
    assert table.extra["latency_ms"].tolist() == [1.0, 2.0]


BAD_LONG_TABLES = [
    pytest.param("arch,lat\na,1.0\n", ["no column 'latency_ms'", "columns present: arch, lat"], id="missing-latency"),
    pytest.param("name,latency_ms\na,1.0\n", ["no column 'arch'", "columns present: name, latency_ms"], id="missing-arch"),
    pytest.param("arch,latency_ms\na,1.0\nb,\n", ["'latency_ms'", "an empty value", "row 2 (line 3)"], id="empty"),
    pytest.param("arch,latency_ms\na,1.0\nb,NaN\n", ["value 'NaN'", "row 2 (line 3)"], id="nan"),
    pytest.param("arch,latency_ms\na,1.0\nb,fast\n", ["value 'fast'", "row 2"], id="text"),
    pytest.param("arch,latency_ms\na,1.0\nb,2.0\nc,-3.5\n", ["value -3.5", "row 3 (line 4)", "> 0 ms"], id="negative"),
    pytest.param("arch,latency_ms\na,1.5\nb,0\n", ["value 0", "row 2 (line 3)"], id="zero"),
    pytest.param("arch,latency_ms\na,1.5\nb,inf\n", ["value inf", "row 2", "finite"], id="inf"),
    pytest.param("arch,latency_ms\na,1.0\nb,2.0\na,3.0\n", ["architecture 'a' 2 times", "rows 1, 3"], id="duplicate"),
    pytest.param("arch,latency_ms\na,1.0\n,2.0\n", ["empty 'arch'", "row 2 (line 3)"], id="empty-arch"),
    pytest.param("", ["is empty"], id="empty-file"),
    pytest.param("arch,latency_ms\n", ["no data rows"], id="header-only"),
]


@pytest.mark.parametrize("text, expected", BAD_LONG_TABLES)
def test_bad_latency_table_raises_data_error_naming_the_problem(tmp_path, text, expected):
    path = _csv(tmp_path, text, "bad.csv")
    with pytest.raises(DataError) as err:
        read_latency_table(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    for part in expected:
        assert part in message


def test_duplicates_can_be_kept(tmp_path):
    path = _csv(tmp_path, "arch,latency_ms\na,1.0\nb,2.0\na,3.0\n")
    assert read_latency_table(path, allow_duplicates=True).archs == ["a", "b", "a"]


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_latency_table(tmp_path / "nope.csv")


def test_wide_table_names_bad_device_cell(tmp_path):
    path = _csv(tmp_path, "index,arch,dev_a,dev_b\n0,x,1.0,2.0\n1,y,1.0,-2.0\n2,z,0,1.0\n")
    with pytest.raises(DataError, match=r"column 'dev_b' has value -2.0 at row 2 \(line 3\)"):
        read_wide_table(path)


def test_wide_table_needs_index_and_devices(tmp_path):
    with pytest.raises(DataError, match="no column 'index'"):
        read_wide_table(_csv(tmp_path, "arch,dev_a\nx,1.0\n"))
    with pytest.raises(DataError, match="no device columns"):
        read_wide_table(_csv(tmp_path, "index,arch\n0,x\n", "only_ids.csv"))
    with pytest.raises(DataError, match="column 'index' has value 'first'"):
        read_wide_table(_csv(tmp_path, "index,arch,dev\nfirst,x,1.0\n", "bad_index.csv"))


def test_wide_table_rejects_duplicate_archs(tmp_path):
    path = _csv(tmp_path, "index,arch,dev\n0,x,1.0\n1,x,2.0\n")
    with pytest.raises(DataError, match="'x' 2 times"):
        read_wide_table(path)


def test_accuracy_table_range_is_checked(tmp_path):
    path = _csv(tmp_path, "index,arch,cifar10\n0,x,93.1\n1,y,101.0\n")
    with pytest.raises(DataError, match=r"'cifar10' has value 101.0 at row 2.*\[0, 100\]"):
        read_accuracy_table(path)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a: [unclosed\n", "not valid YAML"),
        ("- just\n- a list\n", "not a non-empty mapping"),
        ("Conv-input:1x1x1:\n  count: 3\n  std: 0.1\n", "entry 'Conv-input:1x1x1' has mean None"),
        ("Conv-input:1x1x1:\n  mean: -1.0\n", "has mean -1.0"),
    ],
)
def test_malformed_lookup_table(tmp_path, text, expected):
    path = _csv(tmp_path, text, "lut.yaml")
    with pytest.raises(DataError) as err:
        read_lut_yaml(path)
    assert expected in str(err.value) and str(path) in str(err.value)


# ---------------------------------------------------------------------------- data root
@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(root_module.ENV_VAR, raising=False)


def test_explicit_data_dir_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(root_module.ENV_VAR, str(tmp_path / "elsewhere"))
    assert resolve_data_dir(str(tmp_path)) == tmp_path.resolve()
    assert resolve_data_dir(tmp_path) == tmp_path.resolve()


def test_env_var_used_without_explicit_value(tmp_path, monkeypatch):
    monkeypatch.setenv(root_module.ENV_VAR, str(tmp_path))
    assert resolve_data_dir() == tmp_path.resolve()
    assert resolve_data_dir("") == tmp_path.resolve()  # an empty value is no value


def test_missing_explicit_or_env_root_is_named(tmp_path, monkeypatch):
    missing = tmp_path / "no_such_root"
    with pytest.raises(DataError, match="data root '.*no_such_root' does not exist; set paths.data_dir=.*HWNAS_DATA"):
        resolve_data_dir(str(missing))
    monkeypatch.setenv(root_module.ENV_VAR, str(missing))
    with pytest.raises(DataError, match="no_such_root"):
        resolve_data_dir()


def test_sibling_shared_data_of_working_directory(tmp_path, monkeypatch, no_env):
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    assert resolve_data_dir() == (tmp_path / "shared" / "data").resolve()


def _root_module_in_checkout(checkout: Path):
    """hwnas/data/root.py copied into a fake source checkout, imported from there."""
    target = checkout / "hwnas" / "data" / "root.py"
    target.parent.mkdir(parents=True)
    shutil.copy(root_module.__file__, target)
    spec = importlib.util.spec_from_file_location("hwnas_root_in_fake_checkout", target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sibling_shared_data_of_source_checkout(tmp_path, monkeypatch, no_env):
    """An editable install finds <checkout>/../shared/data from any working directory."""
    assert Path(root_module.__file__).resolve().parents[2] == Path(hwnas.__file__).resolve().parents[1]
    module = _root_module_in_checkout(tmp_path / "work" / "checkout")
    shared = tmp_path / "work" / "shared" / "data"
    elsewhere = tmp_path / "elsewhere" / "cwd"  # ../shared/data of the working directory: absent
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    with pytest.raises(DataError, match="no data root found") as err:
        module.resolve_data_dir()
    assert f"'{tmp_path / 'work' / 'checkout' / '..' / 'shared' / 'data'}'" in str(err.value)
    shared.mkdir(parents=True)
    assert module.resolve_data_dir() == shared.resolve()
    beside_cwd = tmp_path / "elsewhere" / "shared" / "data"  # the working directory's sibling is tried first
    beside_cwd.mkdir(parents=True)
    assert module.resolve_data_dir() == beside_cwd.resolve()


def test_no_data_root_found(tmp_path, monkeypatch, no_env):
    monkeypatch.setattr(root_module, "_candidate_roots", lambda: [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(DataError, match="no data root found.*HWNAS_DATA"):
        resolve_data_dir()


def test_data_path_names_missing_file(tmp_path):
    with pytest.raises(DataError) as err:
        data_path("nb201/missing.csv", tmp_path)
    assert str(tmp_path / "nb201" / "missing.csv") in str(err.value)
    assert f"data root '{tmp_path.resolve()}'" in str(err.value)
