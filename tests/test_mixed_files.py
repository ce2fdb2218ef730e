"""Files shared between runs do not mix (issue #13): the store's writer lock and identity record.

A measurement or accuracy CSV is appended to by whichever run picks it (default outputs are one per
space and device). The store takes an exclusive lock beside it while open and appends only rows of
the setup recorded when the file was created; everything else is refused with one line naming
the key, the file's value, this run's value and what to do.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from hwnas.devices import LocalDevice
from hwnas.errors import DataError
from hwnas.io import file_digest
from hwnas.measure import MeasurementStore, provenance
from hwnas.measure.sharing import WriterLock, identity_path, lock_path

COLUMNS = ["arch", "latency_ms"]
WHO = {"rows": "latency of architectures (job=measure)", "search_space.name": "nb201", "search_space.num_classes": 10,
       "search_space.resolutions": [160, 224], "device.threads": 1, "device.batch_size": 1, "torch": "2.0",
       "supernet.sha256": "a" * 64}


def _filled(path, identity=WHO, archs=("a", "b")):
    with MeasurementStore(path, COLUMNS, identity) as store:
        for i, arch in enumerate(archs):
            store.append({"arch": arch, "latency_ms": i + 1.0})
    return path


def test_second_writer_is_refused_until_the_first_closes(tmp_path):
    path = tmp_path / "m.csv"
    first = MeasurementStore(path, COLUMNS, WHO)
    with pytest.raises(DataError) as err:
        MeasurementStore(path, COLUMNS, WHO)
    assert str(err.value) == (f"'{path}' is being written by another hwnas process (pid {os.getpid()}); "
                              f"wait for it to finish or choose another measure.output")
    first.append({"arch": "a", "latency_ms": 1.0})
    first.close()
    with pytest.raises(RuntimeError, match="closed"):
        first.append({"arch": "b", "latency_ms": 2.0})
    with MeasurementStore(path, COLUMNS, WHO, option="eval_subnets.output") as second:
        assert "a" in second
        with pytest.raises(DataError, match="choose another eval_subnets.output"):
            MeasurementStore(path, COLUMNS, WHO, option="eval_subnets.output")
    assert lock_path(path).exists() and lock_path(path).read_text() == ""  # no pid of a finished writer left


def test_refused_open_releases_the_lock(tmp_path):
    path = _filled(tmp_path / "m.csv")
    with pytest.raises(DataError, match="holds rows of another setup"):
        MeasurementStore(path, COLUMNS, {**WHO, "device.threads": 2})
    with pytest.raises(DataError, match="missing \\['std_ms'\\]"):
        MeasurementStore(path, [*COLUMNS, "std_ms"], WHO)
    with MeasurementStore(path, COLUMNS, WHO) as store:  # neither refusal left the file locked
        assert len(store) == 2


def test_lock_of_another_process_and_no_stale_lock_after_kill_9(tmp_path):
    path = tmp_path / "m.csv"
    holder = textwrap.dedent(f"""
        import sys, time
        from hwnas.measure import MeasurementStore
        store = MeasurementStore({str(path)!r}, ["arch", "latency_ms"], {{"rows": "test"}})
        print("locked", flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(DataError, match=f"being written by another hwnas process \\(pid {proc.pid}\\)"):
            MeasurementStore(path, COLUMNS, {"rows": "test"})
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with MeasurementStore(path, COLUMNS, {"rows": "test"}) as store:  # the OS dropped the dead process's lock
        store.append({"arch": "a", "latency_ms": 1.0})


def test_forked_worker_does_not_keep_the_lock(tmp_path):
    """DataLoader workers fork while a store is open; closing the store must free the file for the next writer."""
    path = tmp_path / "m.csv"
    store = MeasurementStore(path, COLUMNS, WHO)
    ready, started = os.pipe()
    child = os.fork()
    if child == 0:  # a worker that outlives the writer's use of the file
        os.write(started, b"1")
        time.sleep(30)
        os._exit(0)
    try:
        assert os.read(ready, 1) == b"1"  # the child runs (its fork handlers have run)
        store.close()
        with MeasurementStore(path, COLUMNS, WHO) as again:
            again.append({"arch": "a", "latency_ms": 1.0})
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        os.close(ready)
        os.close(started)


def test_store_dropped_unclosed_releases_its_lock(tmp_path):
    path = tmp_path / "m.csv"
    MeasurementStore(path, COLUMNS, WHO)  # not kept, not closed
    MeasurementStore(path, COLUMNS, WHO).close()


@pytest.mark.parametrize("key, value, shown_file, shown_run", [
    ("rows", "latency of layers (job=build_lut)", "'latency of architectures (job=measure)'",
     "'latency of layers (job=build_lut)'"),
    ("search_space.name", "fbnet", "'nb201'", "'fbnet'"),
    ("search_space.num_classes", 100, "10", "100"),
    ("search_space.resolutions", (160, 192, 224), "[160, 224]", "[160, 192, 224]"),
    ("device.threads", 4, "1", "4"),
    ("device.batch_size", 8, "1", "8"),
    ("torch", "2.13.0", "'2.0'", "'2.13.0'"),
    ("supernet.sha256", "b" * 64, "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'", "'bbbbbbbbbbbb"),
    ("data.seed", 1, "unset", "1"),  # a key the file's identity does not have
])
def test_identity_mismatch_names_the_key_both_values_and_what_to_do(tmp_path, key, value, shown_file, shown_run):
    path = _filled(tmp_path / "m.csv")
    with pytest.raises(DataError) as err:
        MeasurementStore(path, COLUMNS, {**WHO, key: value})
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"'{path}' holds rows of another setup: {key} is {shown_file} in the file and {shown_run}")
    assert message.endswith("in this run; choose another measure.output or move the file (and its .identity.json) away")
    assert [r["arch"] for r in csv.DictReader(open(path))] == ["a", "b"]  # nothing appended, nothing rewritten


