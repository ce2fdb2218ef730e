"""Where the accuracy objective comes from: a benchmark table, OFA's released predictor, a CSV
of evaluated subnets, or a predictor trained on such a CSV. Accuracy is in percent everywhere.

Every source answers ``predict(space, archs, keys) -> percent`` for a batch (``keys`` are the
canonical strings, which table lookups use directly) after ``prepare(space)``; table-backed
sources also expose the whole table as ``ground_truth(space)`` so a search on an enumerable
space can be scored against the true optimum.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from hwnas.data.root import data_path
from hwnas.data.tables import NB201_ACCURACY, mean_by_arch, merge_repeats, read_accuracy_column
from hwnas.errors import ConfigError, DataError, InvalidArchitecture, choices_text
from hwnas.options import integer, number

NB201_DATASETS = ("cifar10", "cifar100", "imagenet16_120")
OFA_PREDICTOR = "ofa/acc_predictor.pth"


class AccuracySource(ABC):
    """Top-1 accuracy in percent of architectures of a space."""

    name = "accuracy"
    #: Guess of seconds per architecture until a search measures it (orders cheap before expensive).
    prior_seconds = 1e-5

    def prepare(self, space, work_dir: str | Path | None = None) -> "AccuracySource":
        """Check the space fits the source, and fit it if it learns (``work_dir``: where to save what it learned)."""
        return self

    @abstractmethod
    def predict(self, space, archs: Sequence, keys: Sequence[str] | None = None) -> np.ndarray:
        """Accuracy (%) of each architecture."""

    def ground_truth(self, space) -> dict[str, float] | None:
        """``{canonical string: accuracy}`` of every architecture the source knows exactly (tables), else None."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class TableAccuracy(AccuracySource):
    """Accuracy looked up in a CSV with ``arch`` and an accuracy column (``job=eval_subnets`` writes one).

    Architectures listed more than once get the mean of their rows.
    """

    name = "table"
    prior_seconds = 1e-6

    def __init__(self, path: str | Path | None = None, column: str = "accuracy"):
        if not path:
            raise ConfigError("accuracy=table needs accuracy.path=<CSV with arch, accuracy in percent> "
                              "(e.g. from job=eval_subnets); or use accuracy=predictor to generalize from it")
        self.path, self.column = str(path), str(column)
        self._strings, self._values = read_accuracy_column(path, column)
        self._index: dict[str, float] | None = None
        self._space_name: str | None = None

    def prepare(self, space, work_dir=None) -> "TableAccuracy":
        if self._index is not None and self._space_name == space.name:
            return self
        self._index = mean_by_arch(space, self._strings, self._values, f"accuracy table '{self.path}'")
        self._space_name = space.name
        return self

    def predict(self, space, archs, keys=None) -> np.ndarray:
        self.prepare(space)
        keys = keys if keys is not None else [space.to_string(a) for a in archs]
        index = self._index
        try:
            return np.fromiter((index[k] for k in keys), dtype=np.float64, count=len(keys))
        except KeyError as exc:
            raise DataError(f"architecture {exc.args[0]} is not in the accuracy table '{self.path}' ({len(index)} "
                            f"architectures); a table only knows what it lists: use accuracy=predictor "
                            f"accuracy.fit_data={self.path} to generalize from it") from None

    def ground_truth(self, space) -> dict[str, float]:
        self.prepare(space)
        return dict(self._index)


class NB201Accuracy(TableAccuracy):
    """NAS-Bench-201's test accuracy after 200 epochs (NATS-Bench figures) on one of its three datasets."""

    name = "nb201"

    def __init__(self, dataset: str = "cifar10", data_dir: str | None = None):
        if dataset not in NB201_DATASETS:
            raise ConfigError(f"accuracy.dataset = {dataset!r} is not allowed; allowed: {choices_text(NB201_DATASETS)}")
        self.dataset = dataset
        super().__init__(data_path(NB201_ACCURACY, data_dir), dataset)

    def prepare(self, space, work_dir=None) -> "NB201Accuracy":
        if space.name != "nb201":
            raise ConfigError(f"accuracy=nb201 is NAS-Bench-201's accuracy table; search_space={space.name} is not "
                              f"nb201 (OFA/CompOFA: accuracy=ofa_predictor; any space: accuracy=table or predictor)")
        super().prepare(space)
        return self


