"""Image classification DataModules for supernet training: digits (embedded), CIFAR-10/100, ImageFolder.

Every module serves ``(image, label)`` batches at ``image_size`` (the space's largest resolution;
smaller subnets resize them), split into train / val / test with a fixed seed, plus a fixed set of
un-augmented training images for batch-norm recalibration. Augmentation runs on whole batches
after they reach the device (``on_after_batch_transfer``), only while Lightning trains.

- ``digits``: scikit-learn's 1,797 8x8 handwritten digits (shipped inside scikit-learn, no
  download), upsampled to ``image_size`` with 3 channels; train/val/test by fraction.
- ``cifar10`` / ``cifar100``: the official python-pickle archives (Krizhevsky, 2009) from
  https://www.cs.toronto.edu/~kriz/, md5-checked as published on that page; a local extracted
  folder or archive is used as is. val = ``val_size`` images held out of the training set; test =
  the official test set.
- ``imagefolder``: ``root/train/<class>/*`` and ``root/val/<class>/*`` (ImageNet layout), decoded
  with Pillow; val = ``val_size`` images held out of train (OFA holds out 10,000), test = ``val/``.
"""
from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from hwnas.errors import ConfigError, DataError, choices_text
from hwnas.options import integer, number, seed as seed_value

SPLITS = ("train", "val", "test")


def _positive_int(value, where: str, minimum: int = 1) -> int:
    return integer(value, where, minimum)


class TensorImages(Dataset):
    """Images held in memory as one ``(N, C, H, W)`` tensor; normalized per item (uint8 stays compact)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                 scale: float = 1.0):
        self.images, self.labels = images, labels.long()
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.scale = float(scale)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        x = self.images[i].float() * self.scale
        return (x - self.mean) / self.std, self.labels[i]


def random_translate(x: torch.Tensor, max_shift: int, fill: torch.Tensor | None = None) -> torch.Tensor:
    """Shift each image by up to ``max_shift`` pixels (pad + random crop); ``fill`` per channel, or edge pixels."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    p = int(max_shift)
    if fill is None:
        padded = F.pad(x, (p, p, p, p), mode="replicate")
    else:
        fill = fill.to(x).view(1, -1, 1, 1)
        padded = F.pad(x - fill, (p, p, p, p)) + fill
    dy = torch.randint(0, 2 * p + 1, (n,), device=x.device)
    dx = torch.randint(0, 2 * p + 1, (n,), device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]
    return padded.permute(0, 2, 3, 1)[torch.arange(n, device=x.device)[:, None, None], rows, cols].permute(0, 3, 1, 2)


