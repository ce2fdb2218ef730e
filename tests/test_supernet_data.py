"""Image DataModules: embedded digits, CIFAR from a local archive in the official pickle format (and its
download path, from a file:// URL), ImageFolder. No network."""
from __future__ import annotations

import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest
import torch

from hwnas.errors import ConfigError, DataError
from hwnas.supernet import data as data_mod
from hwnas.supernet.data import CIFARDataModule, DigitsDataModule, ImageFolderDataModule, random_translate

torch.set_num_threads(1)


def test_digits_fixed_split_and_shapes():
    dm = DigitsDataModule(image_size=24, batch_size=32, seed=3)
    dm.setup()
    sizes = {s: len(dm.splits[s]) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 1797 and sizes["train"] == round(0.7 * 1797)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 3, 24, 24) and y.dtype == torch.int64 and dm.num_classes == 10
    again = DigitsDataModule(image_size=24, seed=3)
    again.setup()
    assert torch.equal(again.splits["test"].labels, dm.splits["test"].labels)
    other = DigitsDataModule(image_size=24, seed=4)
    other.setup()
    assert not torch.equal(other.splits["test"].labels, dm.splits["test"].labels)
    calib = dm.calibration_batches(70, 32)
    assert [len(b) for b in calib] == [32, 32, 6]
    assert torch.equal(torch.cat(calib), torch.cat(dm.calibration_batches(70, 32)))  # fixed subset
    with pytest.raises(ConfigError, match=r"data.split = \[0.5, 0.5\] must be three positive fractions"):
        DigitsDataModule(split=[0.5, 0.5])


def test_random_translate_shifts_within_bounds():
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 4, 4] = 1.0
    y = random_translate(x, 2, fill=torch.zeros(1))
    assert y.shape == x.shape and torch.all(y.sum(dim=(1, 2, 3)) == 1)
    pos = y[:, 0].flatten(1).argmax(1)
    rows, cols = pos // 8, pos % 8
    assert rows.min() >= 2 and rows.max() <= 6 and cols.min() >= 2 and cols.max() <= 6 and len(set(pos.tolist())) > 5


def _cifar_archive(tmp_path, variant="cifar10", n=4):
    """A tiny archive in the official layout: python-2 style pickles (bytes keys, protocol 2)."""
    meta = data_mod.CIFAR[variant]
    rng = np.random.default_rng(0)
    path = tmp_path / "src" / f"{variant}.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for k, name in enumerate(meta["train"] + meta["test"]):
            batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                     meta["labels"].encode(): [int(v) for v in rng.integers(0, meta["classes"], n)],
                     b"batch_label": f"batch {k}".encode()}
            raw = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"{meta['folder']}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path, hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("variant", ["cifar10", "cifar100"])
def test_cifar_from_local_archive(tmp_path, variant):
    archive, md5 = _cifar_archive(tmp_path, variant)
    root = tmp_path / "root"
    root.mkdir()
    (root / archive.name).write_bytes(archive.read_bytes())
    (root / archive.name).rename(root / data_mod.CIFAR[variant]["url"].rsplit("/", 1)[1])
    dm = CIFARDataModule(variant=variant, root=str(root), download=False, md5=md5, val_size=2, batch_size=2)
    dm.setup()
    n_train = 4 * len(data_mod.CIFAR[variant]["train"])
    assert len(dm.splits["train"]) == n_train - 2 and len(dm.splits["val"]) == 2 and len(dm.splits["test"]) == 4
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 3, 32, 32) and dm.num_classes == data_mod.CIFAR[variant]["classes"]
    # the official checksum does not match a home-made archive
    with pytest.raises(DataError, match="not c58f|not eb90"):
        CIFARDataModule(variant=variant, root=str(root), download=False, val_size=4).setup()


def test_cifar_download_path_and_errors(tmp_path, monkeypatch):
    archive, md5 = _cifar_archive(tmp_path)
    root = tmp_path / "root"
    with pytest.raises(DataError, match="cifar10 not found under .*set data.download=true"):
        CIFARDataModule(root=str(root), download=False).setup()
    monkeypatch.setitem(data_mod.CIFAR, "cifar10", {**data_mod.CIFAR["cifar10"], "url": archive.as_uri()})
    with pytest.raises(DataError, match="md5 mismatch"):
        CIFARDataModule(root=str(root), download=True, md5="0" * 32, val_size=4).setup()
    assert not list(root.glob("*.tar.gz"))  # nothing half-written
    dm = CIFARDataModule(root=str(root), download=True, md5=md5, val_size=4, image_size=24)
    dm.setup()
    assert (root / archive.name).exists() and dm.splits["test"][0][0].shape == (3, 24, 24)
    with pytest.raises(ConfigError, match="data.variant = 'cifar1000' is not allowed; allowed: cifar10, cifar100"):
        CIFARDataModule(variant="cifar1000")


def test_cifar_extracted_folder_and_refuses_code_in_pickles(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in data_mod.CIFAR["cifar10"]["train"] + ["test_batch"]:
        pickle.dump({"data": np.zeros((2, 3072), np.uint8), "labels": [1, 2]}, open(folder / name, "wb"), protocol=2)
    dm = CIFARDataModule(root=str(tmp_path), download=False, val_size=2)
    dm.setup()
    assert len(dm.splits["train"]) == 8
    pickle.dump({"data": print, "labels": []}, open(folder / "test_batch", "wb"))
    with pytest.raises(DataError, match="not a CIFAR python batch .*builtins.print is not allowed"):
        CIFARDataModule(root=str(tmp_path), download=False, val_size=2).setup()


def test_imagefolder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (30 + i, 40, 3), dtype=np.uint8)).save(tmp_path / split / cls / f"{i}.png")
    dm = ImageFolderDataModule(root=str(tmp_path), val_size=2, image_size=16, batch_size=2, eval_batch_size=3)
    dm.setup()
    assert dm.num_classes == 2 and {s: len(dm.splits[s]) for s in ("train", "val", "test")} == {"train": 6, "val": 2, "test": 4}
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 3, 16, 16)
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (3, 3, 16, 16) and set(y.tolist()) <= {0, 1}
    with pytest.raises(ConfigError, match="data=imagefolder needs data.root"):
        ImageFolderDataModule().setup()