class OFAAccuracyPredictor(AccuracySource):
    """OFA's released ImageNet accuracy predictor (MLP 128 -> 3 x 400 -> 1) on OFA's 128-d encoding.

    It was trained for the width-1.0 OFA MobileNetV3 supernet (CompOFA subnets share the encoding)
    on accuracies measured on 10,000 held-out ImageNet *train* images, so its figures are
    optimistic against ImageNet val (0.836 for the largest subnet at 224 px). It outputs a
    fraction; this source reports percent.
    """

    name = "ofa_predictor"
    prior_seconds = 1e-5

    def __init__(self, path: str = OFA_PREDICTOR, data_dir: str | None = None):
        p = Path(path)
        if not p.exists() and not p.is_absolute():
            p = data_path(path, data_dir)
        self.path = str(p)
        from hwnas.predictors.module import read_checkpoint

        state = read_checkpoint(p, "ofa_accuracy", "accuracy.path")  # refuses hwnas predictors and supernets by name
        state = {k.removeprefix("layers."): v for k, v in state.items()}
        base = state.pop("base_acc", None)
        self.base_acc = float(base.reshape(-1)[0]) if base is not None else 0.0
        self.net = nn.Sequential(nn.Linear(128, 400), nn.ReLU(), nn.Linear(400, 400), nn.ReLU(),
                                 nn.Linear(400, 400), nn.ReLU(), nn.Linear(400, 1))
        try:
            self.net.load_state_dict(state)
        except RuntimeError as exc:
            raise DataError(f"'{p}' does not fit OFA's accuracy predictor (Linear 128-400-400-400-1): "
                            f"{str(exc).splitlines()[0][:160]}") from None
        self.net.eval()

    def prepare(self, space, work_dir=None) -> "OFAAccuracyPredictor":
        from hwnas.spaces import encoding_family

        if encoding_family(space.name) != "ofa_mbv3" or space.encoding_dim != 128:
            raise ConfigError(f"accuracy=ofa_predictor reads OFA's 128-d encoding; search_space={space.name} "
                              f"(encoding {space.encoding_dim}-d) has none: use ofa_mbv3, compofa_fixed or compofa_elastic")
        small = [r for r in getattr(space, "resolutions", ()) if r < 112]
        if small:
            raise ConfigError(f"accuracy=ofa_predictor was trained on ImageNet resolutions 128..224; search_space="
                              f"{space.name} has resolution {small[0]}: use accuracy=table or accuracy=predictor")
        return self

    @torch.inference_mode()
    def predict(self, space, archs, keys=None) -> np.ndarray:
        if not len(archs):
            return np.zeros(0)
        fraction = self.net(space.encode(archs)).squeeze(1).double() + self.base_acc
        return fraction.numpy() * 100.0