def random_flip(x: torch.Tensor) -> torch.Tensor:
    flip = torch.rand(x.shape[0], device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


class ImageDataModule(pl.LightningDataModule):
    """Shared loaders, splits, calibration images and batch augmentation of the image DataModules."""

    name: ClassVar[str] = "images"
    default_image_size: ClassVar[int] = 32
    mean: ClassVar[tuple[float, ...]] = (0.5, 0.5, 0.5)
    std: ClassVar[tuple[float, ...]] = (0.5, 0.5, 0.5)

    def __init__(self, image_size: int | None = None, batch_size: int = 64, eval_batch_size: int = 256,
                 num_workers: int = 0, seed: int = 0, augment: bool = True):
        super().__init__()
        self.image_size = _positive_int(image_size, "data.image_size", 8) if image_size is not None else self.default_image_size
        self.batch_size = _positive_int(batch_size, "data.batch_size")
        self.eval_batch_size = _positive_int(eval_batch_size, "data.eval_batch_size")
        self.num_workers = _positive_int(num_workers, "data.num_workers", 0)
        self.seed, self.augment = seed_value(seed, "data.seed"), bool(augment)
        self.splits: dict[str, Dataset] = {}
        self._num_classes: int | None = None

    # ------------------------------------------------------------------ subclass contract
    def load(self) -> tuple[dict[str, Dataset], int]:
        """``({train, val, test, calibration}: dataset, num_classes)``."""
        raise NotImplementedError

    def augment_batch(self, x: torch.Tensor) -> torch.Tensor:
        return x

    # ------------------------------------------------------------------ Lightning
    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            self.splits, self._num_classes = self.load()
            for split in SPLITS:
                if len(self.splits[split]) == 0:
                    raise DataError(f"data={self.name}: the {split} split is empty")

    @property
    def num_classes(self) -> int:
        self.setup()
        return int(self._num_classes)

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool, drop_last: bool = False) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        train = self.splits["train"]
        if self.batch_size > len(train):  # was: quietly one batch of the whole split
            raise ConfigError(f"data.batch_size = {self.batch_size} exceeds the {len(train)} training images of "
                              f"data={self.name}; allowed: 1..{len(train)} (training uses full batches only)")
        # full batches only: a batch of one image cannot be batch-normalized at 1x1 resolution
        return self._loader(train, self.batch_size, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return self.split_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.split_loader("test")

    def split_loader(self, split: str) -> DataLoader:
        if split not in SPLITS:
            raise ConfigError(f"split {split!r} is not allowed; allowed: {choices_text(SPLITS)}")
        self.setup()
        return self._loader(self.splits[split], self.eval_batch_size, shuffle=False)

    def check_calibration(self, images, option: str) -> int:
        """``images`` (the value of ``option``, e.g. ``eval_subnets.calibration_images``) as a number of
        calibration images this data has: >= 1 and at most its training images (a job checks before it works)."""
        self.setup()
        available = len(self.splits["calibration"])
        return integer(images, option, 1, available,
                       hint=f" (training images that recalibrate batch norm; data={self.name} has {available})")

    def calibration_batches(self, images: int, batch_size: int | None = None) -> list[torch.Tensor]:
        """A fixed (seeded) subset of ``images`` un-augmented training images, in batches."""
        self.setup()
        pool = self.splits["calibration"]
        n = min(_positive_int(images, "calibration images"), len(pool))
        idx = np.sort(np.random.default_rng(self.seed + 1).permutation(len(pool))[:n])
        loader = DataLoader(Subset(pool, idx.tolist()), batch_size=min(batch_size or self.batch_size, n),
                            shuffle=False, num_workers=0)
        return [x for x, _ in loader]

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        trainer = getattr(self, "trainer", None)
        if self.augment and trainer is not None and trainer.training:
            x, y = batch
            return self.augment_batch(x), y
        return batch

    def describe(self) -> dict:
        self.setup()
        return {"data": self.name, "image_size": self.image_size, "num_classes": self.num_classes,
                **{f"n_{s}": len(self.splits[s]) for s in SPLITS}}


def _fraction_split(n: int, fractions: Sequence[float], seed: int, where: str):
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, Sequence) or len(fractions) != 3:
        shown = list(fractions) if isinstance(fractions, Sequence) and not isinstance(fractions, str) else fractions
        raise ConfigError(f"{where} = {shown!r} must be three positive fractions (train, val, test) summing to 1")
    fr = [number(f, f"{where}[{i}]", 0, 1, exclusive_minimum=True, hint=" (train, val, test fractions)")
          for i, f in enumerate(fractions)]
    if abs(sum(fr) - 1) > 1e-6:
        raise ConfigError(f"{where} = {list(fractions)} must be three positive fractions (train, val, test) summing "
                          f"to 1; they sum to {sum(fr):g}")
    order = np.random.default_rng(seed).permutation(n)
    a, b = int(round(fr[0] * n)), int(round((fr[0] + fr[1]) * n))
    return order[:a], order[a:b], order[b:]


# ---------------------------------------------------------------------- digits
class DigitsDataModule(ImageDataModule):
    """scikit-learn's 8x8 digits, bilinearly upsampled to ``image_size``, grey copied to 3 channels."""

    name = "digits"

    def __init__(self, split: Sequence[float] = (0.7, 0.15, 0.15), max_shift: int | None = None, **kwargs):
        super().__init__(**kwargs)
        _fraction_split(10, split, 0, "data.split")  # validate now
        self.fractions = tuple(split)
        # +-1 pixel of the 8x8 original, at the working size
        self.max_shift = max(1, round(self.image_size / 16)) if max_shift is None else \
            integer(max_shift, "data.max_shift", 0, hint=" (pixels of random shift while training; null: 1 original pixel)")

    def load(self):
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise ConfigError("data=digits needs scikit-learn (pip install scikit-learn)") from None
        digits = load_digits()
        x = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
        x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        x = x.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()
        y = torch.tensor(digits.target, dtype=torch.int64)
        tr, va, te = _fraction_split(len(y), self.fractions, self.seed, "data.split")
        mean, std = float(x[tr].mean()), float(x[tr].std())
        make = lambda idx: TensorImages(x[idx], y[idx], (mean,) * 3, (std,) * 3)  # noqa: E731
        train = make(tr)
        return {"train": train, "val": make(va), "test": make(te), "calibration": train}, 10

    def augment_batch(self, x):
        return random_translate(x, self.max_shift)


