"""Table devices over the real reference data, hardware descriptors."""
from __future__ import annotations

import csv as _csv

import numpy as np
import pytest
from fixture_data import rows

from hwnas.data.tables import load_syed
from hwnas.devices import TableDevice
from hwnas.devices.specs import descriptor_for, hardware_id, load_specs
from hwnas.errors import ConfigError, DataError
from hwnas.spaces import get_space


def test_help_device_looks_up_latency(data_dir):
    space = get_space("nb201")
    dev = TableDevice(source="help", column="pixel3", space="nb201", data_dir=str(data_dir))
    archs, lat = dev.dataset(space)
    assert len(archs) == rows(15_625) and (lat > 0).all()
    first = space.from_string("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|")
    assert dev.latency(space, [first])[0] == pytest.approx(3.6058499999999998)
    assert dev.descriptor.kind == "phone" and dev.descriptor.name == "pixel3"


def test_help_device_errors(data_dir):
    with pytest.raises(ConfigError, match="'nope' is not a device .*allowed: .*pixel3"):
        TableDevice(source="help", column="nope", space="nb201", data_dir=str(data_dir))
    with pytest.raises(ConfigError, match="search_space=ofa_mbv3 has none"):
        TableDevice(source="help", column="pixel3", space="ofa_mbv3", data_dir=str(data_dir))
    with pytest.raises(ConfigError, match="device.path"):
        TableDevice()


def test_syed_and_user_csv_devices(data_dir, tmp_path):
    space = get_space("ofa_mbv3")
    dev = TableDevice(source="syed", column="rtx2080ti_b64", space="ofa_mbv3", data_dir=str(data_dir))
    archs, lat = dev.dataset(space)
    assert len(archs) == rows(10_000) and dev.descriptor.batch_size == 64 and dev.descriptor.kind == "gpu"
    csv = tmp_path / "mine.csv"
    with open(csv, "w", newline="") as fh:  # hand-formatted JSON (spaces): must still match
        w = _csv.writer(fh)
        w.writerow(["arch", "latency_ms"])
        w.writerows([space.to_string(a).replace(",", ", "), v] for a, v in zip(archs[:5], lat[:5]))
    mine = TableDevice(path=str(csv))
    assert np.allclose(mine.latency(space, archs[:5]), lat[:5])  # re-canonicalized strings
    with pytest.raises(DataError, match="is not in the table"):
        mine.latency(space, archs[5:6])
    with pytest.raises(DataError, match="not in search space nb201"):
        mine.latency(get_space("nb201"), [])


def test_compofa_fixed_repeats_are_averaged(data_dir):
    space = get_space("compofa_fixed")
    dev = TableDevice(source="syed", column="xeon_cpu_b64", space="compofa_fixed", data_dir=str(data_dir))
    archs, lat = dev.dataset(space)
    raw = load_syed("compofa_fixed", "xeon_cpu_b64", data_dir)
    by_arch: dict[str, list[float]] = {}
    for text, ms in zip(raw.archs, raw.latency_ms):
        by_arch.setdefault(text, []).append(float(ms))
    assert len(raw) > len(by_arch)  # the table repeats architectures
    assert len(archs) == len(set(archs)) == len(by_arch) <= space.size()
    assert [space.to_string(a) for a in archs] == list(by_arch)  # first-seen order
    np.testing.assert_allclose(lat, [np.mean(v) for v in by_arch.values()], rtol=1e-12)
    repeated = next(text for text, v in by_arch.items() if len(v) > 1)
    assert dev.latency(space, [space.from_string(repeated)])[0] == pytest.approx(np.mean(by_arch[repeated]))


def test_compofa_fixed_device_lists_all_1215_networks(full_data_dir):
    space = get_space("compofa_fixed")
    dev = TableDevice(source="syed", column="xeon_cpu_b64", space="compofa_fixed", data_dir=str(full_data_dir))
    assert set(dev.archs(space)) == set(space.enumerate()) and len(dev.archs(space)) == 1215


def test_specs_cover_every_reference_device(data_dir):
    from hwnas.data.tables import load_fbnet_latency, load_nb201_latency, syed_pairs

    columns = set(load_nb201_latency(data_dir).devices) | set(load_fbnet_latency(data_dir).devices)
    columns |= {p.split("__")[1] for p in syed_pairs(data_dir)}
    specs = load_specs()
    for column in columns:
        hw, batch = hardware_id(column)
        assert hw in specs, column
        d = descriptor_for(column)
        assert d.kind in d.KINDS and d.vector().shape == (5 + 5 + 6,)
    assert hardware_id("titan_rtx_256") == ("titan_rtx", 256) and hardware_id("note10_lut") == ("note10", 1)