class PredictedAccuracy(AccuracySource):
    """An MLP trained on a CSV of ``arch, accuracy`` (percent), reusing the latency-predictor machinery.

    ``fit_data`` is e.g. the output of ``job=eval_subnets``; with ``checkpoint`` a trained one is
    loaded instead. After fitting, the predictor is saved as ``accuracy_predictor.pt`` in the run dir.
    """

    name = "predictor"

    def __init__(self, fit_data: str | None = None, column: str = "accuracy", checkpoint: str | None = None,
                 target_transform: str = "none", **predictor_options):
        from hwnas.predictors import PredictorEstimator
        from hwnas.predictors.module import load_into

        _check_options(predictor_options)
        self.fit_data, self.column = fit_data, column
        self.estimator = PredictorEstimator(target_transform=target_transform, **predictor_options)
        self.estimator.name = "accuracy predictor"
        if checkpoint:  # an accuracy predictor: a latency predictor, supernet or OFA's file is refused by name
            load_into(self.estimator, checkpoint, "accuracy", "accuracy.checkpoint")

    def prepare(self, space, work_dir=None) -> "PredictedAccuracy":
        from hwnas.predictors.module import set_target

        est = self.estimator
        if est.module is not None:
            est.check_space(space)
            return self
        if not self.fit_data:
            raise ConfigError("accuracy=predictor needs accuracy.fit_data=<CSV with arch, accuracy in percent> "
                              "(job=eval_subnets writes one) or accuracy.checkpoint=<accuracy_predictor.pt>")
        strings, values = read_accuracy_column(self.fit_data, self.column)
        try:
            archs = space.from_strings(strings)
        except InvalidArchitecture as exc:
            raise DataError(f"accuracy data '{self.fit_data}' holds architectures that are not in search space "
                            f"{space.name}: {exc}") from None
        # repeats that disagree wildly are refused, not learned as their mean
        distinct = len(merge_repeats([space.to_string(a) for a in archs], values, f"accuracy data '{self.fit_data}'",
                                     latency=False))
        if distinct < MIN_FIT_ARCHS:
            raise DataError(f"accuracy data '{self.fit_data}' lists {distinct} distinct architecture(s); a predictor "
                            f"needs >= {MIN_FIT_ARCHS} to learn from (one architecture only teaches a constant)")
        est.fit(space, archs, values)
        set_target(est.module, "accuracy")  # recorded in the file: it is never read as a latency predictor
        if work_dir is not None:
            est.save(Path(work_dir) / "accuracy_predictor.pt")
        return self

    def predict(self, space, archs, keys=None) -> np.ndarray:
        if self.estimator.module is None:
            self.prepare(space)
        return self.estimator.predict(space, archs)


#: Fewest distinct architectures ``accuracy=predictor`` learns from.
MIN_FIT_ARCHS = 2


def _check_options(options: dict) -> None:
    """The numeric ``accuracy.*`` training options, checked where their names are known (``int(1.5)`` is 1)."""
    if "epochs" in options:
        options["epochs"] = integer(options["epochs"], "accuracy.epochs", 1)
    if "batch_size" in options:
        options["batch_size"] = integer(options["batch_size"], "accuracy.batch_size", 1)
    if "lr" in options:
        options["lr"] = number(options["lr"], "accuracy.lr", 0.0, exclusive_minimum=True)
    if "weight_decay" in options:
        options["weight_decay"] = number(options["weight_decay"], "accuracy.weight_decay", 0.0)
    if "dropout" in options:
        options["dropout"] = number(options["dropout"], "accuracy.dropout", 0.0, 0.99)


#: Default accuracy source of each space when ``accuracy`` is not chosen.
DEFAULTS = {"ofa_mbv3": "ofa_predictor", "compofa_fixed": "ofa_predictor", "compofa_elastic": "ofa_predictor",
            "nb201": "nb201"}


def default_accuracy(space, data_dir: str | None = None) -> AccuracySource:
    """OFA's predictor for OFA/CompOFA, NAS-Bench-201's CIFAR-10 table for nb201; an error elsewhere."""
    choice = DEFAULTS.get(space.name)
    if choice == "ofa_predictor":
        return OFAAccuracyPredictor(data_dir=data_dir)
    if choice == "nb201":
        return NB201Accuracy("cifar10", data_dir=data_dir)
    raise ConfigError(f"search_space={space.name} has no default accuracy source (defaults exist for "
                      f"{choices_text(sorted(DEFAULTS))}): pick accuracy=table accuracy.path=<CSV arch,accuracy> "
                      f"or accuracy=predictor accuracy.fit_data=<CSV arch,accuracy>")