# ---------------------------------------------------------------------- CIFAR
CIFAR = {
    "cifar10": {"url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                "md5": "c58f30108f718f92721af3b95e74349a", "folder": "cifar-10-batches-py",
                "train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"],
                "labels": "labels", "classes": 10},
    "cifar100": {"url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                 "md5": "eb9058c3a382ffc7106e4002c42a8d85", "folder": "cifar-100-python",
                 "train": ["train"], "test": ["test"], "labels": "fine_labels", "classes": 100},
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batches (dicts of numpy arrays and lists) and nothing else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
               ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def _read_batch(raw: bytes, labels_key: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        obj = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - any failure means a bad file for the user
        raise DataError(f"{where} is not a CIFAR python batch ({type(exc).__name__}: {str(exc)[:100]})") from None
    get = lambda k: obj.get(k, obj.get(k.encode())) if isinstance(obj, dict) else None  # noqa: E731
    data, labels = get("data"), get(labels_key)
    if data is None or labels is None:
        raise DataError(f"{where} has no 'data'/'{labels_key}' entries (is it the other CIFAR variant?)")
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataError(f"{where}: expected data of shape (N, 3072) and N labels; got {data.shape} and {len(labels)}")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def read_cifar(root: str | os.PathLike, variant: str, download: bool = False, md5: str | None = "official",
               timeout: float = 60) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train": (images, labels), "test": ...}`` from ``root`` (extracted folder, archive, or downloaded).

    ``md5="official"`` checks an archive against the checksum published on the CIFAR page;
    ``null`` skips the check (a local archive of your own), any other string is the expected md5.
    """
    from hwnas.data.download import fetch_file
    from hwnas.io import file_digest

    meta = CIFAR[variant]
    root = Path(root).expanduser()
    expected = meta["md5"] if md5 == "official" else md5
    folder, archive = root / meta["folder"], root / Path(meta["url"]).name
    out = {}
    if folder.is_dir():
        for split in ("train", "test"):
            parts = []
            for name in meta[split]:
                path = folder / name
                if not path.is_file():
                    raise DataError(f"{variant}: '{path}' is missing (expected the files of {meta['url']})")
                parts.append(_read_batch(path.read_bytes(), meta["labels"], f"'{path}'"))
            out[split] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        return out
    if not archive.is_file():
        if not download:
            raise DataError(f"{variant} not found under '{root}' (expected {meta['folder']}/ or {archive.name}); "
                            f"set data.download=true or point data.root at a copy")
        fetch_file(meta["url"], archive, checksum=("md5", expected) if expected else None, timeout=timeout)
    elif expected and (got := file_digest(archive, "md5")) != expected:
        raise DataError(f"'{archive}' has md5 {got}, not {expected} (the published checksum); delete it to download "
                        f"again, or set data.md5=null to use your own archive")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for split in ("train", "test"):
                parts = []
                for name in meta[split]:
                    member = f"{meta['folder']}/{name}"
                    try:
                        fh = tar.extractfile(member)
                    except KeyError:
                        fh = None
                    if fh is None:
                        raise DataError(f"'{archive}' has no member {member}")
                    parts.append(_read_batch(fh.read(), meta["labels"], f"'{archive}:{member}'"))
                out[split] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"'{archive}' is not a readable .tar.gz archive ({type(exc).__name__}: {exc})") from None
    return out


class CIFARDataModule(ImageDataModule):
    """CIFAR-10 or CIFAR-100 (fine labels): ``val_size`` training images held out as val, official test set."""

    MEAN_STD = {"cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
                "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))}

    def __init__(self, variant: str = "cifar10", root: str = "datasets", download: bool = True,
                 md5: str | None = "official", val_size: int = 5000, max_shift: int = 4, flip: bool = True, **kwargs):
        super().__init__(**kwargs)
        if variant not in CIFAR:
            raise ConfigError(f"data.variant = {variant!r} is not allowed; allowed: {choices_text(CIFAR)}")
        self.variant, self.root, self.download, self.md5 = variant, root, bool(download), md5
        self.val_size = _positive_int(val_size, "data.val_size", 0)
        self.max_shift = integer(max_shift, "data.max_shift", 0, hint=" (pixels of random shift at 32 px while training)")
        self.flip = bool(flip)
        self.name = variant
        self.mean, self.std = self.MEAN_STD[variant]

    def load(self):
        if not self.root:
            raise ConfigError(f"data.root is empty; give the folder that holds (or will hold) the {self.variant} data")
        raw = read_cifar(self.root, self.variant, self.download, self.md5)
        x_train, y_train = (torch.from_numpy(a) for a in raw["train"])
        x_test, y_test = (torch.from_numpy(a) for a in raw["test"])
        if self.image_size != 32:
            x_train, x_test = (self._resize_uint8(x) for x in (x_train, x_test))
        if self.val_size >= len(y_train):
            raise ConfigError(f"data.val_size = {self.val_size} must be smaller than the {len(y_train)} training images")
        order = np.random.default_rng(self.seed).permutation(len(y_train))
        va, tr = order[:self.val_size], order[self.val_size:]
        make = lambda x, y: TensorImages(x, y, self.mean, self.std, 1 / 255)  # noqa: E731
        train = make(x_train[tr], y_train[tr])
        self.fill = -torch.tensor(self.mean) / torch.tensor(self.std)
        return ({"train": train, "val": make(x_train[va], y_train[va]), "test": make(x_test, y_test),
                 "calibration": train}, CIFAR[self.variant]["classes"])

    def _resize_uint8(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for chunk in x.split(2048):
            r = F.interpolate(chunk.float(), size=(self.image_size, self.image_size), mode="bilinear",
                              align_corners=False, antialias=self.image_size < 32)
            out.append(r.round().clamp(0, 255).to(torch.uint8))
        return torch.cat(out)

    def augment_batch(self, x):
        x = random_translate(x, round(self.max_shift * self.image_size / 32), self.fill)
        return random_flip(x) if self.flip else x


# ---------------------------------------------------------------------- ImageFolder
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff")


def _scan(folder: Path, classes: Sequence[str] | None = None) -> tuple[list[tuple[str, int]], list[str]]:
    if not folder.is_dir():
        raise DataError(f"image folder '{folder}' does not exist")
    found = sorted(d.name for d in folder.iterdir() if d.is_dir())
    classes = list(classes) if classes is not None else found
    if not classes:
        raise DataError(f"'{folder}' has no class sub-folders (expected {folder}/<class>/<image>)")
    extra = [c for c in found if c not in classes]
    if extra:
        raise DataError(f"'{folder}' has class folder '{extra[0]}' that the training folder lacks")
    index = {c: i for i, c in enumerate(classes)}
    items = [(str(p), index[c]) for c in found for p in sorted((folder / c).rglob("*"))
             if p.suffix.lower() in IMAGE_EXTENSIONS]
    return items, classes


class ImageFiles(Dataset):
    """Decoded with Pillow; ``train=True``: random-resized crop + flip, else resize + centre crop (ratio 0.875)."""

    def __init__(self, items: list[tuple[str, int]], size: int, train: bool, mean, std):
        self.items, self.size, self.train = items, int(size), train
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.items)

    def _crop_box(self, w: int, h: int) -> tuple[int, int, int, int]:
        if self.train:
            area = w * h
            for _ in range(10):
                target = area * float(torch.empty(1).uniform_(0.08, 1.0))
                ratio = float(torch.exp(torch.empty(1).uniform_(np.log(3 / 4), np.log(4 / 3))))
                cw, ch = int(round((target * ratio) ** 0.5)), int(round((target / ratio) ** 0.5))
                if 0 < cw <= w and 0 < ch <= h:
                    x0 = int(torch.randint(0, w - cw + 1, (1,)))
                    y0 = int(torch.randint(0, h - ch + 1, (1,)))
                    return x0, y0, x0 + cw, y0 + ch
        side = min(w, h) if self.train else int(round(min(w, h) * 0.875))
        x0, y0 = (w - side) // 2, (h - side) // 2
        return x0, y0, x0 + side, y0 + side

    def __getitem__(self, i):
        from PIL import Image

        path, label = self.items[i]
        try:
            with Image.open(path) as img:
                img = img.convert("RGB")
        except OSError as exc:
            raise DataError(f"cannot read image '{path}': {exc}") from None
        img = img.resize((self.size, self.size), Image.BILINEAR, box=self._crop_box(*img.size))
        if self.train and float(torch.rand(1)) < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255
        return (x - self.mean) / self.std, label


class ImageFolderDataModule(ImageDataModule):
    """ImageNet-style folders: ``root/train/<class>/*`` and ``root/val/<class>/*`` (the test split)."""

    name = "imagefolder"
    default_image_size = 224
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

    def __init__(self, root: str | None = None, val_size: int = 10000, **kwargs):
        super().__init__(**kwargs)
        self.root, self.val_size = root, _positive_int(val_size, "data.val_size", 0)

    def load(self):
        if not self.root:
            raise ConfigError("data=imagefolder needs data.root: a folder with train/<class>/ and val/<class>/ images")
        root = Path(self.root).expanduser()
        train_items, classes = _scan(root / "train")
        test_items, _ = _scan(root / "val", classes)
        if self.val_size >= len(train_items):
            raise ConfigError(f"data.val_size = {self.val_size} must be smaller than the {len(train_items)} "
                              f"training images in '{root / 'train'}'")
        order = np.random.default_rng(self.seed).permutation(len(train_items))
        held = [train_items[i] for i in np.sort(order[:self.val_size])]
        rest = [train_items[i] for i in np.sort(order[self.val_size:])]
        files = lambda items, train: ImageFiles(items, self.image_size, train, self.mean, self.std)  # noqa: E731
        return ({"train": files(rest, self.augment), "val": files(held, False), "test": files(test_items, False),
                 "calibration": files(rest, False)}, len(classes))