def test_mismatch_of_several_keys_names_the_first_and_counts_the_rest(tmp_path):
    path = _filled(tmp_path / "m.csv")
    without_torch = {k: v for k, v in WHO.items() if k != "torch"}
    with pytest.raises(DataError, match=r"search_space.name is 'nb201' in the file and 'fbnet' in this run "
                                        r"\(and 2 more: device.threads, torch\)"):
        MeasurementStore(path, COLUMNS, {**without_torch, "search_space.name": "fbnet", "device.threads": 2})


def test_file_with_rows_and_no_identity_record_is_refused(tmp_path):
    path = tmp_path / "old.csv"
    path.write_text("arch,latency_ms\na,1.0\nb,2.0\n")  # an older hwnas, or by hand
    with pytest.raises(DataError) as err:
        MeasurementStore(path, COLUMNS, WHO, option="eval_subnets.output")
    assert str(err.value) == (f"'{path}' has 2 rows but no identity record 'old.csv.identity.json' (written by an "
                              f"older hwnas or by hand), so nothing says which setup its rows come from; choose "
                              f"another eval_subnets.output or move the file away")
    assert not identity_path(path).exists()


@pytest.mark.parametrize("text", ["", "arch,latency_ms\n", "arch,latency_ms\na,1."])
def test_file_without_rows_takes_this_runs_identity(tmp_path, text):
    """Nothing in it can mix: an empty file, a header, a torn first row (killed while writing it)."""
    path = tmp_path / "m.csv"
    path.write_text(text)
    _filled(path, {"rows": "other"}, archs=())  # a record left by a file that was moved away
    path.write_text(text)
    with MeasurementStore(path, COLUMNS, WHO) as store:
        store.append({"arch": "c", "latency_ms": 3.0})
    assert json.loads(identity_path(path).read_text())["identity"] == WHO | {"search_space.resolutions": [160, 224]}
    assert [r["arch"] for r in csv.DictReader(open(path))] == ["c"]


def test_identity_survives_resume(tmp_path):
    path = _filled(tmp_path / "m.csv")
    record = identity_path(path).read_bytes()
    with open(path, "a") as fh:  # killed in the middle of a row
        fh.write("c,3.")
    with MeasurementStore(path, COLUMNS, dict(WHO)) as store:
        assert len(store) == 2 and "c" not in store
        store.append({"arch": "c", "latency_ms": 3.0})
    assert identity_path(path).read_bytes() == record  # created once, never rewritten by a resume
    assert [r["arch"] for r in csv.DictReader(open(path))] == ["a", "b", "c"]
    with pytest.raises(DataError, match="device.batch_size is 1 in the file and 2 in this run"):
        MeasurementStore(path, COLUMNS, {**WHO, "device.batch_size": 2})


@pytest.mark.parametrize("record, needle", [("{not json", r"is unreadable \(not JSON\)"),
                                            ('{"identity": {}}', "is not an hwnas identity record")])
def test_damaged_identity_record_is_one_line(tmp_path, record, needle):
    path = _filled(tmp_path / "m.csv")
    identity_path(path).write_text(record)
    with pytest.raises(DataError, match=needle) as err:
        MeasurementStore(path, COLUMNS, WHO)
    assert "\n" not in str(err.value) and "move the file and its identity record away" in str(err.value)


def test_writer_lock_is_exclusive_and_released(tmp_path):
    target = tmp_path / "x.csv"
    lock = WriterLock(target, "build_lut.output")
    assert lock.held and lock_path(target).read_text().strip() == str(os.getpid())
    with pytest.raises(DataError, match="choose another build_lut.output"):
        WriterLock(target, "build_lut.output")
    lock.release()
    lock.release()  # idempotent
    WriterLock(target, "build_lut.output").release()


def test_provenance_of_local_device_space_and_checkpoint(tmp_path):
    one, two = provenance.local_device(LocalDevice(threads=1)), provenance.local_device(LocalDevice(threads=2))
    assert {k for k in one if one[k] != two[k]} == {"device.name", "device.threads"}
    assert {"device.hardware", "device.batch_size", "device.warmup", "device.repeats", "device.number", "torch"} <= set(one)
    space = provenance.search_space({"_target_": "hwnas.spaces.get_space", "name": "ofa_mbv3", "resolutions": [160],
                                     "width_mult": 1.0})
    assert space == {"search_space.name": "ofa_mbv3", "search_space.resolutions": [160], "search_space.width_mult": 1.0}
    assert provenance.options("data", {"seed": 0, "split": [0.7, 0.3], "num_workers": 2, "nested": {"a": 1}},
                              drop=["num_workers"]) == {"data.seed": 0, "data.split": [0.7, 0.3], "data.nested.a": 1}
    ckpt = tmp_path / "a.pt"
    ckpt.write_bytes(b"weights")
    digest = file_digest(ckpt)
    os.utime(ckpt, (0, 0))
    assert file_digest(ckpt) == digest and len(digest) == 64
    ckpt.write_bytes(b"weights2")
    assert file_digest(ckpt) != digest
