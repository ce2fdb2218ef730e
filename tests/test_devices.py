"""Table devices over the real reference data, hardware descriptors."""
from __future__ import annotations

import csv as _csv

import numpy as np
import pytest
from fixture_data import rows

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


#: Factor of the 1st, 2nd, 3rd row of one architecture: distinct, so that every way of merging repeats
#: other than the mean (first, last, median, max, min) gives another latency.
REPEAT_SCALE = (1.0, 1.3, 1.05)


def test_compofa_fixed_repeats_are_averaged(data_dir, tmp_path):
    """Syed et al.'s CompOFA table lists some networks 2-3 times. Upstream the repeats carry identical
    latencies, so here each k-th repeat is scaled by REPEAT_SCALE[k] (within the x1.5 re-measurements
    agree by): the device's latency is their mean, not the first, last or median row."""
    name = "compofa_fixed__xeon_cpu_b64.csv"
    with open(data_dir / "ofa" / "syed" / name, newline="") as fh:
        lines = list(_csv.reader(fh))
    by_arch: dict[str, list[float]] = {}
    for row in lines[1:]:
        seen = by_arch.setdefault(row[0], [])
        seen.append(float(row[1]) * REPEAT_SCALE[len(seen) % len(REPEAT_SCALE)])
        row[1] = repr(seen[-1])
    root = tmp_path / "root"
    (root / "ofa" / "syed").mkdir(parents=True)
    with open(root / "ofa" / "syed" / name, "w", newline="") as fh:
        _csv.writer(fh).writerows(lines)
    space = get_space("compofa_fixed")
    dev = TableDevice(source="syed", column="xeon_cpu_b64", space="compofa_fixed", data_dir=str(root))
    archs, lat = dev.dataset(space)
    assert len(lines) - 1 > len(by_arch)  # the table repeats architectures
    assert len(archs) == len(set(archs)) == len(by_arch) <= space.size()
    assert [space.to_string(a) for a in archs] == list(by_arch)  # first-seen order
    np.testing.assert_allclose(lat, [sum(v) / len(v) for v in by_arch.values()], rtol=1e-12)
    thrice = next(text for text, v in by_arch.items() if len(v) == 3)
    v = by_arch[thrice]  # e.g. 1.0, 1.3, 1.05 x the upstream value: mean 1.1167 x, median 1.05 x
    got = dev.latency(space, [space.from_string(thrice)])[0]
    assert got == pytest.approx((v[0] + v[1] + v[2]) / 3, rel=1e-12)
    assert min(abs(got - x) for x in (*v, float(np.median(v)))) > 0.01 * got


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
